import ArgumentParser
import Foundation
import VFIOMigration

struct SendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Live-migrate devices to a target that runs `vfio-migrate receive`.",
        discussion: """
            The target's device descriptors come back first: an incompatible target is refused
            before anything runs on this side (exit 3). Pre-copy runs while the devices run,
            until the state converges and the target has acknowledged each device's initial
            data; then every device stops and its stop-copy state goes over --channels
            connections. The sources stay stopped only once the target confirmed the load;
            every failure or cancel (Ctrl-C) before that returns them to RUNNING.

            TLS 1.3 with certificates (--tls-dir) unless --insecure.

            Examples:
              vfio-migrate send 0000:3b:00.2 --to target-host:4444 --tls-dir /etc/pki/vfio-migration
              vfio-migrate send 0000:3b:00.2 0000:3b:00.3 --to 10.0.0.2:4444 --channels 4 --insecure
              vfio-migrate send 0000:3b:00.2 --memory /dev/shm/guest-ram@0x0 --to target-host:4444 --channels 4
              vfio-migrate send 'mock:a?state=256MiB' --to 127.0.0.1:4444 --insecure
            """)

    @Argument(help: "Devices to migrate, in stream order (the target names its own in the same order).") var devices: [String]
    @Option(help: "The target: HOST:PORT.") var to: String
    @Option(help: "Data connections (devices are spread over them; a large device is split).") var channels = 1
    @Option(help: "Record checksums: auto (off under TLS, whose MAC covers every byte), on or off.") var checksum = "auto"
    @Flag(help: "Skip pre-copy even when the devices support it.") var noPreCopy = false
    @Flag(help: "Stop without waiting for the target's switchover acknowledgement.") var noSwitchoverAck = false
    @Option(help: "Bytes per chunk (e.g. 1MiB).") var chunkSize = "1MiB"
    @Option(help: "Pre-copy stops once at most this much is dirty (e.g. 1MiB).") var convergedBelow = "1MiB"
    @Option(help: "Pre-copy rounds at most.") var maxRounds = 16
    @Option(help: "Seconds to wait for the switchover acknowledgement after pre-copy converged.") var switchoverAckTimeout = 120.0
    @Option(help: "Seconds to wait for the target to confirm the load after the last byte.") var loadTimeout = 120.0
    @OptionGroup var memory: MemoryArguments
    @Flag(help: "With --memory and no dirty page tracker, treat every page as dirty at every round instead of refusing.")
    var allPagesDirty = false
    @Flag(help: "Nothing writes the --memory files during the save (a paused guest): pre-copy pages are checksummed where they are instead of being copied first.")
    var guestPaused = false
    @Option(help: "The name the target's certificate must carry (default: the host of --to).") var tlsName: String?
    @OptionGroup var transport: TransportOptions
    @OptionGroup var environment: EnvironmentOptions
    @OptionGroup var common: CommonOptions

    struct Result: Encodable {
        var target: String
        var migrationID: String
        var channels: Int
        var recordChecksums: Bool
        var report: SaveReport
        var confirmation: TargetConfirmation
        var downtime: DowntimeBreakdown
        var switchover: [SwitchoverStatus]
        var pipeline: PipelineMetrics
    }

    func run() throws {
        try execute(common) { invocation in
            guard !devices.isEmpty else { throw CLIFailure(.usage, "name at least one device to send") }
            guard channels >= 1 && channels <= 64 else { throw CLIFailure(.usage, "--channels takes 1 to 64") }
            guard let checksums = RecordChecksums(cli: checksum) else { throw CLIFailure(.usage, "--checksum takes auto, on or off") }
            let address = try parseAddress(to, option: "to")
            let security = try transport.security(role: .client, serverName: tlsName ?? address.host)
            let env = environment.make()
            let sources = try devices.map { try env.open($0) }
            let guestMemory = try memory.map(writable: false)
            if let guestMemory { try memory.mapForDMA(guestMemory, into: sources) }
            let save = SaveOptions(chunkSize: try parseSize(chunkSize), preCopy: !noPreCopy)
            let options = TransferOptions(
                channels: channels, checksums: checksums, switchoverAck: !noSwitchoverAck,
                handshakeTimeout: try transport.duration(transport.handshakeTimeout, "handshake-timeout"),
                idleTimeout: try transport.duration(transport.idleTimeout, "idle-timeout"),
                switchoverAckTimeout: try transport.duration(switchoverAckTimeout, "switchover-ack-timeout"),
                loadTimeout: try transport.duration(loadTimeout, "load-timeout"))
            let policy = PendingBytesPolicy(convergedBelow: UInt64(try parseSize(convergedBelow)), maxRounds: maxRounds)
            let progress = invocation.progress("sending")
            let connector = TappingConnector(TCPConnector(to: address, security: security, options: TCPOptions(idleTimeout: options.idleTimeout), connectTimeout: options.handshakeTimeout), progress: progress)
            let cancellation = MigrationCancellation()
            let interrupt = CancelOnSignal(cancellation)
            defer { interrupt.restore() }
            invocation.logger.info("sending \(sources.count) device(s) to \(address)", metadata: ["channels": "\(channels)", "tls": "\(!transport.insecure)"])

            let result: Migration.SendResult
            do throws(VFIOError) {
                result = try Migration.send(
                    sources, to: connector, options: options, save: save, policy: policy, memory: guestMemory,
                    memoryOptions: Migration.MemoryOptions(allowAllDirty: allPagesDirty, stableDuringPreCopy: guestPaused), cancellation: cancellation)
            } catch {
                progress.abandon()
                throw error.withFailoverHint(for: sources)
            }
            let report = result.report
            progress.finish("sent \(report.devices.count) device(s): \(formatBytes(report.totalBytes)) in \(formatSeconds(progress.elapsedSeconds)) over \(channels) channel(s), downtime \(formatDuration(result.downtime.total))")
            if common.json {
                return try JSONOutput.print(Result(
                    target: "\(address)", migrationID: result.header.migrationID.map { "\($0)" } ?? "", channels: channels,
                    recordChecksums: result.header.hasRecordChecksums, report: report, confirmation: result.confirmation,
                    downtime: result.downtime, switchover: result.switchover, pipeline: result.pipeline))
            }
            var lines: [String] = []
            for d in report.devices {
                lines.append("\(shown(d.name)): \(formatBytes(d.totalBytes)) (pre-copy \(formatBytes(d.preCopyBytes)), stop-copy \(formatBytes(d.stopCopyBytes)))")
            }
            if let memory = report.memory { lines.append(memory.summaryLine) }
            lines.append("pre-copy rounds \(report.rounds.count)\(report.converged == true ? " (converged)" : "")\(report.convergenceReason.map { ": " + shown($0) } ?? "")")
            let d = result.downtime
            lines.append("downtime \(formatDuration(d.total)): stopping \(formatDuration(d.stopping)), final read \(formatDuration(d.finalRead)), transfer and target writes \(formatDuration(d.transferAndWrite)), target validation \(formatDuration(d.targetValidation)), commit and resume \(formatDuration(d.commitAndResume))")
            for c in result.pipeline.channels {
                lines.append("channel \(c.channel): \(formatBytes(c.bytes)), \(formatRate(bytes: c.bytes, seconds: c.elapsed.seconds))")
            }
            if let note = result.pipeline.buffers.note { lines.append("buffers: \(shown(note))") }
            let committed = result.confirmation.committed.map { $0 == .running ? "RUNNING" : "STOP" } ?? "unknown (\(shown(result.confirmation.note ?? "")))"
            lines.append("target \(shown(result.target.host.hostName)) confirmed \(formatBytes(result.confirmation.totalStateBytes)); its devices are \(committed), these are left in STOP")
            Console.out(lines.joined(separator: "\n"))
        }
    }
}

extension RecordChecksums {
    init?(cli text: String) {
        switch text {
        case "auto", "automatic": self = .automatic
        case "on", "crc32c": self = .on
        case "off", "none": self = .off
        default: return nil
        }
    }
}
