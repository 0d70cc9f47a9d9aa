// The target side: every device enters RESUMING, the stream's chunks are written to the
// device they belong to, and the move to STOP is where each device validates what it got.
// Any failure aborts the resume by resetting the targets (the uAPI's only way to abandon a
// resume) and reports the state each one was left in.
import VFIOBuffers

public struct LoadOptions: Sendable {
    /// Where the devices are left after a complete load: RUNNING, or STOP for a VMM that
    /// starts them itself.
    public var finalState: MigrationState
    /// Runs before any device enters RESUMING: the compatibility check.
    public var beforeResuming: (@Sendable () throws(VFIOError) -> Void)?

    public init(finalState: MigrationState = .running, beforeResuming: (@Sendable () throws(VFIOError) -> Void)? = nil) {
        precondition(finalState == .stop || finalState == .running, "a load ends in STOP or RUNNING")
        self.finalState = finalState
        self.beforeResuming = beforeResuming
    }
}

public struct LoadReport: Sendable, Equatable, Codable {
    public struct Device: Sendable, Equatable, Codable {
        public var name: String
        public var bytes: UInt64 = 0
        public var chunks: UInt64 = 0
    }
    public var devices: [Device]
}

public final class LoadSession {
    public let drivers: [MigrationDriver]
    public let options: LoadOptions
    private let source: any LoadSource
    private var report: LoadReport

    public init(drivers: [MigrationDriver], source: any LoadSource, options: LoadOptions = LoadOptions()) {
        precondition(!drivers.isEmpty, "a load needs at least one device")
        self.drivers = drivers
        self.source = source
        self.options = options
        self.report = LoadReport(devices: drivers.map { LoadReport.Device(name: $0.name) })
    }

    @discardableResult
    public func run() throws(VFIOError) -> LoadReport {
        guard source.deviceCount == drivers.count else {
            throw VFIOError(
                .streamIncompatible,
                "the stream carries \(source.deviceCount) device(s) but \(drivers.count) target device(s) were given")
        }
        try SaveSession.checkPeerQuiescing(drivers)
        try options.beforeResuming?()
        do {
            try runPhases()
            return report
        } catch {
            throw abort(after: error)
        }
    }

    private func runPhases() throws(VFIOError) {
        for driver in drivers {
            try driver.transition(to: .resuming)
        }
        var ended = Array(repeating: false, count: drivers.count)
        loop: while true {
            switch try source.next() {
            case .deviceState(let device, _, let offset, let buffer, let payload):
                precondition(device < drivers.count && !ended[device], "the stream reader let through a bad device index")
                precondition(offset == report.devices[device].bytes, "the stream reader let through a gap")
                try drivers[device].writeResumeData(from: buffer, range: payload)
                report.devices[device].bytes += UInt64(payload.count)
                report.devices[device].chunks += 1
            case .preCopyProgress:
                continue
            case .endOfDevice(let device, _):
                ended[device] = true
            case .endOfStream:
                break loop
            }
        }
        // RESUMING -> STOP is where each device validates the state it received.
        for driver in drivers {
            try driver.transition(to: .stop)
        }
        if options.finalState == .running {
            let p2p = drivers.allSatisfy { $0.flags.contains(.p2p) }
            if p2p && drivers.count > 1 {
                for driver in drivers { try driver.transition(to: .runningP2P) }
            }
            for driver in drivers { try driver.transition(to: .running) }
        }
    }

    /// Resets every target (abandoning any half-loaded state) and says so in the error.
    private func abort(after error: VFIOError) -> VFIOError {
        var failure = error
        var outcomes: [String] = []
        for driver in drivers {
            let failing = driver.name == failure.device
            if failing { failure.state = failure.state ?? .init() }
            do {
                try driver.resetDevice()
                outcomes.append("\(driver.name) reset to RUNNING with its loaded state discarded")
                if failing { failure.state?.recovery = "reset to RUNNING, loaded state discarded" }
            } catch let resetFailure {
                outcomes.append("\(driver.name) could not be reset: \(resetFailure)")
                if failing { failure.state?.recovery = "could not be reset: \(resetFailure)" }
            }
        }
        // One device that is itself the failing one needs no list; a sink, stream or several
        // devices do.
        if drivers.count > 1 || !drivers.contains(where: { $0.name == failure.device }) {
            failure.outcome = "target devices: " + outcomes.joined(separator: "; ")
        }
        return failure
    }
}
