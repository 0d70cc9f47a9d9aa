// The source side of a migration: optional pre-copy, quiescing every device's peer-to-peer DMA
// before any of them stops, STOP_COPY read to the end, and rollback that returns every device
// to RUNNING when anything fails before the stream is complete.
import VFIOBuffers

public struct SaveOptions: Sendable {
    /// Bytes read from a data fd per chunk (QEMU uses 1 MiB; larger showed no gain).
    public var chunkSize: Int
    /// Pre-copy when every device supports it; nil skips pre-copy.
    public var preCopy: PreCopyPolicy?
    /// Where the devices are left after a complete save: STOP (a migration hands over to the
    /// target) or RUNNING (a capture to a file).
    public var finalState: MigrationState
    /// Runs after pre-copy, before any device stops: the place to check a known target's
    /// compatibility, so an incompatible target is refused while the source still runs.
    public var beforeStop: (@Sendable () throws(VFIOError) -> Void)?

    public init(
        chunkSize: Int = 1 << 20, preCopy: PreCopyPolicy? = PreCopyPolicy(), finalState: MigrationState = .stop,
        beforeStop: (@Sendable () throws(VFIOError) -> Void)? = nil
    ) {
        precondition(chunkSize >= 4096, "chunk size below 4 KiB")
        precondition(finalState == .stop || finalState == .running, "a save ends in STOP or RUNNING")
        self.chunkSize = chunkSize
        self.preCopy = preCopy
        self.finalState = finalState
        self.beforeStop = beforeStop
    }
}

/// What a save did, per device.
public struct SaveReport: Sendable, Equatable, Codable {
    public struct Device: Sendable, Equatable, Codable {
        public var name: String
        public var preCopyBytes: UInt64 = 0
        public var stopCopyBytes: UInt64 = 0
        public var chunks: UInt64 = 0
        public var stopCopyEstimate: UInt64?
        public var totalBytes: UInt64 { preCopyBytes + stopCopyBytes }
    }
    public var devices: [Device]
    public var preCopyRounds: Int = 0
    /// Whether pre-copy ended because every device converged (false: round limit or skipped).
    public var preCopyConverged = false
    /// Time from the first device stopping to the last device's state being complete.
    public var stopCopyDuration: Duration = .zero
}

public final class SaveSession {
    public let drivers: [MigrationDriver]
    public let options: SaveOptions
    private let sink: any SaveSink
    private var report: SaveReport
    private var offsets: [UInt64]
    private let buffer: IOBuffer

    public init(drivers: [MigrationDriver], sink: any SaveSink, options: SaveOptions = SaveOptions()) {
        precondition(!drivers.isEmpty, "a save needs at least one device")
        self.drivers = drivers
        self.sink = sink
        self.options = options
        self.report = SaveReport(devices: drivers.map { SaveReport.Device(name: $0.name) })
        self.offsets = Array(repeating: 0, count: drivers.count)
        self.buffer = IOBuffer(capacity: sink.payloadOffset + options.chunkSize)
    }

    /// Several devices can only stop consistently when each can first stop initiating
    /// peer-to-peer DMA; QEMU refuses such a set, and so do we.
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

    /// Runs the whole save. On failure every device is returned to RUNNING (or reset) and the
    /// error says where each one was left.
    @discardableResult
    public func run() throws(VFIOError) -> SaveReport {
        try Self.checkPeerQuiescing(drivers)
        do {
            try runPhases()
            return report
        } catch {
            throw rollback(after: error)
        }
    }

    private var usesP2P: Bool { drivers.allSatisfy { $0.flags.contains(.p2p) } }

    private func runPhases() throws(VFIOError) {
        for (i, driver) in drivers.enumerated() {
            report.devices[i].stopCopyEstimate = try driver.device.stopCopySizeEstimate()
        }
        let preCopy = options.preCopy.flatMap { drivers.allSatisfy { $0.flags.contains(.preCopy) } ? $0 : nil }
        if let preCopy {
            try runPreCopy(preCopy)
        }
        try options.beforeStop?()

        let clock = ContinuousClock()
        let stopped = clock.now
        if usesP2P {
            // Every device stops peer DMA before any device stops entirely.
            for driver in drivers {
                try driver.transition(to: preCopy != nil ? .preCopyP2P : .runningP2P)
            }
        }
        for driver in drivers {
            try driver.transition(to: .stopCopy)
        }
        for i in drivers.indices {
            try drain(device: i, phase: .stopCopy)
            try sink.endOfDevice(device: i, totalBytes: offsets[i], chunks: report.devices[i].chunks)
        }
        report.stopCopyDuration = clock.now - stopped
        try sink.endOfStream()
        for driver in drivers {
            try driver.transition(to: .stop)
        }
        if options.finalState == .running {
            if usesP2P {
                for driver in drivers { try driver.transition(to: .runningP2P) }
            }
            for driver in drivers { try driver.transition(to: .running) }
        }
    }

    private func runPreCopy(_ policy: PreCopyPolicy) throws(VFIOError) {
        for driver in drivers {
            try driver.transition(to: .preCopy)
        }
        for round in 1...policy.maxRounds {
            var converged = true
            for i in drivers.indices {
                try drain(device: i, phase: .preCopy)
                let info = try drivers[i].preCopyInfo()
                try sink.preCopyProgress(device: i, info: info)
                converged = converged && policy.hasConverged(info)
            }
            report.preCopyRounds = round
            if converged {
                report.preCopyConverged = true
                return
            }
        }
    }

    /// Reads device `i` until its data ends for this phase, emitting full chunks.
    private func drain(device i: Int, phase: MigrationState) throws(VFIOError) {
        let driver = drivers[i]
        let start = sink.payloadOffset
        var filled = start
        while true {
            let result = try driver.readSaveData(into: buffer, range: filled..<buffer.capacity)
            switch result {
            case .bytes(let n):
                filled += n
                if filled == buffer.capacity {
                    try emit(device: i, phase: phase, payload: start..<filled)
                    filled = start
                }
                continue
            case .wouldBlock:
                // The data path reads with blocking calls on its own thread: put the fd back
                // in blocking mode rather than spin.
                try driver.channel?.setNonBlocking(false)
                continue
            case .endOfStream, .noDataNow:
                if filled > start {
                    try emit(device: i, phase: phase, payload: start..<filled)
                }
                return
            }
        }
    }

    private func emit(device i: Int, phase: MigrationState, payload: Range<Int>) throws(VFIOError) {
        try sink.deviceState(device: i, phase: phase, offset: offsets[i], buffer: buffer, payload: payload)
        offsets[i] += UInt64(payload.count)
        report.devices[i].chunks += 1
        if phase == .stopCopy {
            report.devices[i].stopCopyBytes += UInt64(payload.count)
        } else {
            report.devices[i].preCopyBytes += UInt64(payload.count)
        }
    }

    /// Returns every device to RUNNING (resetting where that fails) and folds what happened
    /// into the error: the failing device's state as read back before recovery touched it,
    /// what recovery did to it (or why it could not), and, for several devices, each outcome.
    private func rollback(after error: VFIOError) -> VFIOError {
        var failure = error
        var outcomes: [String] = []
        for driver in drivers {
            let failing = driver.name == failure.device
            if failing && failure.state?.observed == nil {
                // A failed read or write carries no state: read it back (nil when even that fails).
                failure.state = failure.state ?? .init()
                failure.state?.observed = try? driver.refreshState()
            }
            do {
                let recovery = try driver.recover(preferring: .running)
                outcomes.append("\(driver.name) \(recovery)")
                if failing { failure.state?.recovery = recovery.description }
            } catch let resetFailure {
                outcomes.append("\(driver.name) could not be recovered: \(resetFailure)")
                if failing { failure.state?.recovery = "could not be recovered: \(resetFailure)" }
            }
        }
        // One device that is itself the failing one needs no list; a sink, stream or several
        // devices do.
        if drivers.count > 1 || !drivers.contains(where: { $0.name == failure.device }) {
            failure.outcome = "source devices: " + outcomes.joined(separator: "; ")
        }
        return failure
    }
}
