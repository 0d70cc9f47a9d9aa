// Loopback plumbing for the transport tests: both ends on their own threads, the fixture
// credentials, byte patterns that show where a stream went wrong, and a SIGPIPE counter.
import Foundation
import Synchronization
import Testing
import VFIOBuffers
import VFIOSyscalls

/// Runs `body` on a new thread; `join()` waits and returns or rethrows what it did.
final class Worker<T: Sendable>: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var result: Result<T, any Error>?

    init(_ body: @escaping @Sendable () throws -> T) {
        let thread = Thread { [self] in
            result = Result { try body() }
            done.signal()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }

    func join() -> Result<T, any Error> {
        done.wait()
        return result!
    }
}

enum Fixtures {
    static let tls = Bundle.module.resourceURL!.appendingPathComponent("Fixtures/tls").path
    static func credentials(_ name: String) -> String { "\(tls)/\(name)" }

    static func server(
        allowedClients: [String] = [], handshakeTimeout: Duration = .seconds(10), directory: String = "server",
        suites: [TLSCipherSuite] = [.aes128GCM, .aes256GCM, .chacha20Poly1305]
    ) throws -> TLSContext {
        try TLSContext(TLSConfiguration(
            role: .server, credentialsDirectory: credentials(directory), allowedClients: allowedClients,
            cipherSuites: suites, handshakeTimeout: handshakeTimeout))
    }

    static func client(
        _ directory: String = "client", serverName: String? = "receiver.test", handshakeTimeout: Duration = .seconds(10),
        suites: [TLSCipherSuite] = [.aes128GCM, .aes256GCM, .chacha20Poly1305]
    ) throws -> TLSContext {
        try TLSContext(TLSConfiguration(
            role: .client, credentialsDirectory: credentials(directory), serverName: serverName,
            cipherSuites: suites, handshakeTimeout: handshakeTimeout))
    }
}

let loopback = NetworkAddress(host: "127.0.0.1", port: 0)

/// A listener on loopback, a client connected to it, each end's body on its own thread.
func overLoopback<S: Sendable, C: Sendable>(
    listenerOptions options: TCPOptions = TCPOptions(), clientOptions: TCPOptions = TCPOptions(),
    server: @escaping @Sendable (TCPConnection) throws -> S,
    client: @escaping @Sendable (TCPConnection) throws -> C
) throws -> (server: Result<S, any Error>, client: Result<C, any Error>) {
    let listener = try TCPListener.bind(loopback, options: options)
    let address = NetworkAddress(host: "127.0.0.1", port: listener.port)
    let serverEnd = Worker { try server(try listener.accept(timeout: .seconds(10))) }
    let clientEnd = Worker { try client(try TCPConnection.connect(to: address, timeout: .seconds(5), options: clientOptions)) }
    return (serverEnd.join(), clientEnd.join())
}

/// Both ends as TLS: the server's handshake and the client's run on their threads.
func overTLS<S: Sendable, C: Sendable>(
    server context: TLSContext, client clientContext: TLSContext, idleTimeout: Duration? = nil,
    server: @escaping @Sendable (TLSConnection) throws -> S,
    client: @escaping @Sendable (TLSConnection) throws -> C
) throws -> (server: Result<S, any Error>, client: Result<C, any Error>) {
    let options = TCPOptions(idleTimeout: idleTimeout)
    return try overLoopback(listenerOptions: options, clientOptions: options,
        server: { tcp in try server(try TLSConnection(over: tcp, context: context)) },
        client: { tcp in try client(try TLSConnection(over: tcp, context: clientContext)) })
}

/// The test stream: byte i is table[i % period]. The period is prime, so a lost, doubled or
/// moved block of any power-of-two size shows; the table is doubled so every window of up to
/// one period is contiguous and can be copied or compared at once.
enum Pattern {
    static let period = 65_521
    static let table: [UInt8] = {
        var state: UInt32 = 0x9E37_79B9
        var bytes = [UInt8](repeating: 0, count: 2 * period)
        for i in 0..<period {
            state = state &* 1_664_525 &+ 1_013_904_223
            bytes[i] = UInt8(truncatingIfNeeded: state >> 24)
            bytes[i + period] = bytes[i]
        }
        return bytes
    }()

    /// The `count` stream bytes from `offset` on, in pieces of at most one period.
    static func forEachPiece(from offset: Int, count: Int, _ body: (_ done: Int, _ piece: ArraySlice<UInt8>) -> Bool) {
        var done = 0
        while done < count {
            let start = (offset + done) % period
            let n = min(period, count - done)
            if !body(done, table[start..<start + n]) { return }
            done += n
        }
    }
}

func patternBuffer(count: Int, startingAt offset: Int = 0) -> IOBuffer {
    let buffer = IOBuffer(capacity: count)
    Pattern.forEachPiece(from: offset, count: count) { done, piece in
        buffer.write(piece, at: done)
        return true
    }
    buffer.count = count
    return buffer
}

/// The position (relative to `range`) of the first byte of `buffer[range]` that differs from
/// the stream at `offset`, or nil.
func firstMismatch(_ buffer: IOBuffer, _ range: Range<Int>, streamOffset offset: Int) -> Int? {
    var found: Int?
    Pattern.forEachPiece(from: offset, count: range.count) { done, piece in
        let window = range.lowerBound + done..<range.lowerBound + done + piece.count
        let same = buffer.withUnsafeBytes(in: window) { got in
            piece.withUnsafeBytes { want in memcmp(got.baseAddress!, want.baseAddress!, piece.count) == 0 }
        }
        if same { return true }
        found = done + zip(buffer.bytes(window), piece).prefix { $0 == $1 }.count
        return false
    }
    return found
}

/// Reads up to `total` bytes (to the end of the stream) and returns how many arrived and the
/// stream offset of the first one that is not the pattern, or nil.
func readPattern(_ connection: any ByteStreamConnection, total: Int, chunk: Int = 1 << 20) throws -> (received: Int, firstBad: Int?) {
    let buffer = IOBuffer(capacity: chunk)
    var received = 0
    var firstBad: Int?
    while received < total {
        let n = try connection.read(into: buffer, range: 0..<min(chunk, total - received))
        if n == 0 { break }
        if firstBad == nil, let bad = firstMismatch(buffer, 0..<n, streamOffset: received) { firstBad = received + bad }
        received += n
    }
    return (received, firstBad)
}

/// The half-close exchange, both ends: the client sends `request` bytes and ends its
/// direction; the server reads to that end, answers with `reply` bytes and closes; the
/// client reads the answer. Returns what each end read.
enum HalfClose {
    static func server(_ connection: any ByteStreamConnection, reply: Int) throws -> (received: Int, firstBad: Int?) {
        let read = try readPattern(connection, total: 1 << 30)
        try connection.write(patternBuffer(count: reply), range: 0..<reply)
        try connection.close()
        return read
    }

    static func client(_ connection: any ByteStreamConnection, request: Int) throws -> (received: Int, firstBad: Int?) {
        try connection.write(patternBuffer(count: request), range: 0..<request)
        try connection.shutdownWrite()
        return try readPattern(connection, total: 1 << 30)
    }
}

/// One end waits here (at most 10 s) until the other end has seen what it was waiting for.
final class Gate: Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    func open() { semaphore.signal() }
    func wait() { _ = semaphore.wait(timeout: .now() + 10) }
}

/// The error a Result holds, cast, or nil.
func failure<E: Error, T>(_ result: Result<T, any Error>, as type: E.Type = E.self) -> E? {
    if case .failure(let error) = result { return error as? E }
    return nil
}

// MARK: SIGPIPE

let sigpipeCount = Atomic<Int>(0)

/// Installs, once, a handler that counts SIGPIPE instead of letting it end the process, so
/// a test can show that none was raised (whatever disposition the test runner chose).
let countSIGPIPE: Void = {
    var action = sigaction()
    action.__sigaction_handler.sa_handler = { _ in sigpipeCount.add(1, ordering: .relaxed) }
    sigemptyset(&action.sa_mask)
    sigaction(SIGPIPE, &action, nil)
}()
