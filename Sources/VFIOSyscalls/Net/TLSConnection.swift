// TLS 1.3 over a TCPConnection it takes over. The socket is non-blocking underneath and every
// wait is a poll with a deadline (the handshake's) or the idle timeout, so a silent or slow
// peer cannot hold the handshake open by trickling bytes, and a read never blocks once it
// holds data. Reads fill as much of the range as decrypted records allow; writes go out as
// full 16 KiB records where the bytes allow (a gather write coalesces small slices).
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import COpenSSL
import SystemPackage
import VFIOBuffers

/// A TLS connection. Thread-confined (see `ByteStreamConnection`). `close()` sends
/// close_notify; dropping it without close() does not, so the peer sees a truncated stream.
public final class TLSConnection: ByteStreamConnection, @unchecked Sendable {
    /// OpenSSL's receive buffer: with read-ahead, one recv takes up to this many bytes of records.
    static let readBufferSize = 128 * 1024
    /// The largest TLS record payload; gather writes coalesce into records of this size.
    static let recordSize = 16 * 1024

    public let context: TLSContext
    /// Whom the peer's certificate names (verified against ca-cert.pem during the handshake).
    public let peerIdentity: TLSPeerIdentity
    /// The negotiated suite, e.g. "TLS_AES_128_GCM_SHA256".
    public let cipherSuite: String
    /// Whether kernel TLS offload engaged, and if not, why.
    public let kernelTLS: KernelTLSStatus
    /// "TLS connection from 10.0.0.1:50312 (CN=sender-a)".
    public let description: String
    public var peerAddress: String { tcp.peerAddress }
    public var idleTimeout: Duration? { tcp.idleTimeout }

    private let tcp: TCPConnection
    private let ssl: OpaquePointer
    private let notes: HandshakeNotes
    private var closed = false
    /// No close_notify after a fatal error or after one was already sent.
    private var mayShutdown = true
    private lazy var staging = IOBuffer(capacity: Self.recordSize)

    /// Runs the handshake over `tcp`, which this connection takes over (plain I/O on it then
    /// throws). A peer that has not completed it within `handshakeTimeout` (default: the
    /// context's) is dropped. On failure the TCP connection is closed.
    public init(over tcp: TCPConnection, context: TLSContext, handshakeTimeout: Duration? = nil) throws {
        let role = context.configuration.role
        let object = "TLS connection \(role == .server ? "from" : "to") \(tcp.peerAddress)"
        guard tcp.socket.isOpen, !tcp.handedOver else {
            throw SyscallError(operation: "TLS handshake", object: "\(tcp.description) (closed or already handed over)", errno: .badFileDescriptor)
        }
        tcp.handedOver = true
        ERR_clear_error()
        guard let ssl = SSL_new(context.context) else {
            try? tcp.close()
            throw TLSError(step: .configure, object: object, reason: OpenSSLErrorQueue.drain().text(or: "SSL_new failed"))
        }
        let notes = HandshakeNotes(allowedClients: role == .server ? context.configuration.allowedClients : [])
        var established = false
        defer {
            if !established {
                SSL_free(ssl)
                try? tcp.close()
            }
        }
        SSL_set_ex_data(ssl, 0, Unmanaged.passUnretained(notes).toOpaque())
        guard SSL_set_fd(ssl, tcp.socket.rawValue) == 1 else {
            throw TLSError(step: .configure, object: object, reason: OpenSSLErrorQueue.drain().text(or: "SSL_set_fd failed"))
        }
        if role == .client, let name = context.configuration.serverName {
            try Self.expect(serverName: name, ssl: ssl, object: object)
        }
        try retryingInterrupts("fcntl(O_NONBLOCK)", on: object) { () throws(Errno) in try tcp.socket.setNonBlocking(true) }

        let timeout = handshakeTimeout ?? context.configuration.handshakeTimeout
        let deadline = ContinuousClock.now + timeout
        do {
            try SIGPIPEBlock.around { () throws in
                try Self.handshake(ssl: ssl, socket: tcp.socket, role: role, notes: notes, deadline: deadline, timeout: timeout, object: object)
            }
        } catch let error as TLSError where error.step == .handshake {
            // A peer that does not speak TLS, or ran out the deadline, gets a reset: its next
            // call fails with ECONNRESET at once instead of reading a clean end of stream.
            // (Refusals keep the orderly close, so the peer reads our alert first.)
            tcp.socket.resetOnClose()
            throw error
        }

        guard let certificate = SSL_get1_peer_certificate(ssl) else {
            throw TLSError(step: .verifyPeer, object: object, reason: "the peer presented no certificate")
        }
        let identity = TLSPeerIdentity(certificate: certificate)
        X509_free(certificate)
        // The verify callback already decided both; a second look costs nothing.
        let verifyResult = SSL_get_verify_result(ssl)
        guard verifyResult == X509_V_OK else {
            throw TLSError(step: .verifyPeer, object: object, reason: String(cString: X509_verify_cert_error_string(verifyResult)))
        }
        if !notes.allowedClients.isEmpty && !identity.matches(anyOf: notes.allowedClients) {
            throw TLSError(step: .peerNotAllowed, object: object, reason: Self.notAllowed(identity, notes.allowedClients))
        }

        self.tcp = tcp
        self.ssl = ssl
        self.notes = notes
        self.context = context
        peerIdentity = identity
        cipherSuite = SSL_get_current_cipher(ssl).map { String(cString: SSL_CIPHER_get_name($0)) } ?? "(unknown)"
        kernelTLS = KernelTLSStatus.observed(
            send: vfio_tls_ktls_send(ssl) == 1, receive: vfio_tls_ktls_receive(ssl) == 1,
            requested: context.configuration.kernelTLS, cipherSuite: cipherSuite)
        description = "\(object) (\(identity))"
        established = true
    }

    deinit {
        if !closed { SSL_free(ssl) }
    }

    // MARK: Handshake

    private static func expect(serverName name: String, ssl: OpaquePointer, object: String) throws(TLSError) {
        ERR_clear_error()
        let parameters = SSL_get0_param(ssl)
        // An address literal is checked against the certificate's IP names, anything else as a DNS name (and sent as SNI).
        if X509_VERIFY_PARAM_set1_ip_asc(parameters, name) != 1 {
            ERR_clear_error()
            guard SSL_set1_host(ssl, name) == 1, vfio_tls_set_server_name(ssl, name) == 1 else {
                throw TLSError(step: .configure, object: object, reason: OpenSSLErrorQueue.drain().text(or: "server name '\(name)' rejected"))
            }
        }
    }

    private static func handshake(
        ssl: OpaquePointer, socket: Socket, role: TLSRole, notes: HandshakeNotes,
        deadline: ContinuousClock.Instant, timeout: Duration, object: String
    ) throws {
        while true {
            let outcome = OpenSSLOutcome.of(ssl) { role == .server ? SSL_accept(ssl) : SSL_connect(ssl) }
            if outcome.succeeded { break }
            guard outcome.mustWait else { throw failure(.handshake, outcome, notes: notes, object: object) }
            try wait(socket, outcome.code, until: deadline, object: object,
                     reason: "the peer did not complete the handshake within \(describe(timeout))")
        }
        guard role == .client else { return }
        // The server's verdict on our certificate: its session ticket, or an alert.
        while !notes.serverAccepted {
            var byte: UInt8 = 0
            var count = 0
            let outcome = OpenSSLOutcome.of(ssl) { SSL_peek_ex(ssl, &byte, 1, &count) }
            if outcome.succeeded { break }
            if outcome.mustWait {
                if notes.serverAccepted { break }
            } else if notes.serverAccepted {
                // The same call read past the ticket into the end of the connection.
                let end = outcome.code == SSL_ERROR_ZERO_RETURN ? "ended the session (close_notify)" : "closed the connection"
                ERR_clear_error()
                throw TLSError(step: .handshake, object: object, reason: "the server accepted our certificate, then \(end)")
            } else if outcome.code == SSL_ERROR_ZERO_RETURN {
                throw TLSError(step: .refusedByPeer, object: object, reason: "the server ended the session right after the handshake")
            } else {
                throw failure(.refusedByPeer, outcome, notes: notes, object: object)
            }
            try wait(socket, outcome.code, until: deadline, object: object,
                     reason: "the server did not confirm our certificate within \(describe(timeout)) of the handshake's start")
        }
    }

    private static func wait(_ socket: Socket, _ code: CInt, until deadline: ContinuousClock.Instant, object: String, reason: String) throws {
        let left = deadline - ContinuousClock.now
        guard left > .zero else { throw TLSError(step: .handshake, object: object, reason: reason) }
        let events = Int16(code == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN)
        let seen = try retryingInterrupts("poll (TLS handshake)", on: object) { () throws(Errno) in try socket.wait(for: events, timeout: left) }
        if seen == 0 { throw TLSError(step: .handshake, object: object, reason: reason) }
    }

    static func notAllowed(_ identity: TLSPeerIdentity, _ allowed: [String]) -> String {
        let names = identity.dnsNames.isEmpty ? "" : " (DNS names \(identity.dnsNames.joined(separator: ", ")))"
        return "client \(identity.subject)\(names) is not in the allow-list [\(allowed.joined(separator: ", "))]"
    }

    /// What a failed OpenSSL call means, most specific first: our own verdicts from the
    /// callbacks, an alert the peer sent, a socket errno, then OpenSSL's reasons.
    static func failure(_ step: TLSError.Step, _ outcome: OpenSSLOutcome, notes: HandshakeNotes?, object: String) -> any Error {
        let queue = OpenSSLErrorQueue.drain()
        let code = outcome.code, savedErrno = outcome.errno
        if let rejected = notes?.rejectedIdentity {
            return TLSError(step: .peerNotAllowed, object: object, reason: notAllowed(rejected, notes?.allowedClients ?? []))
        }
        if let failure = notes?.verificationFailure {
            return TLSError(step: .verifyPeer, object: object, reason: failure)
        }
        if queue.contains(reason: SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
            return TLSError(step: .verifyPeer, object: object, reason: "the client presented no certificate (\(queue.text(or: "?")))")
        }
        if let alert = queue.receivedAlert {
            return TLSError(step: .refusedByPeer, object: object, reason: "the peer sent the alert '\(alert)'\(alertHint(queue))")
        }
        switch code {
        case SSL_ERROR_SYSCALL where savedErrno != 0:
            return SyscallError(operation: "\(step)", object: object, errno: Errno(rawValue: savedErrno))
        case SSL_ERROR_SYSCALL:
            return TLSError(step: step, object: object, reason: queue.text(or: "the peer closed the connection"))
        case SSL_ERROR_ZERO_RETURN:
            return TLSError(step: step, object: object, reason: "the peer ended the TLS session (close_notify)")
        default:
            if queue.contains(reason: SSL_R_UNEXPECTED_EOF_WHILE_READING) {
                let what = step == .handshake || step == .refusedByPeer
                    ? "the peer closed the connection during the handshake"
                    : "the peer closed the connection without close_notify: the stream may be truncated"
                return TLSError(step: step, object: object, reason: what)
            }
            let notTLS = [SSL_R_WRONG_VERSION_NUMBER, SSL_R_HTTP_REQUEST, SSL_R_PACKET_LENGTH_TOO_LONG, SSL_R_RECORD_LENGTH_MISMATCH]
            if step == .handshake, notTLS.contains(where: { queue.contains(reason: $0) }) {
                return TLSError(step: .handshake, object: object,
                                reason: "the peer does not speak TLS (\(queue.text(or: "?"))); is it sending plain TCP?")
            }
            return TLSError(step: step, object: object, reason: queue.text(or: "OpenSSL error \(code)"))
        }
    }

    private static func alertHint(_ queue: OpenSSLErrorQueue) -> String {
        if queue.contains(reason: SSL_R_TLSV1_ALERT_UNKNOWN_CA) { return ": it does not trust the CA that issued our certificate" }
        if queue.contains(reason: SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED) { return ": it requires a client certificate" }
        if queue.contains(reason: SSL_R_SSLV3_ALERT_BAD_CERTIFICATE) || queue.contains(reason: SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN) {
            return ": it rejected our certificate (wrong name, or an identity its allow-list does not admit)"
        }
        if queue.contains(reason: SSL_R_TLSV1_ALERT_PROTOCOL_VERSION) { return ": it does not speak TLS 1.3" }
        return ""
    }

    // MARK: Reading and writing

    private func usable(_ step: TLSError.Step) throws -> Socket {
        guard !closed, tcp.socket.isOpen else {
            throw SyscallError(operation: "\(step)", object: "\(description) (closed)", errno: .badFileDescriptor)
        }
        return tcp.socket
    }

    /// Waits for the socket within the idle timeout; ETIMEDOUT when it passes.
    private func waitIdle(_ socket: Socket, _ code: CInt, _ step: TLSError.Step) throws {
        let events = Int16(code == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN)
        let seen = try retryingInterrupts("poll (\(step))", on: description) { () throws(Errno) in
            try socket.wait(for: events, timeout: tcp.idleTimeout)
        }
        if seen == 0 {
            mayShutdown = false
            let idle = tcp.idleTimeout.map { " (no progress for \(describe($0)))" } ?? ""
            throw SyscallError(operation: "\(step)\(idle)", object: description, errno: .timedOut)
        }
    }

    private func fail(_ step: TLSError.Step, _ outcome: OpenSSLOutcome) -> any Error {
        mayShutdown = false
        return Self.failure(step, outcome, notes: nil, object: description)
    }

    public func read(into buffer: IOBuffer, range: Range<Int>) throws -> Int {
        let socket = try usable(.read)
        guard !range.isEmpty else { return 0 }
        return try SIGPIPEBlock.around { () throws -> Int in
            try buffer.withUnsafeMutableBytes(in: range) { (raw) throws -> Int in
                // SAFETY: `raw` is the caller's buffer range, alive for this call.
                guard let base = raw.baseAddress else { return 0 }
                var total = 0
                while total < raw.count {
                    var count = 0
                    let outcome = OpenSSLOutcome.of(ssl) { SSL_read_ex(ssl, base + total, raw.count - total, &count) }
                    if outcome.succeeded {
                        total += count
                        continue
                    }
                    if outcome.code == SSL_ERROR_ZERO_RETURN { return total }
                    guard outcome.mustWait else { throw fail(.read, outcome) }
                    // Hand back what we have rather than wait with it.
                    if total > 0 { return total }
                    try waitIdle(socket, outcome.code, .read)
                }
                return total
            }
        }
    }

    public func write(_ buffer: IOBuffer, range: Range<Int>) throws {
        let socket = try usable(.write)
        guard !range.isEmpty else { return }
        try SIGPIPEBlock.around { () throws in try writeAll(buffer, range, socket) }
    }

    private func writeAll(_ buffer: IOBuffer, _ range: Range<Int>, _ socket: Socket) throws {
        try buffer.withUnsafeBytes(in: range) { (raw) throws in
            // SAFETY: `raw` is the caller's buffer range, alive for this call.
            guard let base = raw.baseAddress else { return }
            var done = 0
            while done < raw.count {
                var count = 0
                let outcome = OpenSSLOutcome.of(ssl) { SSL_write_ex(ssl, base + done, raw.count - done, &count) }
                if outcome.succeeded {
                    done += count
                    continue
                }
                guard outcome.mustWait else { throw fail(.write, outcome) }
                try waitIdle(socket, outcome.code, .write)
            }
        }
    }

    /// Slices of a record or more go out directly, cut at a record boundary; smaller pieces
    /// and the tails are copied together into full records first.
    public func write(gather slices: [BufferSlice]) throws {
        let socket = try usable(.write)
        let record = Self.recordSize
        try SIGPIPEBlock.around { () throws in
            var staged = 0
            for slice in slices {
                var rest = slice.range
                if staged > 0 {
                    let take = min(record - staged, rest.count)
                    copy(slice.buffer, rest.prefix(take), to: staged)
                    staged += take
                    rest = rest.dropFirst(take)
                    if staged == record {
                        try writeAll(staging, 0..<record, socket)
                        staged = 0
                    }
                }
                let direct = rest.count - rest.count % record
                if direct > 0 {
                    try writeAll(slice.buffer, rest.prefix(direct), socket)
                    rest = rest.dropFirst(direct)
                }
                if !rest.isEmpty {
                    copy(slice.buffer, rest, to: staged)
                    staged += rest.count
                }
            }
            if staged > 0 { try writeAll(staging, 0..<staged, socket) }
        }
    }

    private func copy(_ source: IOBuffer, _ range: Range<Int>, to offset: Int) {
        guard !range.isEmpty else { return }
        staging.withUnsafeMutableBytes(in: offset..<offset + range.count) { destination in
            source.withUnsafeBytes(in: range) { bytes in
                // SAFETY: both ranges were bounds-checked by IOBuffer and have the same length.
                destination.copyMemory(from: bytes)
            }
        }
    }

    /// Sends close_notify and ends the TCP sending direction; reading goes on (TLS 1.3 allows it).
    public func shutdownWrite() throws {
        let socket = try usable(.shutdown)
        try sendCloseNotify(socket)
        try retryingInterrupts("shutdown(SHUT_WR)", on: description) { () throws(Errno) in try socket.shutdown(CInt(SHUT_WR)) }
    }

    private func sendCloseNotify(_ socket: Socket) throws {
        guard mayShutdown else { return }
        mayShutdown = false
        try SIGPIPEBlock.around { () throws in
            while true {
                // 0: ours sent, the peer's not yet read; that is all we wait for.
                let outcome = OpenSSLOutcome.of(ssl, succeeded: { $0 >= 0 }) { SSL_shutdown(ssl) }
                if outcome.succeeded { return }
                guard outcome.mustWait else { throw Self.failure(.shutdown, outcome, notes: nil, object: description) }
                try waitIdle(socket, outcome.code, .shutdown)
            }
        }
    }

    /// Shuts the TCP socket down underneath the session; the blocked OpenSSL call fails with
    /// the socket's error, and no close_notify is sent afterwards (the stream was cut).
    public func interrupt() {
        tcp.interrupt()
    }

    /// Sends close_notify (unless the connection failed or already sent it) and closes.
    public func close() throws {
        guard !closed else { return }
        defer {
            closed = true
            SSL_free(ssl)
            try? tcp.close()
        }
        if tcp.socket.isOpen { try sendCloseNotify(tcp.socket) }
        try tcp.close()
    }

    /// Changes the idle timeout of reads and writes.
    public func setIdleTimeout(_ timeout: Duration?) throws {
        try tcp.setIdleTimeout(timeout)
    }
}
