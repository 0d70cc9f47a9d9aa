// The target side as steps a VMM drives, pushing bytes as they arrive from its own stream:
// begin (every device enters RESUMING), write each device's bytes in order, finish (RESUMING ->
// STOP, where each device validates what it got; the devices stay stopped), and resume once
// the VMM's last RAM arrived. `run(from:)` is the pull form over a LoadSource.
//
// Any failure aborts the resume by resetting every target (the uAPI's only way to abandon a
// resume) before it throws; the error's `outcomes` say so, and `loadReport` what was loaded.
import VFIOBuffers
import VFIOStream

public struct LoadReport: Sendable, Hashable, Codable {
    public struct Device: Sendable, Hashable, Codable {
        public var name: String
        public var bytes: UInt64 = 0
        public var chunks: UInt64 = 0
        public init(name: String) { self.name = name }
    }

    public struct Timings: Sendable, Hashable, Codable {
        /// Entering RESUMING, every device.
        public var begin: Duration = .zero
        /// From the first byte written to the last (includes waiting for the stream).
        public var writing: Duration = .zero
        /// RESUMING -> STOP (validation), every device.
        public var validation: Duration = .zero
        /// STOP -> RUNNING, every device.
        public var resume: Duration = .zero
    }

    public var devices: [Device]
    public var timings = Timings()
    public init(devices: [String]) { self.devices = devices.map(Device.init(name:)) }
    public var totalBytes: UInt64 { devices.reduce(0) { $0 + $1.bytes } }
}

/// Where a finished load leaves its devices.
public enum TargetFinalState: String, Sendable, Hashable, Codable {
    /// STOP: the VMM resumes them itself once its own last state arrived (`resume()`).
    case stopped
    /// RUNNING.
    case running
}

public final class LoadSession {
    public enum Phase: String, Sendable, Hashable {
        case created, resuming, validated, running, aborted
    }

    public let drivers: [MigrationDriver]
    public private(set) var phase: Phase = .created
    public private(set) var report: LoadReport
    private var ended: [Bool]
    private var firstWrite: ContinuousClock.Instant?
    private let clock = ContinuousClock()

    public init(drivers: [MigrationDriver]) throws(VFIOError) {
        guard !drivers.isEmpty else { throw .invalidUse("a load needs at least one device") }
        try SaveSession.checkPeerQuiescing(drivers)
        self.drivers = drivers
        self.report = LoadReport(devices: drivers.map(\.name))
        self.ended = Array(repeating: false, count: drivers.count)
    }

    public convenience init(devices: [any MigrationDevice]) throws(VFIOError) {
        var drivers: [MigrationDriver] = []
        for device in devices { drivers.append(try MigrationDriver(device: device)) }
        try self.init(drivers: drivers)
    }

    /// Every device enters RESUMING.
    public func begin() throws(VFIOError) {
        try expect(.created, "begin")
        try step { () throws(VFIOError) in
            let start = clock.now
            for driver in drivers { try driver.transition(to: .resuming) }
            phase = .resuming
            report.timings.begin = clock.now - start
        }
    }

    /// Writes `buffer[range]`, the next bytes of device `device`'s data stream.
    public func write(device i: Int, from buffer: IOBuffer, range: Range<Int>) throws(VFIOError) {
        try expect(.resuming, "write")
        guard drivers.indices.contains(i) else { throw .invalidUse("device index \(i) outside 0..<\(drivers.count)") }
        guard !ended[i] else { throw .invalidUse("state written to device \(drivers[i].name) after its end", device: drivers[i].name) }
        guard range.lowerBound >= 0 && range.upperBound <= buffer.capacity else {
            throw .invalidUse("range \(range) outside the \(buffer.capacity)-byte buffer", device: drivers[i].name)
        }
        guard !range.isEmpty else { return }
        try step { () throws(VFIOError) in
            if firstWrite == nil { firstWrite = clock.now }
            try drivers[i].writeResumeData(from: buffer, range: range)
            report.devices[i].bytes += UInt64(range.count)
            report.devices[i].chunks += 1
        }
    }

    /// Device `device`'s stream is complete; when the sender said how long it is, the length
    /// must match what arrived.
    public func endDevice(_ i: Int, totalBytes: UInt64? = nil) throws(VFIOError) {
        try expect(.resuming, "endDevice")
        guard drivers.indices.contains(i) else { throw .invalidUse("device index \(i) outside 0..<\(drivers.count)") }
        if let totalBytes, totalBytes != report.devices[i].bytes {
            let name = drivers[i].name
            try step { () throws(VFIOError) in
                throw VFIOError(
                    .streamCorrupt, "device state ends after \(report.devices[i].bytes) bytes but the sender declared \(totalBytes)",
                    device: name)
            }
        }
        ended[i] = true
    }

    /// RESUMING -> STOP for every device: where each validates the state it received. The
    /// devices stay stopped until `resume()`.
    @discardableResult
    public func finish() throws(VFIOError) -> LoadReport {
        try expect(.resuming, "finish")
        try step { () throws(VFIOError) in
            if let firstWrite { report.timings.writing = clock.now - firstWrite }
            let start = clock.now
            for driver in drivers { try driver.transition(to: .stop) }
            phase = .validated
            report.timings.validation = clock.now - start
        }
        return report
    }

    /// STOP -> RUNNING for every device (through RUNNING_P2P when several devices have P2P).
    public func resume() throws(VFIOError) {
        try expect(.validated, "resume")
        try step { () throws(VFIOError) in
            let start = clock.now
            if drivers.count > 1 && drivers.allSatisfy({ $0.flags.contains(.p2p) }) {
                for driver in drivers { try driver.transition(to: .runningP2P) }
            }
            for driver in drivers { try driver.transition(to: .running) }
            phase = .running
            report.timings.resume = clock.now - start
        }
    }

    /// Resets every target, discarding what was loaded. Safe in any phase, more than once.
    @discardableResult
    public func abort() -> [DeviceOutcome] {
        phase = .aborted
        return drivers.map { $0.resetOutcome(role: .target) }
    }

    /// The pull form: begin, every event of `source` in order, finish, and resume unless the
    /// devices are to stay stopped. `beforeResuming` runs before any device enters RESUMING
    /// (the compatibility check).
    @discardableResult
    public func run(
        from source: any LoadSource, leaving final: TargetFinalState = .stopped,
        beforeResuming: () throws(VFIOError) -> Void = {}
    ) throws(VFIOError) -> LoadReport {
        guard source.deviceCount == drivers.count else {
            throw VFIOError(
                .streamIncompatible,
                "the stream carries \(source.deviceCount) device(s) but \(drivers.count) target device(s) were given")
        }
        try beforeResuming()
        try begin()
        loop: while true {
            let event: LoadEvent
            do {
                event = try source.next()
            } catch {
                try step { () throws(VFIOError) in throw error }
                return report
            }
            switch event {
            case .state(let chunk, let buffer):
                try write(device: chunk.device, from: buffer, range: chunk.payload)
            case .progress:
                continue
            case .endOfDevice(let device, let totalBytes):
                try endDevice(device, totalBytes: totalBytes)
            case .endOfStream:
                break loop
            }
        }
        try finish()
        if final == .running { try resume() }
        return report
    }

    private func expect(_ allowed: Phase, _ step: String) throws(VFIOError) {
        guard phase == allowed else {
            throw .invalidUse("\(step) called in phase \(phase.rawValue) of the load (allowed in \(allowed.rawValue))")
        }
    }

    private func step(_ body: () throws(VFIOError) -> Void) throws(VFIOError) {
        do {
            try body()
        } catch {
            var failure = error
            if let i = drivers.firstIndex(where: { $0.name == failure.device }), failure.state?.observed == nil {
                failure.state = failure.state ?? .init()
                failure.state?.observed = try? drivers[i].refreshState()
            }
            failure.outcomes = abort()
            failure.loadReport = report
            throw failure
        }
    }
}
