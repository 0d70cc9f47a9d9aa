// The source side of a migration as the steps a VMM drives (QEMU's save handlers: setup, one
// bounded iteration, pending estimate and exact pending, quiesce, stop-copy, complete,
// cleanup; Cloud Hypervisor's pause, snapshot, resume). `run` (SaveSession+Run.swift) is the
// one-call form built on these steps.
//
// Any step that fails rolls every device back to RUNNING (or resets it) before it throws: the
// error's `outcomes` say where each device was left and `saveReport` what was done until then.
import VFIOBuffers
import VFIOStream

public struct SaveOptions: Sendable, Hashable {
    /// Bytes read from a data fd per chunk (QEMU uses 1 MiB; larger showed no gain).
    public var chunkSize: Int
    /// Use pre-copy when every device supports it.
    public var preCopy: Bool
    /// Opt in to PRECOPY_INFO's REINIT flag where the device offers MIG_PRECOPY_INFOv2.
    public var reportReinit: Bool

    public init(chunkSize: Int = 1 << 20, preCopy: Bool = true, reportReinit: Bool = true) {
        self.chunkSize = chunkSize
        self.preCopy = preCopy
        self.reportReinit = reportReinit
    }
}

/// Where a finished save leaves its devices.
public enum SourceFinalState: String, Sendable, Hashable, Codable {
    /// STOP: a migration hands over to a target.
    case stopped
    /// RUNNING: a capture; the device goes on.
    case running
}

/// What one bounded iteration read from a device.
public struct IterationResult: Sendable, Hashable {
    public var device: Int
    public var bytes: UInt64
    public var chunks: Int
    /// The device said it has nothing more for now (ENOMSG, or 0 in PRE_COPY).
    public var drained: Bool
}

public final class SaveSession {
    /// The steps, in the order they may be taken.
    public enum Phase: String, Sendable, Hashable {
        case created, setUp, quiesced, stopped, completed, finished, aborted
    }

    public let drivers: [MigrationDriver]
    public let options: SaveOptions
    public private(set) var phase: Phase = .created
    /// What the session did so far (complete once `complete` returned).
    public internal(set) var report: SaveReport
    /// PRE_COPY is in use (set up by `setup`).
    public private(set) var usesPreCopy = false

    /// Guest memory the save sends with the devices, and its dirty logs (nil: devices only).
    var memoryState: MemoryPreCopy?
    private var offsets: [UInt64]
    private var ended: [Bool]
    private var pending: [PendingState]
    private let buffer: IOBuffer
    private var bufferOffset = 0
    private let clock = ContinuousClock()

    /// Probes every device (flags, state). Several devices can only stop consistently when
    /// each can first stop initiating peer-to-peer DMA; QEMU refuses such a set, and so do we.
    public init(drivers: [MigrationDriver], options: SaveOptions = SaveOptions(), memory: SaveMemory? = nil) throws(VFIOError) {
        guard !drivers.isEmpty else { throw .invalidUse("a save needs at least one device") }
        guard options.chunkSize >= 4096 && options.chunkSize <= StreamFormat.hardMaxPayload else {
            throw VFIOError(.invalidArgument, "chunk size \(options.chunkSize) outside 4 KiB...64 MiB")
        }
        try Self.checkPeerQuiescing(drivers)
        self.drivers = drivers
        self.options = options
        self.report = SaveReport(devices: drivers.map(\.name))
        self.offsets = Array(repeating: 0, count: drivers.count)
        self.ended = Array(repeating: false, count: drivers.count)
        self.pending = drivers.map { PendingState(device: $0.name) }
        self.buffer = IOBuffer(capacity: 4096 + options.chunkSize)
        if let memory {
            memoryState = try MemoryPreCopy(memory)
            report.memory = memoryState?.report
        }
    }

    /// Opens a driver for each device first.
    public convenience init(devices: [any MigrationDevice], options: SaveOptions = SaveOptions(), memory: SaveMemory? = nil) throws(VFIOError) {
        var drivers: [MigrationDriver] = []
        for device in devices { drivers.append(try MigrationDriver(device: device)) }
        try self.init(drivers: drivers, options: options, memory: memory)
    }

    public static func checkPeerQuiescing(_ drivers: [MigrationDriver]) throws(VFIOError) {
        guard drivers.count > 1 else { return }
        let lacking = drivers.filter { !$0.flags.contains(.p2p) }.map(\.name)
        guard lacking.isEmpty else {
            throw VFIOError(
                .notSupported,
                "refused to migrate \(drivers.count) devices together: \(lacking.joined(separator: ", ")) "
                    + "cannot quiesce peer-to-peer DMA (no P2P migration flag), so one device could still write "
                    + "into another after it stopped; migrate it alone or use devices that support P2P")
        }
    }

    /// Every device quiesces P2P before any stops (used when all of them offer P2P).
    public var usesP2P: Bool { drivers.allSatisfy { $0.flags.contains(.p2p) } }

    // MARK: steps

    /// Reads the stop-copy estimate of every device and, when pre-copy is used, moves every
    /// device to PRE_COPY (opting in to REINIT reports where offered).
    public func setup() throws(VFIOError) {
        try expect(.created, "setup")
        try step { () throws(VFIOError) in
            let start = clock.now
            for (i, driver) in drivers.enumerated() {
                let estimate = try driver.device.stopCopySizeEstimate()
                report.devices[i].stopCopyEstimateAtSetup = estimate
                pending[i].stopCopyEstimate = estimate
            }
            usesPreCopy = options.preCopy && drivers.allSatisfy { $0.flags.contains(.preCopy) }
            report.usedPreCopy = usesPreCopy
            if let memoryState {
                try memoryState.start()
                report.memory = memoryState.report
            }
            if usesPreCopy {
                for driver in drivers {
                    if options.reportReinit { try driver.enablePreCopyReinitReports() }
                    try driver.transition(to: .preCopy)
                }
            }
            phase = .setUp
            report.timings.setup = clock.now - start
        }
    }

    /// The pending bytes last read, without asking the devices (QEMU's pending estimate).
    public var pendingEstimate: [PendingState] { pending }

    /// Asks every device now: PRECOPY_INFO (in pre-copy) and MIG_DATA_SIZE (QEMU's exact pending).
    public func pendingExact() throws(VFIOError) -> [PendingState] {
        try expect([.setUp, .quiesced], "pendingExact")
        try step { () throws(VFIOError) in
            for i in drivers.indices { try refreshPending(i) }
        }
        return pending
    }

    /// One bounded pre-copy iteration of device `device`: reads until `byteBudget` bytes were
    /// read or the device has nothing more for now, handing full chunks to `sink`.
    @discardableResult
    public func iterate(device i: Int, byteBudget: Int = .max, into sink: any SaveSink) throws(VFIOError) -> IterationResult {
        try expect([.setUp, .quiesced], "iterate")
        guard drivers.indices.contains(i) else { throw .invalidUse("device index \(i) outside 0..<\(drivers.count)") }
        guard usesPreCopy else { throw .invalidUse("iterate without pre-copy (a device lacks PRE_COPY, or it was turned off)") }
        guard byteBudget > 0 else { throw VFIOError(.invalidArgument, "byte budget must be positive") }
        var result = IterationResult(device: i, bytes: 0, chunks: 0, drained: false)
        try step { () throws(VFIOError) in
            result = try drain(device: i, phase: .preCopy, budget: byteBudget, into: sink)
        }
        return result
    }

    /// One round: every device iterates once (each within `byteBudget`), then pending is read
    /// and recorded with the round's duration.
    @discardableResult
    public func iterateRound(byteBudget: Int = .max, into sink: any SaveSink, externalPendingBytes: UInt64? = nil) throws(VFIOError) -> SaveReport.Round {
        try expect([.setUp, .quiesced], "iterateRound")
        let start = clock.now
        var bytes: UInt64 = 0
        var memoryBytes: UInt64 = 0
        var sync: MemorySyncResult?
        if memoryState != nil { memoryBytes = try iterateMemory(byteBudget: byteBudget, into: sink).bytes }
        if usesPreCopy {
            for i in drivers.indices { bytes += try iterate(device: i, byteBudget: byteBudget, into: sink).bytes }
        }
        if memoryState != nil { sync = try syncMemory() }
        let state = try pendingExact()
        // Progress is PRECOPY_INFO: only devices in pre-copy have it (memory rounds run for
        // devices without PRE_COPY too, and a stream refuses progress for them).
        if usesPreCopy {
            try step { () throws(VFIOError) in
                for (i, p) in state.enumerated() {
                    try sink.writeProgress(device: i, info: PreCopyInfo(initialBytes: p.initialBytes, dirtyBytes: p.dirtyBytes, reinitialized: p.reinitialized))
                }
            }
        }
        var round = SaveReport.Round(
            index: report.rounds.count + 1, bytes: bytes, duration: clock.now - start,
            remainingBytes: state.reduce(sync?.pendingBytes ?? 0) { $0 &+ $1.remainingBytes }, externalPendingBytes: externalPendingBytes)
        round.memoryBytes = memoryState == nil ? nil : memoryBytes
        round.memoryPendingBytes = sync?.pendingBytes
        round.memoryDirtyBytes = sync?.newlyDirtyBytes
        round.dirtyRate = sync?.dirtyRate
        round.reinitialized = state.contains { $0.reinitialized }
        report.rounds.append(round)
        report.timings.preCopy += round.duration
        return round
    }

    /// Quiesces peer-to-peer DMA: every device to RUNNING_P2P or PRE_COPY_P2P, before any
    /// stops. A no-op for devices without P2P (a single device may lack it).
    public func quiesce() throws(VFIOError) {
        try expect(.setUp, "quiesce")
        try step { () throws(VFIOError) in
            let start = clock.now
            if usesP2P {
                for driver in drivers { try driver.transition(to: usesPreCopy ? .preCopyP2P : .runningP2P) }
            }
            phase = .quiesced
            report.timings.quiesce = clock.now - start
        }
    }

    /// Stops every device into STOP_COPY (quiescing first when that was not done), reading
    /// each one's stop-copy estimate at the switchover.
    public func stop() throws(VFIOError) {
        if phase == .setUp { try quiesce() }
        try expect(.quiesced, "stop")
        try step { () throws(VFIOError) in
            let start = clock.now
            for (i, driver) in drivers.enumerated() {
                let estimate = try driver.device.stopCopySizeEstimate()
                report.devices[i].stopCopyEstimateAtSwitchover = estimate
                pending[i].stopCopyEstimate = estimate
                try driver.transition(to: .stopCopy)
            }
            // No device writes memory any more: the last pages it wrote are collected now.
            if let memoryState {
                _ = try memoryState.finalSync()
                report.memory = memoryState.report
            }
            phase = .stopped
            report.timings.stopping = clock.now - start
        }
    }

    /// Reads every device's STOP_COPY data to its end into `sink`, then ends each device and
    /// the stream (QEMU's complete_precopy).
    @discardableResult
    public func complete(into sink: any SaveSink) throws(VFIOError) -> SaveReport {
        try expect(.stopped, "complete")
        try step { () throws(VFIOError) in
            let start = clock.now
            if let memoryState {
                _ = try memoryState.send(budget: .max, phase: .stopCopy, into: sink)
                report.memory = memoryState.report
            }
            for i in drivers.indices {
                _ = try drain(device: i, phase: .stopCopy, budget: .max, into: sink)
                try sink.endDevice(i)
                ended[i] = true
            }
            try sink.endStream()
            phase = .completed
            report.timings.finalRead = clock.now - start
        }
        return report
    }

    /// Leaves STOP_COPY: STOP for a migration (the target takes over), or back to RUNNING
    /// for a capture (QEMU's save cleanup).
    public func finish(leaving final: SourceFinalState) throws(VFIOError) {
        try expect(.completed, "finish")
        try step { () throws(VFIOError) in
            let start = clock.now
            for driver in drivers { try driver.transition(to: .stop) }
            if final == .running { try resumeAll() }
            phase = .finished
            report.timings.finish = clock.now - start
        }
    }

    /// Returns every device to RUNNING (resetting where that fails): after a failure, a cancel,
    /// or when the target did not commit. Safe to call in any phase, and more than once.
    @discardableResult
    public func abort() -> [DeviceOutcome] {
        phase = .aborted
        // Tracking ends with the save; a failure to stop it cannot be undone here.
        try? memoryState?.stopTracking()
        return drivers.map { $0.recover(preferring: .running, role: .source) }
    }

    /// Records what a policy decided after the last round (the one-call form's bookkeeping).
    func recordDecision(_ round: SaveReport.Round, converged: Bool? = nil, reason: String? = nil) {
        if let last = report.rounds.indices.last, report.rounds[last].index == round.index { report.rounds[last] = round }
        if let converged { report.converged = converged }
        if let reason { report.convergenceReason = reason }
    }

    // MARK: internals

    private func resumeAll() throws(VFIOError) {
        if usesP2P && drivers.count > 1 {
            for driver in drivers { try driver.transition(to: .runningP2P) }
        }
        for driver in drivers { try driver.transition(to: .running) }
    }

    private func refreshPending(_ i: Int) throws(VFIOError) {
        let driver = drivers[i]
        if let state = driver.knownState, state == .preCopy || state == .preCopyP2P {
            let info = try driver.preCopyInfo()
            pending[i].initialBytes = info.initialBytes
            pending[i].dirtyBytes = info.dirtyBytes
            pending[i].reinitialized = info.reinitialized
            if info.reinitialized { report.devices[i].reinitCount += 1 }
        } else {
            pending[i].initialBytes = 0
            pending[i].dirtyBytes = 0
            pending[i].reinitialized = false
        }
        pending[i].stopCopyEstimate = try driver.device.stopCopySizeEstimate()
    }

    /// Reads device `i` until its data ends for this phase or `budget` bytes were read. Each
    /// chunk is read into the space the sink lends (or the session's own buffer) and handed
    /// over full, or at the budget or the device's end.
    private func drain(device i: Int, phase: StatePhase, budget: Int, into sink: any SaveSink) throws(VFIOError) -> IterationResult {
        let driver = drivers[i]
        let room = sink.payloadOffset
        guard room >= 0 && room <= 4096 else { throw VFIOError(.invalidArgument, "a sink's payload offset outside 0...4096 bytes") }
        var result = IterationResult(device: i, bytes: 0, chunks: 0, drained: false)
        var space = try chunkSpace(sink, device: i)
        var start = space.range.lowerBound + room
        var filled = start
        var end = min(space.range.upperBound, start + options.chunkSize)
        func emit() throws(VFIOError) {
            guard filled > start else { return }
            let chunk = StateChunk(device: i, phase: phase, offset: offsets[i], payload: start..<filled)
            try sink.writeState(chunk, from: space.buffer)
            let count = UInt64(filled - start)
            offsets[i] += count
            result.bytes += count
            result.chunks += 1
            report.devices[i].chunks += 1
            if phase == .stopCopy { report.devices[i].stopCopyBytes += count } else { report.devices[i].preCopyBytes += count }
        }
        func nextSpace() throws(VFIOError) {
            space = try chunkSpace(sink, device: i)
            start = space.range.lowerBound + room
            filled = start
            end = min(space.range.upperBound, start + options.chunkSize)
        }
        while UInt64(budget) > result.bytes + UInt64(filled - start) {
            let left = Int(min(UInt64(end - filled), UInt64(budget) - result.bytes - UInt64(filled - start)))
            switch try driver.readSaveData(into: space.buffer, range: filled..<filled + left) {
            case .bytes(let n):
                filled += n
                if filled == end {
                    try emit()
                    try nextSpace()
                }
            case .wouldBlock:
                // The data path reads with blocking calls on its own thread: put the fd back
                // in blocking mode rather than spin.
                try driver.makeSessionBlocking()
            case .endOfStream, .noDataNow:
                try emit()
                result.drained = true
                return result
            }
        }
        try emit()
        return result
    }

    /// The sink's space for the next chunk, or the session's buffer; checked to be big enough.
    private func chunkSpace(_ sink: any SaveSink, device: Int) throws(VFIOError) -> BufferSlice {
        guard let lent = try sink.chunkSpace(for: device, maxPayload: options.chunkSize) else {
            return BufferSlice(buffer, 0..<buffer.capacity)
        }
        guard lent.range.lowerBound >= 0, lent.range.upperBound <= lent.buffer.capacity,
              lent.range.count > sink.payloadOffset else {
            throw .invalidUse("the sink lent \(lent.range) of a \(lent.buffer.capacity)-byte buffer, no room for a chunk")
        }
        return lent
    }

    private func expect(_ allowed: Phase, _ step: String) throws(VFIOError) { try expect([allowed], step) }

    private func expect(_ allowed: [Phase], _ step: String) throws(VFIOError) {
        guard allowed.contains(phase) else {
            throw .invalidUse("\(step) called in phase \(phase.rawValue) of the save (allowed in \(allowed.map(\.rawValue).joined(separator: ", ")))")
        }
    }

    /// Runs one step; on failure rolls every device back and throws the error with the outcomes
    /// and the report so far.
    private func step(_ body: () throws(VFIOError) -> Void) throws(VFIOError) {
        do {
            try body()
        } catch {
            throw rollback(after: error)
        }
    }

    /// A failed step of an extension: roll back and return the error to throw.
    func failStep(_ error: VFIOError) -> VFIOError { rollback(after: error) }

    private func rollback(after error: VFIOError) -> VFIOError {
        var failure = error
        if let i = drivers.firstIndex(where: { $0.name == failure.device }), failure.state?.observed == nil {
            // A failed read or write carries no state: read it back (nil when even that fails).
            failure.state = failure.state ?? .init()
            failure.state?.observed = try? drivers[i].refreshState()
        }
        failure.outcomes = abort()
        failure.saveReport = report
        return failure
    }
}
