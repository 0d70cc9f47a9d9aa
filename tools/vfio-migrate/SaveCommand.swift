import ArgumentParser
import VFIOCore
import VFIOMigration

struct SaveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "save", abstract: "Save devices' migration state into a stream file (or stdout).")

    @Argument(help: "Devices to save, in stream order.") var devices: [String]
    @Option(name: [.short, .long], help: "Stream file, or - for standard output.") var output: String
    @Option(help: "Check these target devices' compatibility before the sources stop.") var target: [String] = []
    @Flag(help: "Skip pre-copy even when the devices support it.") var noPreCopy = false
    @Option(help: "Bytes per chunk (e.g. 1MiB).") var chunkSize = "1MiB"
    @Option(help: "State the devices are left in: running (a capture) or stop (a migration).") var after = "running"
    @OptionGroup var environment: EnvironmentOptions
    @Flag(help: "Print the report as JSON (to stderr when the stream goes to stdout).") var json = false

    func run() throws {
        try reporting {
            guard let final = MigrationState(name: after), final == .running || final == .stop else {
                throw CLIError(message: "--after takes running or stop", code: .usage)
            }
            let env = environment.make()
            let sources = try devices.map { try env.open($0) }
            let targets = try target.isEmpty ? nil : target.map { try env.open($0) }
            let options = SaveOptions(chunkSize: try parseSize(chunkSize), preCopy: !noPreCopy)
            let report = try Migration.save(
                sources, to: output, options: options, leaving: final == .running ? .running : .stopped, checkingTargets: targets).report
            if output == "-" { return }
            if json { return try printJSON(report) }
            for d in report.devices {
                print("\(d.name): \(formatBytes(d.totalBytes)) in \(d.chunks) chunks (pre-copy \(formatBytes(d.preCopyBytes)), stop-copy \(formatBytes(d.stopCopyBytes)))")
            }
            print("pre-copy rounds \(report.rounds.count)\(report.converged == true ? " (converged)" : ""), downtime \(formatDuration(report.timings.downtime))")
            print("wrote \(output); devices left in \(final)")
        }
    }
}
