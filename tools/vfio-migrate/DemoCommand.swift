import ArgumentParser
import Foundation
import VFIOCore
import VFIOMigration
import VFIOMockDevices

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run a full live migration between emulated devices: pre-copy, stop-copy, stream, verify, load, compare.")

    @Option(help: "Device state size of each mock device (e.g. 64MiB).") var state = "64MiB"
    @Option(help: "Number of devices migrated together.") var devices = 2
    @Option(help: "Keep the stream at this path instead of a temporary file.") var keep: String?
    @Flag(help: "Print the result as JSON.") var json = false

    struct Result: Encodable {
        var stream: String
        var streamBytes: UInt64
        var save: SaveReport
        var load: LoadReport
        var identical: [Bool]
        var sourceStates: [MigrationState]
        var targetStates: [MigrationState]
    }

    func run() throws {
        try reporting {
            guard devices >= 1 && devices <= 8 else { throw CLIError(message: "--devices takes 1 to 8", code: .usage) }
            let size = try parseSize(state)
            let env = DeviceEnvironment.withMockDevices()
            let options = "state=\(size)&flags=stop-copy,p2p,pre-copy&dirty-rate=4/1MiB"
            let sources = try (0..<devices).map { try env.open("mock:src\($0)?\(options)&seed=\(100 + $0)") }
            let targets = try (0..<devices).map { try env.open("mock:dst\($0)?\(options)&seed=\(200 + $0)") }
            for s in sources { _ = s.mock!.mutateState(blocks: 8) } // a guest has been running
            let path = keep ?? FileManager.default.temporaryDirectory.appendingPathComponent("vfio-demo-\(getpid()).vfiomig").path
            defer { if keep == nil { try? FileManager.default.removeItem(atPath: path) } }
            say("migrating \(devices) mock device(s) of \(formatBytes(UInt64(size))) each (STOP_COPY|P2P|PRE_COPY)")

            // Source side: pre-copy while running, target compatibility checked before the
            // sources stop, then every device quiesces P2P before any enters STOP_COPY.
            let result = try Migration.migrate(sources, to: targets, through: path)
            let save = result.save
            let load = result.load
            for d in save.devices {
                say("  saved \(d.name): pre-copy \(formatBytes(d.preCopyBytes)), stop-copy \(formatBytes(d.stopCopyBytes)), \(d.chunks) chunks")
            }
            say("  pre-copy rounds: \(save.rounds.count)\(save.converged == true ? " (converged)" : ""); downtime \(formatDuration(save.timings.downtime))")

            let summary = try Migration.verify(path)
            say("stream \(path): \(formatBytes(summary.streamLength)), \(summary.recordCount) records, every checksum verified; loaded into the targets")
            let identical = zip(sources, targets).map { $0.mock!.stateDigest == $1.mock!.stateDigest }
            let sourceStates = try sources.map { try $0.currentState() }
            let targetStates = try targets.map { try $0.currentState() }
            for (i, same) in identical.enumerated() {
                say("  \(targets[i].name): \(same ? "identical state to" : "STATE DIFFERS FROM") \(sources[i].name); source \(sourceStates[i]), target \(targetStates[i])")
            }
            if json {
                try printJSON(Result(
                    stream: path, streamBytes: summary.streamLength, save: save, load: load, identical: identical,
                    sourceStates: sourceStates, targetStates: targetStates))
            }
            guard identical.allSatisfy({ $0 }) else {
                throw CLIError(message: "migration finished but a target's state differs from its source", code: .failed)
            }
            say("migration complete")
        }
    }

    private func say(_ line: String) {
        if json { FileHandle.standardError.write(Data((line + "\n").utf8)) } else { print(line) }
    }
}
