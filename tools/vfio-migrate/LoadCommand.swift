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
              ssh source vfio-migrate save 0000:3b:00.2 -o - | vfio-migrate load 0000:5e:00.2 -i -
              vfio-migrate load 0000:5e:00.2 --memory /dev/shm/guest-ram@0x0 -i vm.vfiomig

            With --memory the stream's pages are written into the RAM files (each must already
            have its region's size); a stream whose memory regions differ (start, length, page
            size) is refused before any device enters RESUMING and before any page is written.
            """)

    @Argument(help: "Target devices, in stream order.") var devices: [String]
    @Option(name: [.short, .long], help: "Stream file, or - for standard input.") var input: String
    @Option(help: "State the devices are left in: running or stop.") var after = "running"
    @OptionGroup var memory: MemoryArguments
    @Option(help: "Record checksums the stream must have: crc32c, or none (accept a stream without them).") var checksum = "crc32c"
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
            guard checksum == "crc32c" || checksum == "none" else { throw CLIFailure(.usage, "--checksum takes crc32c or none") }
            let limits = StreamLimits(acceptsNoRecordChecksums: checksum == "none")
            let stream = try CheckedStream.open(input, peek: true)
            try requireTargetCount(devices.count, for: try stream.header(limits: limits), of: stream.name)
            let env = environment.make()
            let targets = try devices.map { try env.open($0) }
            let guestMemory = try memory.map(writable: true)
            let progress = invocation.progress("loading")
            let report: LoadReport
            do {
                report = try Migration.load(
                    targets, from: TappedSource(stream, tap: StreamTap(progress: progress, channel: stream.name)),
                    leaving: final == .running ? .running : .stopped, memory: guestMemory,
                    limits: limits).report
            } catch {
                progress.abandon()
                throw error
            }
            progress.finish("loaded \(report.devices.count) device(s): \(formatBytes(report.totalBytes)) in \(formatSeconds(progress.elapsedSeconds)) (\(formatRate(bytes: report.totalBytes, seconds: progress.elapsedSeconds)))")
            if common.json { return try JSONOutput.print(Result(stream: input, after: final.description, report: report)) }
            var lines = report.devices.map { "\(shown($0.name)): loaded \(formatBytes($0.bytes)) in \($0.chunks) chunks, now \(final)" }
            if let memory = report.memory { lines.append(memory.summaryLine) }
            Console.out(lines.joined(separator: "\n"))
        }
    }
}
