// The source's side of a migration over connections, in steps a VMM can drive around its own
// save: negotiate (the target's devices come back and an incompatible target is refused while
// the sources still run), open the data channels, hold the stop back until the target
// acknowledged the initial data, and after the last byte wait for the target's confirmation
// before committing. Until the commit, any failure leaves the caller free to roll back.
import Foundation
import VFIOBuffers
import VFIOCore
import VFIOStream

/// What the target said once it had everything.
public struct TargetConfirmation: Sendable, Hashable, Codable {
    public var deviceCount: Int
    public var totalStateBytes: UInt64
    /// The target devices' RESUMING -> STOP (their check of the state).
    public var validation: Duration
    /// Where the target left its devices after the commit; nil when it did not say (its
    /// answer was lost after the commit went out: the source cannot take the devices back).
    public var committed: CommittedState?
    /// How long the target took to resume them (when it resumed them).
    public var resume: Duration?
    /// Why `committed` is missing.
    public var note: String?
}

/// One device's switchover acknowledgement, as the source saw it.
public struct SwitchoverStatus: Sendable, Hashable, Codable {
    /// Whether the device pre-copies (only those are acknowledged).
    public var preCopy: Bool
    /// Where its data stream stood when its initial data (last) became complete.
    public var requiredOffset: UInt64?
    /// How far the target said it had loaded.
    public var acknowledgedOffset: UInt64?
    public var acknowledgements: Int
}

public final class SendSession: @unchecked Sendable {
    public let connector: any TransferConnecting
    public let options: TransferOptions
    let cancellation: MigrationCancellation?
    /// Behind `condition` (a cancel reads it from another thread); `controlConnection` reads it.
    private var controlStorage: ControlConnection?
    private var control: ControlConnection? {
        condition.lock()
        defer { condition.unlock() }
        return controlStorage
    }
    private var channels: [ConnectionChannel] = []
    private var output: PipelinedStreamOutput?
    /// Channel 0's header, with the migration id the target assigned.
    public private(set) var streamHeader: StreamHeader?
    /// The target's answer: its devices, host and limits.
    public private(set) var target: StreamHeader?

    private let condition = NSCondition()
    private var acks: AckLedger?
    private var rounds = 0
    private var targetFailure: VFIOError?
    private var loaded: ControlMessage?
    private var listening = false
    private var listenerEnded = false
    private var cancelKey: Int?

    // Every var below is read and written with `condition` held, except `output`,
    // `streamHeader`, `target` and `cancelKey`, which only the caller's thread (the one that
    // negotiates, runs the session and closes) touches.

    public init(connector: any TransferConnecting, options: TransferOptions = TransferOptions(), cancellation: MigrationCancellation? = nil) {
        self.connector = connector
        self.options = options
        self.cancellation = cancellation
    }

    /// Whether the caller's save session pre-copies the devices (`SaveSession.usesPreCopy`):
    /// without it no progress records go out and no acknowledgement is waited for. Memory
    /// rounds may still run.
    public var preCopyInUse: Bool {
        get { condition.lock(); defer { condition.unlock() }; return preCopyStorage }
        set { condition.lock(); preCopyStorage = newValue; condition.unlock() }
    }
    private var preCopyStorage = true

    /// Whether the stream leaves record checksums out (TLS, or the caller said so).
    public var omitsRecordChecksums: Bool {
        switch options.checksums {
        case .on: false
        case .off: true
        case .automatic: connector.isAuthenticated
        }
    }

    // MARK: negotiate

    /// Connects the control connection and proposes `header` (devices in stream order, no
    /// migration id); returns the header channel 0 will carry (with the target's nonce). A
    /// refusal throws `.streamIncompatible` (or what the target named) before anything ran.
    @discardableResult
    public func negotiate(_ header: StreamHeader) throws(VFIOError) -> StreamHeader {
        guard control == nil else { throw .invalidUse("negotiate called twice") }
        guard options.channels >= 1 && options.channels <= Int(UInt16.max) else {
            throw VFIOError(.invalidArgument, "a migration needs 1...65535 channels, not \(options.channels)")
        }
        var proposal = header
        proposal.migrationID = nil
        proposal.channel = options.channels > 1 ? StreamChannel(index: 0, count: UInt16(options.channels)) : nil
        if omitsRecordChecksums { proposal.flags |= HeaderFlags.noRecordChecksums.rawValue } else { proposal.flags &= ~HeaderFlags.noRecordChecksums.rawValue }
        proposal.refreshVersion()
        cancelKey = cancellation?.register { [weak self] in self?.interruptAll() }

        let channel = try connector.connect()
        let control: ControlConnection
        do {
            try channel.setIdleTimeout(options.handshakeTimeout)
            control = try ControlConnection(channel, role: .source)
        } catch {
            channel.close()
            throw error
        }
        condition.lock()
        controlStorage = control
        condition.unlock()
        try control.send(.propose(proposal))
        let answer = try control.receive(expecting: "waiting for the target's answer to the proposal", timeout: options.handshakeTimeout)
        switch answer {
        case .accept(let targetHeader):
            guard let nonce = targetHeader.migrationID else {
                throw VFIOError(.streamCorrupt, "the target accepted without assigning a migration id", device: control.name)
            }
            guard targetHeader.devices.count == proposal.devices.count else {
                throw VFIOError(.streamIncompatible, "the target accepted \(proposal.devices.count) device(s) but describes \(targetHeader.devices.count)", device: control.name)
            }
            // The target checked; so does the source, with what the target says it is.
            try Migration.requireCompatible(proposal.devices, targetHeader.devices)
            guard proposal.maxPayload <= targetHeader.maxPayload else {
                throw VFIOError(.streamIncompatible, "the target reads records of at most \(targetHeader.maxPayload) bytes, the stream's are up to \(proposal.maxPayload)", device: control.name)
            }
            target = targetHeader
            var agreed = proposal
            agreed.migrationID = nonce
            agreed.refreshVersion()
            streamHeader = agreed
            acks = AckLedger(preCopy: agreed.devices.map { $0.migrationFlags.contains(.preCopy) })
            return agreed
        case .refuse(let code, let reason):
            var error = VFIOError(code == .incompatible ? .streamIncompatible : .invalidArgument, "the target refused the migration (\(code)): \(reason)", device: control.name)
            if code == .checksums { error.hint = "use TLS (the default), or --checksum on" }
            throw error
        default:
            throw VFIOError(.streamCorrupt, "the target answered the proposal with \(answer.type)", device: control.name)
        }
    }

    // MARK: data channels

    /// Opens the data channels (each begins with its stream header) and returns the pipeline
    /// that writes into them; starts listening for the target's messages.
    public func openOutput() throws(VFIOError) -> PipelinedStreamOutput {
        guard let header = streamHeader, let control else { throw .invalidUse("openOutput before negotiate") }
        guard output == nil else { throw .invalidUse("openOutput called twice") }
        var sinks: [any ByteSink] = []
        for _ in 0..<options.channels {
            let channel = try connector.connect()
            condition.lock()
            channels.append(channel)
            condition.unlock()
            try channel.setIdleTimeout(options.idleTimeout)
            sinks.append(DataChannelSink(channel))
        }
        if cancellation?.isCancelled == true { throw cancelledError() }
        let output = try PipelinedStreamOutput(header: header, to: sinks, options: options.pipeline)
        self.output = output
        startListening(control)
        return output
    }

    private func startListening(_ control: ControlConnection) {
        condition.lock()
        listening = true
        condition.unlock()
        let name = ThreadNames.name("ctl", streamHeader?.migrationID)
        let thread = Thread { [self] in
            ThreadNames.nameCurrent(name)
            listen(control)
        }
        thread.start()
    }

    /// The target speaks during the transfer: acknowledgements, then loaded or failed.
    private func listen(_ control: ControlConnection) {
        var failure: VFIOError?
        do throws(VFIOError) {
            loop: while true {
                let message = try control.receive(expecting: "the target's messages during the transfer", timeout: nil)
                switch message {
                case .switchoverAck(let device, _, let offset):
                    condition.lock()
                    acks?.acknowledge(device: Int(device), offset: offset)
                    condition.broadcast()
                    condition.unlock()
                case .loaded:
                    condition.lock()
                    loaded = message
                    condition.unlock()
                    break loop
                case .failed(let reason):
                    failure = VFIOError(.deviceError, "the target failed and reset its devices: \(reason)", device: control.name)
                    break loop
                default:
                    failure = VFIOError(.streamCorrupt, "the target sent \(message.type) during the transfer", device: control.name)
                    break loop
                }
            }
        } catch {
            var lost = error
            lost.message = "lost the control connection to the target (\(error.message))"
            failure = lost
        }
        condition.lock()
        if let failure, targetFailure == nil { targetFailure = failure }
        listenerEnded = true
        condition.broadcast()
        let data = channels
        condition.unlock()
        // The target is gone or failed: writers blocked on it must not wait for an idle timeout.
        if failure != nil { for channel in data { channel.interrupt() } }
    }

    // MARK: switchover

    /// The caller's policy, held back until the target acknowledged the initial data.
    public func policy(wrapping base: any ConvergencePolicy) -> any ConvergencePolicy {
        options.switchoverAck ? SwitchoverGate(base: base, transfer: self) : base
    }

    func noteRound(_ snapshot: RoundSnapshot) {
        let offsets = output?.handedOver ?? []
        condition.lock()
        rounds += 1
        acks?.note(snapshot.pending, offsets: offsets)
        condition.unlock()
    }

    var waitsForAcks: Bool {
        condition.lock()
        defer { condition.unlock() }
        return options.switchoverAck && preCopyStorage && (acks?.preCopy.contains(true) ?? false)
    }

    func flushOutput() { try? output?.flush() }

    enum AckWait { case acknowledged, pending, failed, timedOut }

    /// Waits up to `wait` for every wanted acknowledgement.
    func awaitAcks(upTo wait: Duration) -> AckWait {
        let clock = ContinuousClock()
        condition.lock()
        defer { condition.unlock() }
        let now = clock.now
        if acks?.firstWait == nil { acks?.firstWait = now }
        let deadline = Date(timeIntervalSinceNow: wait.seconds)
        while true {
            if targetFailure != nil || listenerEnded { return .failed }
            if acks?.satisfied ?? true { return .acknowledged }
            if let first = acks?.firstWait, clock.now - first >= options.switchoverAckTimeout { return .timedOut }
            if !condition.wait(until: deadline) { return (acks?.satisfied ?? true) ? .acknowledged : .pending }
        }
    }

    /// The last check before the sources stop: the target is alive and, when pre-copy ran,
    /// acknowledged every device's initial data. Throws (the caller rolls back) otherwise.
    public func checkReadyToStop() throws(VFIOError) {
        if let cancellation, cancellation.isCancelled { throw cancelledError() }
        flushOutput()
        condition.lock()
        let failure = targetFailure
        let needAcks = options.switchoverAck && preCopyStorage && rounds > 0 && (acks?.preCopy.contains(true) ?? false)
        let missing = acks?.missing ?? []
        condition.unlock()
        if let failure { throw failure }
        guard needAcks, !missing.isEmpty else { return }
        switch awaitAcks(upTo: .zero) {
        case .acknowledged: return
        case .failed: throw targetFailureOr(VFIOError(.ioFailure, "the target went away before acknowledging the initial data"))
        case .pending, .timedOut:
            let names = missing.map { "device \($0)" }.joined(separator: ", ")
            throw VFIOError(
                .timedOut, "the target did not acknowledge the pre-copy initial data of \(names) within \(describe(options.switchoverAckTimeout))",
                device: control?.name, hint: "the target may still be loading; a longer --switchover-ack-timeout lets it finish")
        }
    }

    // MARK: confirmation

    /// After the stream ended: waits for the target's `loaded`, checks it against what was
    /// sent (`devices`, `totalStateBytes`). Throws before anything was handed over: the
    /// caller rolls its sources back.
    public func awaitLoaded(devices: Int, totalStateBytes: UInt64) throws(VFIOError) -> TargetConfirmation {
        condition.lock()
        guard listening else {
            condition.unlock()
            throw .invalidUse("awaitLoaded before openOutput")
        }
        let deadline = Date(timeIntervalSinceNow: options.loadTimeout.seconds)
        while !listenerEnded {
            if !condition.wait(until: deadline) { break }
        }
        let ended = listenerEnded
        let message = loaded
        let failure = targetFailure
        condition.unlock()
        if !ended {
            control?.interrupt()
            waitForListener()
            throw VFIOError(.timedOut, "the target did not confirm the load within \(describe(options.loadTimeout)) of the last byte", device: control?.name)
        }
        if let failure { throw failure }
        guard case .loaded(let count, let total, let validation) = message else {
            throw VFIOError(.ioFailure, "the target did not confirm the load", device: control?.name)
        }
        guard Int(count) == devices && total == totalStateBytes else {
            throw VFIOError(
                .streamCorrupt, "the target loaded \(count) device(s) and \(total) bytes; \(devices) and \(totalStateBytes) were sent",
                device: control?.name)
        }
        return TargetConfirmation(deviceCount: devices, totalStateBytes: total, validation: .nanoseconds(Int64(clamping: validation)))
    }

    /// Hands the devices over: from here the source never takes them back. Returns what the
    /// target answered; a lost answer is a note, not an error (the target has the state).
    public func commit(_ confirmation: TargetConfirmation) -> TargetConfirmation {
        var result = confirmation
        guard let control else { return result }
        do throws(VFIOError) {
            try control.send(.commit)
            let answer = try control.receive(expecting: "waiting for the target to take the commit", timeout: options.commitTimeout)
            guard case .committed(let state, let resume) = answer else {
                result.note = "the target answered the commit with \(answer.type)"
                return result
            }
            result.committed = state
            result.resume = .nanoseconds(Int64(clamping: resume))
        } catch {
            result.note = "the commit was sent but the target's answer was lost: \(error.message)"
        }
        return result
    }

    /// Per device, what the switchover waited for and what the target acknowledged.
    public var switchover: [SwitchoverStatus] {
        condition.lock()
        defer { condition.unlock() }
        guard let acks else { return [] }
        return acks.preCopy.indices.map {
            SwitchoverStatus(
                preCopy: acks.preCopy[$0], requiredOffset: acks.required[$0], acknowledgedOffset: acks.acknowledged[$0],
                acknowledgements: acks.acknowledgements[$0])
        }
    }

    // MARK: failure and cleanup

    /// Why the migration failed, preferring the target's own reason or the cancellation over
    /// the broken connection they caused; keeps the outcomes and reports of `error`.
    public func explain(_ error: VFIOError) -> VFIOError {
        if let cancellation, cancellation.isCancelled { return cancellation.error(replacing: error) }
        // A target that failed says so just before it closes: give its message a moment.
        waitForListener(upTo: .seconds(1))
        return targetFailureOr(error)
    }

    private func targetFailureOr(_ error: VFIOError) -> VFIOError {
        condition.lock()
        let failure = targetFailure
        condition.unlock()
        guard var failure, failure.code != .ioFailure || error.code == .ioFailure else { return error }
        failure.outcomes = error.outcomes
        failure.saveReport = error.saveReport
        if failure.message != error.message { failure.message += " (here: \(error.message))" }
        return failure
    }

    private func cancelledError() -> VFIOError {
        VFIOError(.cancelled, cancellation?.reason ?? "cancelled")
    }

    /// Wakes every thread blocked on a connection of this migration.
    func interruptAll() {
        condition.lock()
        let data = channels
        condition.unlock()
        control?.interrupt()
        for channel in data { channel.interrupt() }
    }

    private func waitForListener(upTo limit: Duration? = nil) {
        condition.lock()
        defer { condition.unlock() }
        guard listening else { return }
        // (Foundation's wait(until: .distantFuture) overflows on Linux: wait() without a limit.)
        guard let limit else {
            while !listenerEnded { condition.wait() }
            return
        }
        let deadline = Date(timeIntervalSinceNow: limit.seconds)
        while !listenerEnded {
            if !condition.wait(until: deadline) { return }
        }
    }

    /// Stops everything (after a failure), waits for every thread, closes every connection.
    public func close(after error: VFIOError? = nil) {
        if let error { output?.cancel(error) }
        interruptAllIfListening()
        waitForListener()
        control?.close()
        for channel in channels { channel.close() }
        if let key = cancelKey { cancellation?.unregister(key) }
    }

    private func interruptAllIfListening() {
        condition.lock()
        let running = listening && !listenerEnded
        condition.unlock()
        if running { control?.interrupt() }
    }
}

/// A data channel as the pipeline's sink: the end of its stream half-closes the connection, so
/// the target reads the end right after end-of-stream while the control connection stays up.
final class DataChannelSink: ByteSink {
    let channel: ConnectionChannel
    init(_ channel: ConnectionChannel) { self.channel = channel }
    var name: String { channel.name }
    func write(_ buffer: IOBuffer, _ range: Range<Int>) throws(VFIOError) { try channel.write(buffer, range) }
    func write(gathering slices: [BufferSlice]) throws(VFIOError) { try channel.write(gathering: slices) }
    func flush() throws(VFIOError) { try channel.finishSending() }
}

func describe(_ duration: Duration) -> String {
    let seconds = duration.seconds
    return seconds >= 1 ? "\(Int(seconds.rounded())) s" : "\(Int((seconds * 1000).rounded())) ms"
}

extension StreamHeader {
    /// The version again after fields were changed: the oldest that expresses the content.
    mutating func refreshVersion() {
        version = FormatVersion(major: StreamFormat.major, minor: StreamFormat.minor, readerMinor: requiredReaderMinor)
    }
}
