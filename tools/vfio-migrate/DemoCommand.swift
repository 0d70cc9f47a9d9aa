import ArgumentParser
import Foundation
import VFIOMigration
import VFIOMockDevices

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run a full live migration between emulated devices: pre-copy, stop-copy, stream, verify, load, compare.",
        discussion: """
            The default command. Exit 0 when every target holds exactly its source's state.

            Examples:
              vfio-migrate
              vfio-migrate demo --state 1GiB --devices 4 --keep demo.vfiomig
            """)

    @Option(help: "Device state size of each mock device (e.g. 64MiB).") var state = "64MiB"
    @Option(help: "Number of devices migrated together.") var devices = 2
    @Option(help: "Keep the stream at this path instead of a temporary file.") var keep: String?
    @OptionGroup var common: CommonOptions

    struct Result: Encodable {
        var stream: String
        var streamBytes: UInt64
        var save: SaveReport
        var load: LoadReport
        var identical: [Bool]
        var sourceStates: [String]
        var targetStates: [String]
    }

    func run() throws {
        try execute(common) { invocation in
            guard devices >= 1 && devices <= 8 else { throw CLIFailure(.usage, "--devices takes 1 to 8") }
            let size = try parseSize(state)
            let env = DeviceEnvironment.withMockDevices()
            let options = "state=\(size)&flags=stop-copy,p2p,pre-copy&dirty-rate=4/1MiB"
            let sources = try (0..<devices).map { try env.open("mock:src\($0)?\(options)&seed=\(100 + $0)") }
            let targets = try (0..<devices).map { try env.open("mock:dst\($0)?\(options)&seed=\(200 + $0)") }
            for s in sources { _ = s.mock!.mutateState(blocks: 8) }  // a guest has been running
            let path = keep ?? FileManager.default.temporaryDirectory.appendingPathComponent("vfio-demo-\(getpid()).vfiomig").path
            defer { if keep == nil { try? FileManager.default.removeItem(atPath: path) } }
            invocation.say("migrating \(devices) mock device(s) of \(formatBytes(size)) each (STOP_COPY|P2P|PRE_COPY)")

            // Pre-copy while running, target compatibility checked before the sources stop,
            // then every device quiesces P2P before any enters STOP_COPY.
            let result = try Migration.migrate(sources, to: targets, through: path)
            let save = result.save
            for d in save.devices {
                invocation.say("  saved \(d.name): pre-copy \(formatBytes(d.preCopyBytes)), stop-copy \(formatBytes(d.stopCopyBytes)), \(d.chunks) chunks")
            }
            invocation.say("  pre-copy rounds: \(save.rounds.count)\(save.converged == true ? " (converged)" : ""); downtime \(formatDuration(save.timings.downtime))")
            let summary = try Migration.verify(path)
            invocation.say("stream \(path): \(formatBytes(summary.streamLength)), \(summary.recordCount) records, every checksum verified; loaded into the targets")
            let identical = zip(sources, targets).map { $0.mock!.stateDigest == $1.mock!.stateDigest }
            let sourceStates = try sources.map { try $0.currentState() }
            let targetStates = try targets.map { try $0.currentState() }
            for (i, same) in identical.enumerated() {
                invocation.say("  \(targets[i].name): \(same ? "identical state to" : "STATE DIFFERS FROM") \(sources[i].name); source \(sourceStates[i]), target \(targetStates[i])")
            }
            if common.json {
                try JSONOutput.print(Result(
                    stream: path, streamBytes: summary.streamLength, save: save, load: result.load, identical: identical,
                    sourceStates: sourceStates.map(\.description), targetStates: targetStates.map(\.description)))
            }
            guard identical.allSatisfy({ $0 }) else {
                throw CLIFailure(.failed, "migration finished but a target's state differs from its source")
            }
            invocation.say("migration complete")
        }
    }
}
