// `vfio-migrate bench --device`: real devices migrated on one host, run after run: saved into
// memory (or /dev/null) while they run, loaded back into the same devices or sibling ones,
// each phase timed, and every device returned to RUNNING after every run, a failed one too.
// The percentiles over the runs are what a hardware owner publishes (the best published VFIO
// figures use the 25th percentile of 70-100 runs).
import Foundation
import VFIOCore
import VFIOKernel

public enum DeviceBenchSink: String, Sendable, Hashable, Codable {
    /// A stream in memory, then loaded back.
    case memory
    /// /dev/null: the save alone.
    case null
}

public struct DeviceBenchOptions: Sendable {
    public var sink: DeviceBenchSink
    public var preCopy: Bool
    public var chunkSize: Int
    public var sysfsRoot: String

    public init(sink: DeviceBenchSink = .memory, preCopy: Bool = true, chunkSize: Int = 1 << 20, sysfsRoot: String = "/sys") {
        self.sink = sink
        self.preCopy = preCopy
        self.chunkSize = chunkSize
        self.sysfsRoot = sysfsRoot
    }
}

/// One migration of the device set; durations in seconds.
public struct DeviceRun: Sendable, Hashable, Codable {
    public var index: Int
    public var stateBytes: UInt64
    public var preCopyBytes: UInt64
    public var rounds: Int
    /// Phase -> seconds (save.setup, save.preCopy, save.quiesce, save.stopping,
    /// save.finalRead, save.finish, save.total, load.begin, load.writing, load.validation,
    /// load.resume, load.total, downtime).
    public var phases: [String: Double]
    /// Bytes left after each pre-copy round (the session's estimate).
    public var remainingAfterRound: [UInt64]
    public var saveRate: Double
    public var loadRate: Double?
}

/// The 25th, 50th and 90th percentiles of one phase over the runs.
public struct PhasePercentiles: Sendable, Hashable, Codable {
    public var p25: Double
    public var p50: Double
    public var p90: Double
}

public struct DeviceBenchReport: Sendable, Codable {
    public var host: BenchHost
    public var devices: [BenchDeviceInfo]
    public var targets: [BenchDeviceInfo]
    public var sink: DeviceBenchSink
    public var chunkSize: Int
    public var runs: [DeviceRun] = []
    public var percentiles: [String: PhasePercentiles] = [:]
    /// Where the pipeline's buffers were and which node its writer thread ran on (last run).
    public var buffers: BufferPlacement?
    public var writerThreadNode: Int?
    /// Every device's state after the last run (RUNNING, or what it could be brought to).
    public var finalStates: [String: String] = [:]
    /// The failure that ended the runs early, if one did.
    public var failure: String?
}

public final class DeviceBenchmark {
    public let sources: [VFIODevice]
    public let targets: [VFIODevice]
    public let options: DeviceBenchOptions
    public private(set) var report: DeviceBenchReport
    private let memory = MemoryStream()
    /// When set, the next run's channel bytes are sampled into `samples`.
    public var sample = false
    public private(set) var samples: [ThroughputSample] = []

    /// `targets` receive the state of `sources` (the same devices when nil).
    public init(sources: [VFIODevice], targets: [VFIODevice]? = nil, options: DeviceBenchOptions = DeviceBenchOptions()) throws(VFIOError) {
        guard !sources.isEmpty else { throw VFIOError(.invalidArgument, "a device benchmark needs at least one device") }
        let targets = targets ?? sources
        guard targets.count == sources.count else {
            throw VFIOError(.invalidArgument, "\(sources.count) device(s) but \(targets.count) target(s): one target per device")
        }
        self.sources = sources
        self.targets = targets
        self.options = options
        report = DeviceBenchReport(
            host: BenchHost.current(sysfsRoot: options.sysfsRoot), devices: sources.map { BenchDeviceInfo($0, sysfsRoot: options.sysfsRoot) },
            targets: targets.map { BenchDeviceInfo($0, sysfsRoot: options.sysfsRoot) }, sink: options.sink, chunkSize: options.chunkSize)
    }

    /// Every device, sources and targets, once.
    private var everyDevice: [VFIODevice] {
        var seen = Set<ObjectIdentifier>()
        return (sources + targets).filter { seen.insert(ObjectIdentifier($0)).inserted }
    }

    /// One migration. On failure every device is brought back to RUNNING (or reset) before
    /// the error is thrown, and the error's outcomes say where each one is.
    @discardableResult
    public func runOnce() throws(VFIOError) -> DeviceRun {
        do {
            let run = try migrate(index: report.runs.count)
            report.runs.append(run)
            try requireRunning()
            return run
        } catch {
            var failure = error
            failure.outcomes = restoreRunning()
            report.failure = failure.description
            throw failure
        }
    }

    /// `count` runs, then the percentiles; stops at the first failure (the devices RUNNING).
    public func run(count: Int, afterEach: (DeviceRun) -> Void = { _ in }) throws(VFIOError) -> DeviceBenchReport {
        for _ in 0..<count { afterEach(try runOnce()) }
        return finish()
    }

    /// The percentiles over the runs so far, and each device's state now.
    public func finish() -> DeviceBenchReport {
        var phases: [String: [Double]] = [:]
        for run in report.runs { for (name, value) in run.phases { phases[name, default: []].append(value) } }
        for (name, values) in phases {
            report.percentiles[name] = PhasePercentiles(
                p25: BenchStatistics.percentile(25, of: values)!, p50: BenchStatistics.percentile(50, of: values)!,
                p90: BenchStatistics.percentile(90, of: values)!)
        }
        for device in everyDevice { report.finalStates[device.name] = (try? device.currentState()).map { "\($0)" } ?? "unknown" }
        return report
    }

    private func migrate(index: Int) throws(VFIOError) -> DeviceRun {
        let save = SaveOptions(chunkSize: options.chunkSize, preCopy: options.preCopy)
        let counter = ByteCounter()
        let sink: any ByteSink
        switch options.sink {
        case .memory:
            memory.rewind()
            sink = memory
        case .null:
            sink = try FileChannel.creating("/dev/null")
        }
        let sampler = sample ? ThroughputSampler([counter], interval: .milliseconds(5)) : nil
        let clock = ContinuousClock()
        let saveStart = clock.now
        let saved: Migration.SaveResult
        do {
            saved = try Migration.save(sources, to: CountingSink(sink, counter: counter), options: save, leaving: .running)
        } catch {
            if let sampler { samples = sampler.stop() }
            throw error
        }
        let saveTotal = (clock.now - saveStart).seconds
        if let sampler {
            samples = sampler.stop()
            sample = false
        }
        let t = saved.report.timings
        var phases: [String: Double] = [
            "save.setup": t.setup.seconds, "save.preCopy": t.preCopy.seconds, "save.quiesce": t.quiesce.seconds,
            "save.stopping": t.stopping.seconds, "save.finalRead": t.finalRead.seconds, "save.finish": t.finish.seconds,
            "save.total": saveTotal,
        ]
        report.buffers = saved.pipeline?.buffers
        report.writerThreadNode = saved.pipeline?.channels.first?.boundToNode
        let bytes = saved.report.totalBytes
        var loadRate: Double?
        var downtime = t.downtime.seconds
        if options.sink == .memory {
            memory.rewindForReading()
            let loadStart = clock.now
            let loaded = try Migration.load(targets, from: memory, leaving: .running)
            let loadTotal = (clock.now - loadStart).seconds
            let l = loaded.report.timings
            phases["load.begin"] = l.begin.seconds
            phases["load.writing"] = l.writing.seconds
            phases["load.validation"] = l.validation.seconds
            phases["load.resume"] = l.resume.seconds
            phases["load.total"] = loadTotal
            downtime += loadTotal
            loadRate = l.writing.seconds > 0 ? Double(loaded.report.totalBytes) / l.writing.seconds : nil
        }
        phases["downtime"] = downtime
        let reading = (t.preCopy + t.finalRead).seconds
        return DeviceRun(
            index: index, stateBytes: bytes, preCopyBytes: saved.report.devices.reduce(0) { $0 + $1.preCopyBytes },
            rounds: saved.report.rounds.count, phases: phases, remainingAfterRound: saved.report.rounds.map(\.remainingBytes),
            saveRate: reading > 0 ? Double(bytes) / reading : 0, loadRate: loadRate)
    }

    /// A run that reported success must have left every device RUNNING.
    private func requireRunning() throws(VFIOError) {
        for device in everyDevice {
            let state = try device.currentState()
            guard state == .running else {
                throw VFIOError(.deviceError, "the run left the device in \(state), not RUNNING", device: device.name)
            }
        }
    }

    /// Every device back to RUNNING through the legal path, or reset; where each one is.
    private func restoreRunning() -> [DeviceOutcome] {
        let sourceSet = Set(sources.map(ObjectIdentifier.init))
        return everyDevice.map { device in
            let role: DeviceOutcome.Role = sourceSet.contains(ObjectIdentifier(device)) ? .source : .target
            guard let driver = try? MigrationDriver(device: device) else {
                return DeviceOutcome(device: device.name, role: role, finalState: .unknown(nil), recovery: .none)
            }
            return driver.recover(preferring: .running, role: role)
        }
    }
}
