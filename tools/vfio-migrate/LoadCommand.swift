import ArgumentParser
import Foundation
import VFIOMigration

struct LoadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Load a stream file (or standard input) into devices.",
        discussion: """
            Name one target per device of the stream, in stream order (another number is a usage
            error, exit 2). Every target's compatibility is checked before any enters RESUMING
            (exit 3 when one does not fit); a refused or failed load resets the targets.

            Examples:
              vfio-migrate load 0000:5e:00.2 -i vf.vfiomig
              vfio-migrate load 0000:5e:00.2 -i vf.vfiomig --after stop     # the VMM resumes it
              ssh source vfio-migrate save 0000:3b:00.2 -o - | vfio-migrate load 0000:5e:00.2 -i -
            """)

    @Argument(help: "Target devices, in stream order.") var devices: [String]
    @Option(name: [.short, .long], help: "Stream file, or - for standard input.") var input: String
    @Option(help: "State the devices are left in: running or stop.") var after = "running"
    @OptionGroup var environment: EnvironmentOptions
    @OptionGroup var common: CommonOptions

    struct Result: Encodable {
        var stream: String
        var after: String
        var report: LoadReport
    }

    func run() throws {
        try execute(common) { invocation in
            guard let final = MigrationState(name: after), final == .running || final == .stop else {
                throw CLIFailure(.usage, "--after takes running or stop")
            }
            let stream = try CheckedStream.open(input, peek: true)
            try requireTargetCount(devices.count, for: try stream.header(), of: stream.name)
            let env = environment.make()
            let targets = try devices.map { try env.open($0) }
            let progress = invocation.progress("loading")
            let report: LoadReport
            do {
                report = try Migration.load(
                    targets, from: TappedSource(stream, tap: StreamTap(progress: progress, channel: stream.name)),
                    leaving: final == .running ? .running : .stopped).report
            } catch {
                progress.abandon()
                throw error
            }
            progress.finish("loaded \(report.devices.count) device(s): \(formatBytes(report.totalBytes)) in \(formatSeconds(progress.elapsedSeconds)) (\(formatRate(bytes: report.totalBytes, seconds: progress.elapsedSeconds)))")
            if common.json { return try JSONOutput.print(Result(stream: input, after: final.description, report: report)) }
            Console.out(report.devices.map { "\(shown($0.name)): loaded \(formatBytes($0.bytes)) in \($0.chunks) chunks, now \(final)" }.joined(separator: "\n"))
        }
    }
}
