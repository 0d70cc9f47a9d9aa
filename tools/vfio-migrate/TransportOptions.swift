// How send and receive reach each other: TLS 1.3 with certificates both ways unless the
// operator said --insecure; plain TCP without it is refused in one line, on both ends.
import ArgumentParser
import Foundation
import VFIOMigration

struct TransportOptions: ParsableArguments {
    @Option(help: "Directory of TLS credentials in QEMU's layout: ca-cert.pem and client-cert.pem/client-key.pem (send) or server-cert.pem/server-key.pem (receive).")
    var tlsDir = "/etc/pki/vfio-migration"
    @Flag(help: "Plain TCP: anyone on the path can read and change the device state. Only on a network you trust.")
    var insecure = false
    @Option(help: "Seconds to connect, negotiate and open the channels.") var handshakeTimeout = 30.0
    @Option(help: "Seconds a data channel may stay silent before the migration fails (a stalled peer).") var idleTimeout = 60.0

    /// The transport's security, or the one-line refusal of plain TCP.
    func security(role: TLSRole, allowedClients: [String] = [], serverName: String? = nil) throws -> TransportSecurity {
        if insecure { return .insecure }
        guard FileManager.default.fileExists(atPath: tlsDir) else {
            throw CLIFailure(
                .usage, "no TLS credentials at \(tlsDir): give --tls-dir DIR, or --insecure for plain TCP (anyone on the path can read and change the device state)")
        }
        do {
            return .tls(try TLSContext(TLSConfiguration(
                role: role, credentialsDirectory: tlsDir, allowedClients: allowedClients, serverName: serverName,
                handshakeTimeout: .milliseconds(Int64(handshakeTimeout * 1000)))))
        } catch {
            throw CLIFailure(.usage, "TLS credentials in \(tlsDir): \(error)")
        }
    }

    func duration(_ seconds: Double, _ name: String) throws -> Duration {
        guard seconds > 0 && seconds.isFinite else { throw CLIFailure(.usage, "--\(name) takes a positive number of seconds") }
        return .milliseconds(Int64(seconds * 1000))
    }
}

func parseAddress(_ text: String, option: String) throws -> NetworkAddress {
    do { return try NetworkAddress(parsing: text) } catch { throw CLIFailure(.usage, "--\(option): \(error)") }
}

/// A connection whose bytes a progress tap sees (data channels; the control connection is not tapped).
final class TappedConnection: ByteStreamConnection, @unchecked Sendable {
    let inner: any ByteStreamConnection
    let tap: StreamTap
    private let lock = NSLock()

    init(_ inner: any ByteStreamConnection, tap: StreamTap) {
        self.inner = inner
        self.tap = tap
    }

    var description: String { inner.description }
    var peerAddress: String { inner.peerAddress }

    func read(into buffer: IOBuffer, range: Range<Int>) throws -> Int {
        let n = try inner.read(into: buffer, range: range)
        lock.withLock { tap.observe(buffer, range.lowerBound..<range.lowerBound + n) }
        return n
    }

    func write(_ buffer: IOBuffer, range: Range<Int>) throws {
        try inner.write(buffer, range: range)
        lock.withLock { tap.observe(buffer, range) }
    }

    func write(gather slices: [BufferSlice]) throws {
        try inner.write(gather: slices)
        lock.withLock { for slice in slices { tap.observe(slice.buffer, slice.range) } }
    }

    func shutdownWrite() throws { try inner.shutdownWrite() }
    func close() throws { try inner.close() }
    func interrupt() { inner.interrupt() }
    func setIdleTimeout(_ timeout: Duration?) throws { try inner.setIdleTimeout(timeout) }
}

/// Taps every data connection a connector opens (the first one is the control connection).
final class TappingConnector: TransferConnecting, @unchecked Sendable {
    let base: any TransferConnecting
    let progress: ProgressReporter
    private let lock = NSLock()
    private var opened = 0

    init(_ base: any TransferConnecting, progress: ProgressReporter) {
        self.base = base
        self.progress = progress
    }

    var description: String { base.description }
    var isAuthenticated: Bool { base.isAuthenticated }

    func connect() throws(VFIOError) -> ConnectionChannel {
        let channel = try base.connect()
        let index = lock.withLock { defer { opened += 1 }; return opened }
        guard index > 0 else { return channel }
        return ConnectionChannel(TappedConnection(channel.connection, tap: StreamTap(progress: progress, channel: "channel \(index - 1)")))
    }
}

/// Taps every accepted connection that carries a stream (a control connection stops the tap at once).
final class TappingAcceptor: TransferAccepting {
    let base: any TransferAccepting
    let progress: ProgressReporter
    private var accepted = 0

    init(_ base: any TransferAccepting, progress: ProgressReporter) {
        self.base = base
        self.progress = progress
    }

    var description: String { base.description }
    var isAuthenticated: Bool { base.isAuthenticated }

    func accept(timeout: Duration) throws(VFIOError) -> ConnectionChannel {
        let channel = try base.accept(timeout: timeout)
        accepted += 1
        // The first connection is the control connection: not a stream, so not a progress row.
        guard accepted > 1 else { return channel }
        return ConnectionChannel(TappedConnection(channel.connection, tap: StreamTap(progress: progress, channel: "channel \(accepted - 2)")))
    }
}
