import ArgumentParser
import Foundation
import VFIOMigration

struct SaveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "save",
        abstract: "Save devices' migration state into a stream file (or standard output).",
        discussion: """
            Pre-copy while the devices run (when all of them offer PRE_COPY), then every device
            quiesces (P2P) before any enters STOP_COPY. With --target, the targets'
            compatibility is checked before the sources stop; a mismatch returns the sources to
            RUNNING and exits 3. The file appears only once the save completed: a failed save
            removes what it wrote and says so. Progress goes to standard error (live on a
            terminal, one summary line otherwise, none with --quiet).

            Examples:
              vfio-migrate save 0000:3b:00.2 -o vf.vfiomig
              vfio-migrate save 0000:3b:00.2 0000:3b:00.3 -o pair.vfiomig --after stop
              vfio-migrate save 0000:3b:00.2 -o - | ssh target vfio-migrate load 0000:5e:00.2 -i -
              vfio-migrate save 'mock:a?state=64MiB' -o a.vfiomig --target 'mock:b?state=64MiB'
              vfio-migrate save 0000:3b:00.2 --memory /dev/shm/guest-ram@0x0 -o vm.vfiomig

            With --memory, guest RAM files travel with the devices: every page while the guest
            runs, the pages the devices dirtied again round by round (DMA logging when every
            device offers it, else the container's tracking; with neither the save is refused
            unless --all-pages-dirty), the rest after the devices stopped.
            """)

    @Argument(help: "Devices to save, in stream order.") var devices: [String]
    @Option(name: [.short, .long], help: "Stream file, or - for standard output.") var output: String
    @Option(help: "Check these target devices' compatibility before the sources stop.") var target: [String] = []
    @Flag(help: "Skip pre-copy even when the devices support it.") var noPreCopy = false
    @Option(help: "Bytes per chunk (e.g. 1MiB).") var chunkSize = "1MiB"
    @Option(help: "State the devices are left in: running (a capture) or stop (a migration).") var after = "running"
    @OptionGroup var memory: MemoryArguments
    @Flag(help: "With --memory and no dirty page tracker, treat every page as dirty at every round instead of refusing.")
    var allPagesDirty = false
    @Flag(help: "Nothing writes the --memory files during the save (a paused guest): pre-copy pages are checksummed where they are instead of being copied first.")
    var guestPaused = false
    @Option(help: "Pre-copy ends once what is left, over the bandwidth a round measured, fits this many milliseconds of downtime (default with --memory: 300; without, pre-copy ends when at most 1 MiB is left).")
    var downtimeLimit: Double?
    @Option(help: "Record checksums: crc32c, or none (NO_RECORD_CHECKSUMS: only over a transport that authenticates every byte).")
    var checksum = "crc32c"
    @OptionGroup var environment: EnvironmentOptions
    @OptionGroup var common: CommonOptions

    struct Result: Encodable {
        var stream: String
        var streamBytes: UInt64
        var after: String
        var report: SaveReport
    }

    func run() throws {
        try execute(common, standardOutputCarriesStream: output == "-") { invocation in
            guard !devices.isEmpty else { throw CLIFailure(.usage, "name at least one device to save") }
            guard let final = MigrationState(name: after), final == .running || final == .stop else {
                throw CLIFailure(.usage, "--after takes running or stop")
            }
            let env = environment.make()
            let sources = try devices.map { try env.open($0) }
            let targets = try target.isEmpty ? nil : target.map { try env.open($0) }
            let chunk = try parseSize(chunkSize)
            // Larger records would be refused by every reader's default limit.
            guard chunk >= 4096 && chunk <= StreamLimits.default.maxPayload else {
                throw CLIFailure(.usage, "--chunk-size takes 4KiB to \(formatBytes(StreamLimits.default.maxPayload)) (readers refuse larger records by default)")
            }
            let options = SaveOptions(chunkSize: chunk, preCopy: !noPreCopy)
            guard checksum == "crc32c" || checksum == "none" else { throw CLIFailure(.usage, "--checksum takes crc32c or none") }
            let policy = try convergencePolicy(downtimeLimit, withMemory: !memory.isEmpty)
            let guestMemory = try memory.map(writable: false)
            if let guestMemory { try memory.mapForDMA(guestMemory, into: sources) }
            invocation.logger.info("saving \(sources.count) device(s) to \(output)", metadata: ["chunk": "\(options.chunkSize)"])

            let progress = invocation.progress("saving")
            let file = try FileChannel.creating(output)
            let sink = TappedSink(file, tap: StreamTap(progress: progress, channel: file.name))
            let report: SaveReport
            do throws(VFIOError) {
                report = try Migration.save(
                    sources, to: sink, options: options, policy: policy, leaving: final == .running ? .running : .stopped,
                    checkingTargets: targets, memory: guestMemory,
                    memoryOptions: Migration.MemoryOptions(allowAllDirty: allPagesDirty, stableDuringPreCopy: guestPaused), recordChecksums: checksum == "crc32c" ? .on : .off).report
            } catch {
                progress.abandon()
                var failure = error.withFailoverHint(for: sources)
                if let note = file.discard() { failure.message += " (\(note))" }
                throw failure
            }
            do throws(VFIOError) {
                try file.commit()
            } catch {
                // Saved but not in place: stopped sources go back to RUNNING.
                progress.abandon()
                var failure = error
                if let note = file.discard() { failure.message += " (\(note))" }
                if final == .stop { failure.outcomes += Migration.returnToRunning(sources) }
                throw failure
            }
            progress.finish("saved \(report.devices.count) device(s): \(formatBytes(report.totalBytes)) in \(formatSeconds(progress.elapsedSeconds)) (\(formatRate(bytes: report.totalBytes, seconds: progress.elapsedSeconds))), downtime \(formatDuration(report.timings.downtime))")

            // The stream may own standard output; the report then goes to standard error.
            let toStandardError = output == "-"
            if common.json {
                let data = try JSONOutput.encode(Result(stream: output, streamBytes: file.bytesWritten, after: final.description, report: report))
                return Console.raw(data + Data("\n".utf8), toStandardError: toStandardError)
            }
            var lines: [String] = []
            for d in report.devices {
                lines.append("\(shown(d.name)): \(formatBytes(d.totalBytes)) in \(d.chunks) chunks (pre-copy \(formatBytes(d.preCopyBytes)), stop-copy \(formatBytes(d.stopCopyBytes)))")
            }
            if let memory = report.memory { lines.append(memory.summaryLine) }
            lines.append("pre-copy rounds \(report.rounds.count)\(report.converged == true ? " (converged)" : ""), downtime \(formatDuration(report.timings.downtime))")
            lines.append("wrote \(shown(output)) (\(formatBytes(file.bytesWritten))); devices left in \(final)")
            if toStandardError { Console.err(lines.joined(separator: "\n")) } else { Console.out(lines.joined(separator: "\n")) }
        }
    }
}
