import ArgumentParser
import VFIOCore
import VFIOMigration

struct LoadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load", abstract: "Load a stream file (or stdin) into devices.")

    @Argument(help: "Target devices, in stream order.") var devices: [String]
    @Option(name: [.short, .long], help: "Stream file, or - for standard input.") var input: String
    @Option(help: "State the devices are left in: running or stop.") var after = "running"
    @OptionGroup var environment: EnvironmentOptions
    @Flag(help: "Print the report as JSON.") var json = false

    func run() throws {
        try reporting {
            guard let final = MigrationState(name: after), final == .running || final == .stop else {
                throw CLIError(message: "--after takes running or stop", code: .usage)
            }
            let env = environment.make()
            let targets = try devices.map { try env.open($0) }
            let report = try Migration.load(targets, from: input, leaving: final == .running ? .running : .stopped).report
            if json { return try printJSON(report) }
            for d in report.devices {
                print("\(d.name): loaded \(formatBytes(d.bytes)) in \(d.chunks) chunks, now \(final)")
            }
        }
    }
}
