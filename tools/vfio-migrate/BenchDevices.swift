// `bench --device`: real devices (or `mock:` ones, which the command takes too), migrated
// --runs times on this host; the percentiles per phase, the host, every device left RUNNING.
import Foundation
import VFIOMigration

extension BenchCommand {
    struct DeviceResult: Encodable {
        var mode = "device"
        var run: DeviceBenchReport
    }

    /// Opens `name`; a device whose group another process holds is refused saying so. (A
    /// second device of this run in an already opened group is refused the same way: the
    /// group file opens once.)
    static func open(_ name: String, in env: DeviceEnvironment, after opened: Int) throws -> VFIODevice {
        do throws(VFIOError) {
            return try env.open(name)
        } catch {
            guard error.errno == .busy else { throw error }
            let ours = opened > 0 ? ", or by a device opened before it in this run (devices of one IOMMU group cannot be named separately)" : ""
            throw CLIFailure(
                .failed, "\(shown(name)) is held by another process\(ours): \(shown(error.message)) (\(error.operation ?? "open") EBUSY on \(shown(error.device ?? name)))",
                device: name, hint: "stop the VMM or other VFIO user that has its group open, or choose another device")
        }
    }

    func runDevices(_ invocation: Invocation) throws {
        guard runs >= 1 && runs <= 100_000 else { throw CLIFailure(.usage, "--runs takes 1 to 100000") }
        guard let sinkKind = DeviceBenchSink(rawValue: sink) else { throw CLIFailure(.usage, "--sink takes memory or null") }
        guard targetNames.isEmpty || targetNames.count == deviceNames.count else {
            throw CLIFailure(.usage, "\(deviceNames.count) --device but \(targetNames.count) --target: one target per device, or none")
        }
        guard targetNames.isEmpty || sinkKind == .memory else { throw CLIFailure(.usage, "--target needs --sink memory (a /dev/null save has nothing to load)") }
        let chunk = try parseSize(chunkSize)
        guard chunk >= 4096 && chunk <= StreamLimits.default.maxPayload else {
            throw CLIFailure(.usage, "--chunk-size takes 4KiB to \(formatBytes(StreamLimits.default.maxPayload)) (readers refuse larger records by default)")
        }
        let env = environment.make()
        var opened: [String: VFIODevice] = [:]
        for name in deviceNames + targetNames where opened[name] == nil { opened[name] = try Self.open(name, in: env, after: opened.count) }
        let sources = deviceNames.map { opened[$0]! }
        let targets = targetNames.isEmpty ? nil : targetNames.map { opened[$0]! }
        let options = DeviceBenchOptions(sink: sinkKind, preCopy: !noPreCopy, chunkSize: chunk, sysfsRoot: environment.sysfsRoot)
        let bench = try DeviceBenchmark(sources: sources, targets: targets, options: options)
        let say = { (text: String) in if !common.quiet && !common.json { Console.err(text) } }
        say("migrating \(sources.count) device(s) \(runs) time(s): save to \(sinkKind == .memory ? "memory, load back" : "/dev/null")")
        do throws(VFIOError) {
            for i in 0..<runs {
                if report != nil && i == runs - 1 { bench.sample = true }
                let run = try bench.runOnce()
                say("  run \(i + 1): \(formatBytes(run.stateBytes)), save \(formatSeconds(run.phases["save.total"] ?? 0)), downtime \(formatSeconds(run.phases["downtime"] ?? 0))")
            }
        } catch {
            let states = bench.finish().finalStates.sorted { $0.key < $1.key }.map { "\(shown($0.key)) \($0.value)" }
            Console.err("vfio-migrate: bench stopped after \(bench.report.runs.count) of \(runs) run(s); devices left: \(states.joined(separator: ", "))")
            throw error
        }
        let result = bench.finish()
        let text = BenchText.device(result)
        if let report {
            try BenchReportWriter.device(result, samples: bench.samples, to: report)
            try BenchReportWriter.keep(json: try JSONOutput.encode(DeviceResult(run: result)), text: text, in: report)
        }
        if common.json {
            try JSONOutput.print(DeviceResult(run: result))
        } else if !common.quiet {
            Console.out(text)
        }
    }
}
