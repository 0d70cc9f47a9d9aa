import ArgumentParser
import Foundation
import VFIOMigration

struct ReceiveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "receive",
        abstract: "Receive one live migration from `vfio-migrate send` into target devices.",
        discussion: """
            Listens, judges the source's proposal against these devices (an incompatible source
            is refused before it stops anything), loads every channel, acknowledges each device's
            initial data as it lands, confirms the load and runs the devices once the source
            committed. A failure before that resets these devices and tells the source, which
            returns its own to RUNNING. Prints "listening on HOST:PORT" to standard error once
            it listens (port 0 picks a free one).

            TLS 1.3 with certificates (--tls-dir) unless --insecure.

            Examples:
              vfio-migrate receive 0000:5e:00.2 --listen 0.0.0.0:4444 --tls-dir /etc/pki/vfio-migration --allow-client source-host
              vfio-migrate receive 0000:5e:00.2 --memory /dev/shm/guest-ram@0x0 --listen 0.0.0.0:4444
              vfio-migrate receive 'mock:b?state=256MiB' --listen 127.0.0.1:4444 --insecure
            """)

    @Argument(help: "Target devices, in the source's stream order.") var devices: [String]
    @Option(help: "Where to listen: HOST:PORT.") var listen: String
    @Option(help: "Allow only clients whose certificate carries this common name or DNS name (NAME or CN=NAME); repeatable. Without it any client the CA signed is allowed.")
    var allowClient: [String] = []
    @Option(help: "State the devices are left in until the tool exits: running, or stop (closing a device returns it to the kernel, which resets it at its next open).") var after = "running"
    @Option(help: "Largest record accepted (the receive buffer per channel, e.g. 16MiB).") var maxPayload = "16MiB"
    @Option(help: "Most data channels accepted.") var maxChannels = 16
    @Option(help: "Seconds to wait for the source's commit after confirming the load.") var commitTimeout = 60.0
    @Option(help: "Seconds a new connection has to complete its TLS handshake and send its proposal; one that has not is dropped and the next is served.")
    var authenticationTimeout = 5.0
    @Option(help: "Seconds to wait for a source to propose (default: until one does; --handshake-timeout starts then).")
    var waitTimeout: Double?
    @OptionGroup var memory: MemoryArguments
    @OptionGroup var transport: TransportOptions
    @OptionGroup var environment: EnvironmentOptions
    @OptionGroup var common: CommonOptions

    struct Result: Encodable {
        var listen: String
        var migrationID: String
        var channels: Int
        var after: String
        var report: LoadReport
        var metrics: ParallelLoadMetrics
        var acknowledgements: [Int]
        var rejectedConnections: [String]
    }

    func run() throws {
        try execute(common) { invocation in
            guard !devices.isEmpty else { throw CLIFailure(.usage, "name at least one device to receive into") }
            guard after == "running" || after == "stop" else { throw CLIFailure(.usage, "--after takes running or stop") }
            let address = try parseAddress(listen, option: "listen")
            let allowed = allowClient.map { $0.hasPrefix("CN=") ? String($0.dropFirst(3)) : $0 }
            let security = try transport.security(role: .server, allowedClients: allowed)
            let env = environment.make()
            let targets = try devices.map { try env.open($0) }
            let guestMemory = try memory.map(writable: true)
            let options = ReceiveOptions(
                maxPayload: try parseSize(maxPayload), maxChannels: maxChannels,
                handshakeTimeout: try transport.duration(transport.handshakeTimeout, "handshake-timeout"),
                idleTimeout: try transport.duration(transport.idleTimeout, "idle-timeout"),
                commitTimeout: try transport.duration(commitTimeout, "commit-timeout"),
                authenticationTimeout: try transport.duration(authenticationTimeout, "authentication-timeout"),
                sourceWait: try waitTimeout.map { .limit(try transport.duration($0, "wait-timeout")) } ?? .indefinitely)
            let acceptor = try TCPAcceptor(listeningOn: address, security: security, authenticationTimeout: options.authenticationTimeout)
            defer { acceptor.close() }
            let bound = address.host.contains(":") ? "[\(address.host)]:\(acceptor.port)" : "\(address.host):\(acceptor.port)"
            Console.err("listening on \(bound)")
            let progress = invocation.progress("receiving")
            let cancellation = MigrationCancellation()
            let interrupt = CancelOnSignal(cancellation)
            defer { interrupt.restore() }

            let result: ReceiveResult
            do throws(VFIOError) {
                result = try Migration.receive(
                    targets, from: TappingAcceptor(acceptor, progress: progress), options: options,
                    leaving: after == "running" ? .running : .stopped, memory: guestMemory, cancellation: cancellation)
            } catch {
                progress.abandon()
                throw error
            }
            let report = result.report
            progress.finish("received \(report.devices.count) device(s): \(formatBytes(report.totalBytes)) in \(formatSeconds(progress.elapsedSeconds)) over \(result.metrics.channels.count) channel(s)")
            if common.json {
                return try JSONOutput.print(Result(
                    listen: bound, migrationID: result.header.migrationID.map { "\($0)" } ?? "", channels: result.metrics.channels.count,
                    after: after == "running" ? "RUNNING" : "STOP", report: report, metrics: result.metrics,
                    acknowledgements: result.acknowledgements, rejectedConnections: result.rejectedConnections))
            }
            var lines: [String] = []
            for d in report.devices { lines.append("\(shown(d.name)): \(formatBytes(d.bytes)) in \(d.chunks) chunks") }
            if let memory = report.memory { lines.append(memory.summaryLine) }
            for c in result.metrics.channels {
                lines.append("channel \(c.channel): \(formatBytes(c.bytes)), waited \(formatDuration(c.waitedForTurn)) for other channels")
            }
            for r in result.rejectedConnections { lines.append("turned away: \(shown(r))") }
            if let note = result.metrics.buffers.note { lines.append("buffers: \(shown(note))") }
            lines.append("validation \(formatDuration(report.timings.validation)), resume \(formatDuration(report.timings.resume)); devices left in \(after == "running" ? "RUNNING" : "STOP")")
            Console.out(lines.joined(separator: "\n"))
        }
    }
}

/// SIGINT and SIGTERM cancel the migration (the sources go back to RUNNING) instead of
/// killing the process with devices half-way; a second signal kills as usual.
final class CancelOnSignal {
    private var sources: [DispatchSourceSignal] = []

    init(_ cancellation: MigrationCancellation) {
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                cancellation.cancel(reason: "interrupted by signal \(number)")
                signal(number, SIG_DFL)
            }
            source.resume()
            sources.append(source)
        }
    }

    func restore() {
        for source in sources { source.cancel() }
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
    }
}
