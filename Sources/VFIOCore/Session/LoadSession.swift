// The target side as steps a VMM drives, pushing bytes as they arrive from its own stream:
// begin (every device enters RESUMING), write each device's bytes in order, finish (RESUMING ->
// STOP, where each device validates what it got; the devices stay stopped), and resume once
// the VMM's last RAM arrived. `run(from:)` is the pull form over a LoadSource.
//
// Any failure aborts the resume by resetting every target (the uAPI's only way to abandon a
// resume) before it throws; the error's `outcomes` say so, and `loadReport` what was loaded.
import Synchronization
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
    /// What was loaded into guest memory, when the load carried it.
    public var memory: MemoryLoadReport?
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

/// The target side of a migration. Steps (begin, endDevice, finish, resume, abort) come from
/// one thread; `write(device:from:range:)` may be called from several threads at once for
/// different devices (a receiver with one thread per channel): its state sits behind a lock and
/// each device's bytes go to its own data fd.
public final class LoadSession: Sendable {
    public enum Phase: String, Sendable, Hashable {
        case created, resuming, validated, running, aborted
    }

    private struct State: Sendable {
        var phase: Phase = .created
        var report: LoadReport
        var ended: [Bool]
        var firstWrite: ContinuousClock.Instant?
    }

    public let drivers: [MigrationDriver]
    private let state: Mutex<State>
    /// The first abort's outcomes. Held while the targets are reset, so a second failing
    /// thread waits for that reset and gets its outcomes instead of resetting again.
    private let aborted = Mutex<[DeviceOutcome]?>(nil)
    private let clock = ContinuousClock()

    public var phase: Phase { state.withLock { $0.phase } }
    /// What was loaded so far.
    public var report: LoadReport { state.withLock { $0.report } }

    public init(drivers: [MigrationDriver]) throws(VFIOError) {
        guard !drivers.isEmpty else { throw .invalidUse("a load needs at least one device") }
        try SaveSession.checkPeerQuiescing(drivers)
        self.drivers = drivers
        self.state = Mutex(State(report: LoadReport(devices: drivers.map(\.name)), ended: Array(repeating: false, count: drivers.count)))
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
            let took = clock.now - start
            state.withLock {
                $0.phase = .resuming
                $0.report.timings.begin = took
            }
        }
    }

    /// Writes `buffer[range]`, the next bytes of device `device`'s data stream.
    public func write(device i: Int, from buffer: IOBuffer, range: Range<Int>) throws(VFIOError) {
        try expect(.resuming, "write")
        guard drivers.indices.contains(i) else { throw .invalidUse("device index \(i) outside 0..<\(drivers.count)") }
        guard !state.withLock({ $0.ended[i] }) else {
            throw .invalidUse("state written to device \(drivers[i].name) after its end", device: drivers[i].name)
        }
        guard range.lowerBound >= 0 && range.upperBound <= buffer.capacity else {
            throw .invalidUse("range \(range) outside the \(buffer.capacity)-byte buffer", device: drivers[i].name)
        }
        guard !range.isEmpty else { return }
        try step { () throws(VFIOError) in
            let now = clock.now
            state.withLock { if $0.firstWrite == nil { $0.firstWrite = now } }
            try drivers[i].writeResumeData(from: buffer, range: range)
            state.withLock {
                $0.report.devices[i].bytes += UInt64(range.count)
                $0.report.devices[i].chunks += 1
            }
        }
    }

    /// Device `device`'s stream is complete; when the sender said how long it is, the length
    /// must match what arrived.
    public func endDevice(_ i: Int, totalBytes: UInt64? = nil) throws(VFIOError) {
        try expect(.resuming, "endDevice")
        guard drivers.indices.contains(i) else { throw .invalidUse("device index \(i) outside 0..<\(drivers.count)") }
        let arrived = state.withLock { $0.report.devices[i].bytes }
        if let totalBytes, totalBytes != arrived {
            let name = drivers[i].name
            try step { () throws(VFIOError) in
                throw VFIOError(.streamCorrupt, "device state ends after \(arrived) bytes but the sender declared \(totalBytes)", device: name)
            }
        }
        state.withLock { $0.ended[i] = true }
    }

    /// RESUMING -> STOP for every device: where each validates the state it received. The
    /// devices stay stopped until `resume()`.
    @discardableResult
    public func finish() throws(VFIOError) -> LoadReport {
        try expect(.resuming, "finish")
        let open = state.withLock { s in s.ended.indices.filter { !s.ended[$0] } }
        guard open.isEmpty else {
            throw .invalidUse("finish called before endDevice for device(s) \(open.map(String.init).joined(separator: ", ")) of the load")
        }
        try step { () throws(VFIOError) in
            let start = clock.now
            state.withLock { if let first = $0.firstWrite { $0.report.timings.writing = start - first } }
            for driver in drivers { try driver.transition(to: .stop) }
            let took = clock.now - start
            state.withLock {
                $0.phase = .validated
                $0.report.timings.validation = took
            }
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
            let took = clock.now - start
            state.withLock {
                $0.phase = .running
                $0.report.timings.resume = took
            }
        }
    }

    /// Resets every target, discarding what was loaded. Safe in any phase, more than once, and
    /// from several threads: the targets are reset once and every caller gets those outcomes.
    @discardableResult
    public func abort() -> [DeviceOutcome] {
        aborted.withLock { done in
            if let done { return done }
            state.withLock { $0.phase = .aborted }
            let outcomes = drivers.map { $0.resetOutcome(role: .target) }
            done = outcomes
            return outcomes
        }
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
        let phase = self.phase
        guard phase == allowed else {
            throw .invalidUse("\(step) called in phase \(phase.rawValue) of the load (allowed in \(allowed.rawValue))")
        }
    }

    /// Runs one step; any failure resets every target before the error is thrown with the
    /// outcomes and what was loaded so far.
    private func step(_ body: () throws(VFIOError) -> Void) throws(VFIOError) {
        do {
            try body()
        } catch {
            throw failed(error)
        }
    }

    /// Aborts after `error` (a failed step here, or a failure the caller met while feeding the
    /// load, such as a dropped connection) and returns it with the outcomes and the report.
    public func failed(_ error: VFIOError) -> VFIOError {
        var failure = error
        if let i = drivers.firstIndex(where: { $0.name == failure.device }), failure.state?.observed == nil {
            failure.state = failure.state ?? .init()
            failure.state?.observed = try? drivers[i].refreshState()
        }
        failure.outcomes = abort()
        failure.loadReport = report
        return failure
    }
}
