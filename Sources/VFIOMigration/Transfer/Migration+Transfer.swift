// The one-call live migration between two processes (two hosts in real use): `send` on the
// source, `receive` on the target. Built on SendSession/ReceiveSession and the steppable
// SaveSession, so a VMM that needs its own loop uses those directly.
import Foundation
import VFIOCore
import VFIOKernel
import VFIOStream

/// Where the source's downtime went, from the moment the first device began to stop until
/// the target's devices ran (or, when they were left stopped, until the target confirmed).
public struct DowntimeBreakdown: Sendable, Hashable, Codable {
    public var total: Duration
    /// Quiescing P2P and entering STOP_COPY, every device.
    public var stopping: Duration
    /// Reading STOP_COPY to its end into the channels.
    public var finalRead: Duration
    /// Leaving STOP_COPY on the source.
    public var sourceFinish: Duration
    /// From the last byte handed to the channels until the target had written everything
    /// (network tail, the target's last writes, its checks).
    public var transferAndWrite: Duration
    /// The target devices' RESUMING -> STOP (their own validation), as the target measured it.
    public var targetValidation: Duration
    /// The commit round trip and the target's resume.
    public var commitAndResume: Duration
    /// The target's resume alone, as it measured it (nil: not resumed, or not said).
    public var targetResume: Duration?
}

extension Migration {
    public struct SendResult: Sendable {
        public var report: SaveReport
        /// Channel 0's header (with the migration id the target assigned).
        public var header: StreamHeader
        /// The target's own description: its devices, host and limits.
        public var target: StreamHeader
        public var pipeline: PipelineMetrics
        public var confirmation: TargetConfirmation
        public var downtime: DowntimeBreakdown
        /// Per device, the switchover acknowledgement the stop waited for.
        public var switchover: [SwitchoverStatus]
    }

    /// Migrates `devices` (in stream order) to the target `connector` reaches: negotiates (an
    /// incompatible target is refused before anything runs), pre-copies while the devices run
    /// until `policy` and the target's switchover acknowledgement allow the stop, sends the
    /// stop-copy state over `options.channels` channels and commits once the target confirmed
    /// the load. Any failure or cancel before the commit returns every source to RUNNING and
    /// throws with each device's outcome; after the commit the sources stay stopped.
    @discardableResult
    public static func send(
        _ devices: [VFIODevice], to connector: any TransferConnecting, options: TransferOptions = TransferOptions(),
        save: SaveOptions = SaveOptions(), policy: any ConvergencePolicy = PendingBytesPolicy(),
        memory: GuestMemory? = nil, memoryOptions: MemoryOptions = MemoryOptions(),
        cancellation: MigrationCancellation? = nil
    ) throws(VFIOError) -> SendResult {
        var drivers: [MigrationDriver] = []
        for device in devices { drivers.append(try MigrationDriver(device: device)) }
        let header = try Self.header(for: drivers, devices: devices, chunkSize: save.chunkSize, memory: memory)
        var saveMemory: SaveMemory?
        if let memory {
            let tracker: any DirtyPageTracker
            if let given = memoryOptions.tracker {
                tracker = given
            } else {
                tracker = try DirtyTrackerChoice.choose(for: devices, memory: memory, allowAllDirty: memoryOptions.allowAllDirty)
            }
            saveMemory = SaveMemory(memory: memory, tracker: tracker, vmmLog: memoryOptions.vmmLog)
        }
        var transferOptions = options
        transferOptions.pipeline.node = transferOptions.pipeline.node ?? devices.first?.identity.numaNode
        transferOptions.pipeline.bufferSize = max(
            transferOptions.pipeline.bufferSize, StreamFormat.recordHeaderSize + save.chunkSize + Batch.controlRecordSpace)
        let transfer = SendSession(connector: connector, options: transferOptions, cancellation: cancellation)
        let untouched = drivers.map {
            DeviceOutcome(device: $0.name, role: .source, finalState: $0.knownState.map { .inState($0) } ?? .unknown(nil), recovery: .none)
        }
        let session: SaveSession
        let output: PipelinedStreamOutput
        do {
            try transfer.negotiate(header)
            session = try SaveSession(drivers: drivers, options: save, memory: saveMemory)
            transfer.preCopyInUse = save.preCopy && drivers.allSatisfy { $0.flags.contains(.preCopy) }
            output = try transfer.openOutput()
            output.copiesLivePages = !memoryOptions.stableDuringPreCopy
        } catch {
            var failure = transfer.explain(error)
            failure.outcomes = untouched
            transfer.close(after: failure)
            throw failure
        }

        let clock = ContinuousClock()
        var stopBegan: ContinuousClock.Instant?
        do throws(VFIOError) {
            let report = try session.run(into: output, policy: transfer.policy(wrapping: policy), leaving: .stopped, beforeStop: { () throws(VFIOError) in
                try transfer.checkReadyToStop()
                stopBegan = clock.now
            })
            let lastByte = clock.now
            let loaded: TargetConfirmation
            do {
                loaded = try transfer.awaitLoaded(devices: devices.count, totalStateBytes: report.totalBytes)
            } catch {
                var failure = transfer.explain(error)
                failure.outcomes = session.abort()
                failure.saveReport = report
                transfer.close(after: failure)
                throw failure
            }
            let loadedAt = clock.now
            let confirmation = transfer.commit(loaded)
            let committedAt = clock.now
            transfer.close()
            let began = stopBegan ?? lastByte
            let downtime = DowntimeBreakdown(
                total: committedAt - began,
                stopping: report.timings.quiesce + report.timings.stopping,
                finalRead: report.timings.finalRead,
                sourceFinish: report.timings.finish,
                transferAndWrite: max(.zero, loadedAt - lastByte - loaded.validation),
                targetValidation: loaded.validation,
                commitAndResume: committedAt - loadedAt,
                targetResume: confirmation.resume)
            return SendResult(
                report: report, header: output.header, target: transfer.target ?? output.header, pipeline: output.metrics,
                confirmation: confirmation, downtime: downtime, switchover: transfer.switchover)
        } catch {
            // run() already returned the sources to RUNNING and put the outcomes in the error.
            let failure = transfer.explain(error)
            transfer.close(after: failure)
            throw failure
        }
    }

    /// Receives one migration into `devices` through `acceptor`, and leaves them RUNNING once
    /// the source committed (or stopped, for a VMM that resumes them itself). With `memory`
    /// (writable, the source's regions) the guest's pages are written into it.
    @discardableResult
    public static func receive(
        _ devices: [VFIODevice], from acceptor: any TransferAccepting, options: ReceiveOptions = ReceiveOptions(),
        leaving final: TargetFinalState = .running, memory: GuestMemory? = nil, cancellation: MigrationCancellation? = nil
    ) throws(VFIOError) -> ReceiveResult {
        try ReceiveSession(devices: devices, acceptor: acceptor, options: options, memory: memory, cancellation: cancellation).run(leaving: final)
    }
}
