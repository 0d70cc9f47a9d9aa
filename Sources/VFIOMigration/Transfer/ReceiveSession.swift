// The target's side of a migration over connections: take the control connection, judge the
// source's proposal against the target devices (refusing before the source stops), prepare
// the devices, accept the data channels of this migration only, load them in parallel,
// acknowledge each device's initial data as it lands, confirm the load, and run the devices
// only once the source committed. A failure resets the target devices and tells the source.
import Foundation
import VFIOCore
import VFIOKernel
import VFIOStream

public struct ReceiveResult: Sendable {
    public var report: LoadReport
    /// Channel 0's header as it arrived (its migration id is the nonce this target assigned).
    public var header: StreamHeader
    public var metrics: ParallelLoadMetrics
    /// Connections that were turned away (not this migration's, not authenticated, ...).
    public var rejectedConnections: [String]
    /// Per device, how many switchover acknowledgements were sent (each for the data up to a
    /// progress record that said the initial data was complete).
    public var acknowledgements: [Int]
    /// Where the devices are.
    public var final: TargetFinalState
}

public final class ReceiveSession: @unchecked Sendable {
    public let acceptor: any TransferAccepting
    public let options: ReceiveOptions
    let devices: [VFIODevice]
    /// Target guest memory the stream's pages are written into (writable, the source's regions).
    let memory: GuestMemory?
    private var loader: GuestMemoryLoader?
    let cancellation: MigrationCancellation?
    /// `control`, `channels` and the vars below them are read and written with `lock` held
    /// (a cancel reads them from another thread); `loader` is set once before anything runs.
    private var controlStorage: ControlConnection?
    private var control: ControlConnection? {
        get { lock.withLock { controlStorage } }
        set { lock.withLock { controlStorage = newValue } }
    }
    private var channels: [ConnectionChannel] = []
    private let lock = NSLock()
    private var rejected: [String] = []
    private var acknowledged: [Int] = []
    private var assigned: MigrationID?
    /// The migration id this target assigned (nil until it accepted a proposal).
    public var migrationID: MigrationID? { lock.withLock { assigned } }
    /// Set once `loaded` went out: from then on a failure must not discard the loaded state.
    private var loadConfirmed = false
    /// Refuses later connections while this migration runs.
    private var busy: BusyResponder?

    public init(
        devices: [VFIODevice], acceptor: any TransferAccepting, options: ReceiveOptions = ReceiveOptions(), memory: GuestMemory? = nil,
        cancellation: MigrationCancellation? = nil
    ) {
        self.devices = devices
        self.memory = memory
        self.acceptor = acceptor
        self.options = options
        self.cancellation = cancellation
    }

    private var acceptsNoRecordChecksums: Bool { options.acceptsNoRecordChecksums ?? acceptor.isAuthenticated }

    /// Receives one migration into the devices; they end RUNNING (`final` .running) once the
    /// source committed, or STOP for the VMM to resume.
    public func run(leaving final: TargetFinalState = .running) throws(VFIOError) -> ReceiveResult {
        let key = cancellation?.register { [weak self] in self?.interruptAll() }
        defer {
            if let key { cancellation?.unregister(key) }
            busy?.stop()
            control?.close()
            for channel in lock.withLock({ channels }) { channel.close() }
        }
        do {
            return try receive(leaving: final)
        } catch {
            if let cancellation, cancellation.isCancelled { throw cancellation.error(replacing: error) }
            throw error
        }
    }

    private func receive(leaving final: TargetFinalState) throws(VFIOError) -> ReceiveResult {
        let clock = ContinuousClock()
        if let memory { loader = try GuestMemoryLoader(memory: memory) }
        let wait: Duration? = switch options.sourceWait {
        case .handshakeTimeout: options.handshakeTimeout
        case .limit(let limit): limit
        case .indefinitely: nil
        }
        let (control, proposal) = try takeProposal(until: wait.map { clock.now + $0 }, waiting: wait ?? .zero)
        // The handshake (judging, RESUMING, every data channel) is timed from the proposal.
        let deadline = clock.now + options.handshakeTimeout
        var targets: [DeviceDescriptor] = []
        for device in devices { targets.append(try device.descriptor()) }
        if let (code, reason) = judge(proposal, targets) {
            try? control.send(.refuse(code, reason: reason))
            throw VFIOError(code == .incompatible ? .streamIncompatible : .invalidArgument, "refused the source's proposal: \(reason)", device: control.name)
        }

        var drivers: [MigrationDriver] = []
        let load: LoadSession
        do {
            for device in devices { drivers.append(try MigrationDriver(device: device)) }
            load = try LoadSession(drivers: drivers)
            try load.begin()
        } catch {
            try? control.send(.refuse(.targetUnavailable, reason: error.description))
            throw error
        }
        do {
            return try transfer(control, proposal, targets, load, final, deadline)
        } catch {
            // Once the load was confirmed the state may be the only copy: keep it.
            if lock.withLock({ loadConfirmed }) { throw error }
            // Nothing here is the source's to keep: reset the targets and say so.
            let failure = load.phase == .aborted ? error : load.failed(error)
            if load.phase != .running {
                var reason = failure.message
                if let errno = failure.errno { reason += " (\(errno))" }
                if let device = failure.device { reason += " on \(device)" }
                reason += "; target devices: \(failure.outcomes.map(\.description).joined(separator: ", "))"
                try? control.send(.failed(reason: reason))
            }
            throw failure
        }
    }

    /// The first connection that speaks the control protocol and proposes; others are noted.
    private func takeProposal(until deadline: ContinuousClock.Instant?, waiting: Duration) throws(VFIOError) -> (ControlConnection, StreamHeader) {
        let clock = ContinuousClock()
        while true {
            let left = deadline.map { $0 - clock.now } ?? Self.acceptSlice
            guard left > .zero else {
                throw VFIOError(.timedOut, "no source proposed a migration within \(describe(waiting))\(rejectedNote)", device: acceptor.description)
            }
            let channel: ConnectionChannel
            do {
                try checkCancelled()
                channel = try acceptor.accept(timeout: min(left, Self.acceptSlice))
            } catch {
                if error.code == .timedOut || error.errno == .timedOut { continue }
                if error.code == .authenticationFailed || error.code == .ioFailure { note("\(error.message)"); continue }
                throw error
            }
            do throws(VFIOError) {
                // A source proposes as soon as it connects; a connection that says nothing
                // must not hold the listener until the deadline.
                let wait = min(left, options.authenticationTimeout)
                try channel.setIdleTimeout(wait)
                let control = try ControlConnection(channel, role: .target)
                let message = try control.receive(expecting: "waiting for the source's proposal", timeout: wait)
                guard case .propose(let header) = message else {
                    throw VFIOError(.streamCorrupt, "the first message was \(message.type), not a proposal", device: channel.name)
                }
                self.control = control
                return (control, header)
            } catch {
                note("\(channel.name): \(error.message)")
                channel.close()
            }
        }
    }

    /// Why the proposal cannot be taken here, or nil.
    private func judge(_ proposal: StreamHeader, _ targets: [DeviceDescriptor]) -> (RefusalCode, String)? {
        guard proposal.devices.count == targets.count else {
            return (.incompatible, "the source sends \(proposal.devices.count) device(s), this target has \(targets.count)")
        }
        let mismatches = Migration.compatibility(of: proposal.devices, with: targets)
        if !mismatches.isEmpty {
            return (.incompatible, mismatches.map { "device \($0.device) (\(targets[$0.device].name)): \($0.mismatch)" }.joined(separator: "; "))
        }
        if Int(proposal.maxPayload) > options.maxPayload {
            return (.limits, "records of up to \(proposal.maxPayload) bytes; this target takes at most \(options.maxPayload)")
        }
        let count = Int(proposal.channel?.count ?? 1)
        if count > options.maxChannels { return (.limits, "\(count) channels; this target takes at most \(options.maxChannels)") }
        if proposal.channel.map({ $0.index != 0 }) ?? false { return (.other, "the proposal is not channel 0's header") }
        if !proposal.hasRecordChecksums && !acceptsNoRecordChecksums {
            return (.checksums, "the stream would carry no record checksums and this target only accepts that over TLS")
        }
        if let loader {
            if proposal.regions.isEmpty { return (.incompatible, "this target was given guest memory and the stream carries none") }
            do { try loader.accept(regions: proposal.regions, source: "the proposal") } catch { return (.incompatible, error.message) }
        } else if !proposal.regions.isEmpty {
            return (.incompatible, "the stream carries \(proposal.regions.count) guest memory region(s) and this target was given none")
        }
        return nil
    }

    private func transfer(
        _ control: ControlConnection, _ proposal: StreamHeader, _ targets: [DeviceDescriptor], _ load: LoadSession,
        _ final: TargetFinalState, _ deadline: ContinuousClock.Instant
    ) throws(VFIOError) -> ReceiveResult {
        lock.withLock { acknowledged = Array(repeating: 0, count: devices.count) }
        let nonce = MigrationID.random()
        lock.withLock { assigned = nonce }
        var expected = proposal
        expected.migrationID = nonce
        let answer = StreamHeader(
            creationTimeNanoseconds: Int64(Date().timeIntervalSince1970 * 1e9), maxPayload: UInt32(options.maxPayload),
            host: HostInfo.current, writer: "vfio-migrate \(VersionInfo.version)", devices: targets, migrationID: nonce)
        try control.send(.accept(answer))

        let readers = try acceptChannels(of: expected, count: Int(proposal.channel?.count ?? 1), nonce: nonce, until: deadline)
        busy = BusyResponder(acceptor: acceptor, migration: nonce, answeringWithin: options.authenticationTimeout) { [weak self] in self?.note($0) }
        for reader in readers { try (reader.source as? ConnectionChannel)?.setIdleTimeout(options.idleTimeout) }
        let input = try ParallelStreamInput(readers: readers, migrationID: nonce)
        let node = options.node ?? devices.first?.identity.numaNode
        let metrics = try input.load(into: load, node: node, lockMemory: true, memory: loader, sendAck: { [weak self] ack in
            guard let self else { return }
            // A lost acknowledgement only delays the source's stop; the load goes on.
            if (try? control.send(.switchoverAck(device: UInt16(ack.device), epoch: ack.epoch, offset: ack.offset))) != nil {
                lock.withLock { acknowledged[ack.device] += 1 }
            }
        })
        let report = try load.finish()
        try control.send(.loaded(
            deviceCount: UInt32(devices.count), totalStateBytes: report.totalBytes,
            validationNanoseconds: report.timings.validation.wholeNanoseconds))
        lock.withLock { loadConfirmed = true }

        // The source now decides: until its commit these devices must not run.
        let commit: ControlMessage
        do {
            commit = try control.receive(expecting: "waiting for the source's commit", timeout: options.commitTimeout)
        } catch {
            throw uncommitted(error.message, load)
        }
        guard case .commit = commit else { throw uncommitted("the source sent \(commit.type) instead of commit", load) }
        if final == .running { try load.resume() }
        let resumed = load.report.timings.resume
        try? control.send(.committed(final == .running ? .running : .stopped, resumeNanoseconds: resumed.wholeNanoseconds))
        busy?.stop()
        var loadedReport = load.report
        loadedReport.memory = loader?.report
        return ReceiveResult(
            report: loadedReport, header: input.header, metrics: metrics, rejectedConnections: lock.withLock { rejected },
            acknowledgements: lock.withLock { acknowledged }, final: final)
    }

    /// The devices hold the loaded state and stay stopped: the source may have resumed its own.
    private func uncommitted(_ why: String, _ load: LoadSession) -> VFIOError {
        var error = VFIOError(
            .ioFailure, "the source did not commit (\(why)): the devices are left STOPPED with the loaded state, and the source may have resumed its own",
            hint: "check the source before resuming these devices")
        error.outcomes = load.drivers.map { DeviceOutcome(device: $0.name, role: .target, finalState: $0.knownState.map { .inState($0) } ?? .unknown(nil), recovery: .none) }
        error.loadReport = load.report
        return error
    }

    /// Accepts connections until `count` data channels of this migration arrived; a stray
    /// connection is closed and noted, never fatal. The connections are all taken before any
    /// header is read: a source may connect every channel before it writes to any (over TLS
    /// its next connect waits for this side's handshake).
    private func acceptChannels(of expected: StreamHeader, count: Int, nonce: MigrationID, until deadline: ContinuousClock.Instant) throws(VFIOError) -> [ChannelReader] {
        let clock = ContinuousClock()
        var readers: [Int: ChannelReader] = [:]
        let limits = StreamLimits(maxPayload: options.maxPayload, acceptsNoRecordChecksums: acceptsNoRecordChecksums)
        func timedOut() -> VFIOError {
            VFIOError(
                .timedOut, "\(readers.count) of \(count) data channel(s) arrived within \(describe(options.handshakeTimeout))\(rejectedNote)",
                device: acceptor.description)
        }
        while readers.count < count {
            var pending: [ConnectionChannel] = []
            while readers.count + pending.count < count {
                let left = deadline - clock.now
                guard left > .zero else {
                    for channel in pending { channel.close() }
                    throw timedOut()
                }
                do {
                    try checkCancelled()
                    let channel = try acceptor.accept(timeout: min(left, Self.acceptSlice))
                    lock.withLock { channels.append(channel) }
                    pending.append(channel)
                } catch {
                    if error.code == .timedOut || error.errno == .timedOut { continue }
                    if error.code == .authenticationFailed || error.code == .ioFailure { note(error.message); continue }
                    throw error
                }
            }
            for channel in pending {
                do throws(VFIOError) {
                    let left = deadline - clock.now
                    guard left > .zero else { throw timedOut() }
                    try channel.setIdleTimeout(min(left, options.handshakeTimeout))
                    let reader = try ChannelReader(source: channel, limits: limits)
                    if let problem = ParallelStreamInput.mismatch(reader.header, expected, channels: count, expectedID: nonce) {
                        throw VFIOError(.streamIncompatible, "not a channel of this migration: \(problem)", device: channel.name)
                    }
                    guard readers[reader.index] == nil else {
                        throw VFIOError(.streamIncompatible, "a second connection for channel \(reader.index)", device: channel.name)
                    }
                    readers[reader.index] = reader
                } catch {
                    if error.code == .timedOut && error.device == acceptor.description { throw error }
                    note("\(channel.name): \(error.message)")
                    channel.close()
                    lock.withLock { channels.removeAll { $0 === channel } }
                }
            }
        }
        return readers.keys.sorted().map { readers[$0]! }
    }

    /// Accepts wait in slices this long, so a cancel is seen while nobody connects.
    static let acceptSlice: Duration = .milliseconds(200)

    private func checkCancelled() throws(VFIOError) {
        if let cancellation, cancellation.isCancelled { throw VFIOError(.cancelled, cancellation.reason ?? "cancelled") }
    }

    private func note(_ text: String) { lock.withLock { rejected.append(text) } }

    private var rejectedNote: String {
        let list = lock.withLock { rejected }
        return list.isEmpty ? "" : " (turned away: \(list.joined(separator: "; ")))"
    }

    func interruptAll() {
        control?.interrupt()
        for channel in lock.withLock({ channels }) { channel.interrupt() }
    }
}

extension Duration {
    /// Whole nanoseconds, 0 for a negative duration.
    var wholeNanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        guard seconds >= 0 else { return 0 }
        return UInt64(seconds) &* 1_000_000_000 &+ UInt64(attoseconds / 1_000_000_000)
    }
}
