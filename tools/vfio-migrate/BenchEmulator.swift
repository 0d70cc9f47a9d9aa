// `bench` on the emulator: the devices are `mock:` devices with the fast source, the sections
// run in the library (EmulatorBenchmark), the memory check runs `send` and `receive` of this
// binary as two processes.
import ArgumentParser
import Foundation
import VFIOMigration
import VFIOMockDevices

extension BenchCommand {
    struct EmulatorResult: Encodable {
        var mode = "emulator"
        var run: EmulatorBenchReport
        var memory: TwoProcessMemory.Result?
        var passed: Bool
    }

    func runEmulator(_ invocation: Invocation) throws {
        let known = Set(BenchSection.allCases.map(\.rawValue) + ["memory"])
        for name in only where !known.contains(name) {
            throw CLIFailure(.usage, "--only takes \(known.sorted().joined(separator: ", ")), not '\(shown(name, limit: 40))'")
        }
        guard repetitions >= 1 && repetitions <= 1000 else { throw CLIFailure(.usage, "--repetitions takes 1 to 1000") }
        let chunk = try parseSize(chunkSize)
        guard chunk >= 4096 && chunk <= StreamLimits.default.maxPayload else {
            throw CLIFailure(.usage, "--chunk-size takes 4KiB to \(formatBytes(StreamLimits.default.maxPayload)) (readers refuse larger records by default)")
        }
        var targets: [String: BenchTarget] = [:]
        for text in expect {
            guard let (id, target) = BenchTarget.parse(text) else {
                throw CLIFailure(.usage, "--expect takes ID>=VALUE or ID<=VALUE (e.g. 'loopback.4>=0.95'), not '\(shown(text, limit: 60))'")
            }
            targets[id] = target
        }
        var sections = Set(BenchSection.allCases)
        if !only.isEmpty { sections = Set(only.compactMap(BenchSection.init(rawValue:))) }
        let wantsMemory = only.isEmpty || only.contains("memory")
        let scratchDirectory = try scratchDirectory()
        var credentials: BenchCredentials?
        var transport: BenchTransport?
        if sections.contains(.tls) {
            let made = try BenchCredentials.resolve(tlsDir, scratch: scratchDirectory)
            credentials = made
            transport = try made.transport()
        }
        defer { credentials?.remove() }

        var options = EmulatorBenchOptions(
            stateBytes: try parseSize(state), loopbackBytes: try parseSize(loopbackBytes), tlsBytes: try parseSize(tlsBytes), chunkSize: chunk,
            repetitions: repetitions, scratchDirectory: scratchDirectory, sections: sections, tls: transport)
        options.targets = targets
        var memoryState = try parseSize(self.memoryState)
        if quick {
            options.stateBytes = min(options.stateBytes, 64 << 20)
            options.loopbackBytes = min(options.loopbackBytes, 64 << 20)
            options.tlsBytes = min(options.tlsBytes, 16 << 20)
            options.repetitions = min(options.repetitions, 3)
            options.codecIterations = 50
            options.pageRegionBytes = 16 << 20
            memoryState = min(memoryState, 256 << 20)
        }
        for (name, value) in [("state", options.stateBytes), ("loopback-bytes", options.loopbackBytes), ("tls-bytes", options.tlsBytes)]
        where value < chunk {
            throw CLIFailure(.usage, "--\(name) must be at least one chunk (\(formatBytes(chunk)))")
        }
        let env = environment.make()
        let factory: BenchDeviceFactory = { request throws(VFIOError) in try env.open(Self.mockSpec(request)) }
        let say = { (text: String) in if !common.quiet && !common.json { Console.err(text) } }
        let bench = EmulatorBenchmark(options: options, devices: factory, progress: say)
        var result = try bench.run()
        let measured = Set(result.ratios.map(\.id))
        for id in targets.keys.sorted() where !measured.contains(id) {
            throw CLIFailure(.usage, "--expect \(shown(id, limit: 60)): no such ratio in this run (measured: \(measured.sorted().joined(separator: ", ")))")
        }
        if let credentials, credentials.generated { result.notes.append("tls: credentials made for this run with openssl (EC P-256)") }

        var memory: TwoProcessMemory.Result?
        if wantsMemory {
            say("measuring memory (\(memoryDevices) × \(formatBytes(memoryState)), two processes)")
            memory = try TwoProcessMemory(devices: memoryDevices, stateBytes: memoryState, channels: memoryDevices).run()
        }
        if let report {
            say("sampling a live migration for the report")
            let timeline = try bench.timeline(bytes: min(quick ? 32 << 20 : 256 << 20, options.stateBytes))
            try BenchReportWriter.emulator(result, memory: memory, timeline: timeline, to: report)
            say("report: \(report)/index.html")
        }
        let passed = result.missed.isEmpty && (memory?.met ?? true)
        let document = EmulatorResult(run: result, memory: memory, passed: passed)
        let text = BenchText.emulator(result, memory: memory)
        if let report { try BenchReportWriter.keep(json: try JSONOutput.encode(document), text: text, in: report) }
        if common.json {
            try JSONOutput.print(document)
        } else if !common.quiet {
            Console.out(text)
        }
        if !passed && !noFail { try exitWith(.failed) }
    }

    /// The fast source, so reads and writes of the device cost less than a memfd's.
    static func mockSpec(_ r: BenchDeviceRequest) -> String {
        var flags = ["stop-copy"]
        if r.p2p { flags.append("p2p") }
        if r.preCopy { flags.append("pre-copy") }
        var spec = "mock:bench-\(r.name)?state=\(r.stateBytes)&source=fast&flags=\(flags.joined(separator: ","))"
        if r.dirtying { spec += "&dirty-rate=4/1MiB" }
        return spec
    }

    func scratchDirectory() throws -> String {
        if let scratch {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: scratch, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw CLIFailure(.notFound, "--scratch \(shown(scratch)) is not a directory")
            }
            return scratch
        }
        if FileManager.default.isWritableFile(atPath: "/dev/shm") { return "/dev/shm" }
        return FileManager.default.temporaryDirectory.path
    }
}
