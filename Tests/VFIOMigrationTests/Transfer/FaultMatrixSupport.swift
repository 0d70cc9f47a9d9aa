// The faults the fault matrix injects where the emulator cannot: on the path (a data channel
// whose writes fail with an errno, a byte changed in flight, reads that return a few bytes,
// the control connection lost around the commit, data channels with other credentials), on
// a file sink (the disk fills after N bytes: the kernel's own ENOSPC from /dev/full), and a
// storm of signals at the migration's own threads (EINTR in every blocking call they make).
import Foundation
import Glibc
import Testing
import VFIOMigration
import VFIOMockDevices

/// A connection that passes everything to `inner` but lets a test act on writes and reads.
class PassThroughConnection: ByteStreamConnection, @unchecked Sendable {
    let inner: any ByteStreamConnection
    init(_ inner: any ByteStreamConnection) { self.inner = inner }
    var description: String { inner.description }
    var peerAddress: String { inner.peerAddress }
    func read(into buffer: IOBuffer, range: Range<Int>) throws -> Int { try inner.read(into: buffer, range: range) }
    func write(_ buffer: IOBuffer, range: Range<Int>) throws { try inner.write(buffer, range: range) }
    func write(gather slices: [BufferSlice]) throws { for slice in slices { try write(slice.buffer, range: slice.range) } }
    func shutdownWrite() throws { try inner.shutdownWrite() }
    func close() throws { try inner.close() }
    func interrupt() { inner.interrupt() }
    func setIdleTimeout(_ timeout: Duration?) throws { try inner.setIdleTimeout(timeout) }
}

/// Writes fail with `errno` once `after` bytes went out (the link or the NIC failed).
final class FailingWrites: PassThroughConnection, @unchecked Sendable {
    let after: Int
    let errno: ErrorNumber
    private var sent = 0
    init(_ inner: any ByteStreamConnection, after: Int, errno: ErrorNumber) {
        self.after = after
        self.errno = errno
        super.init(inner)
    }
    override func write(_ buffer: IOBuffer, range: Range<Int>) throws {
        let allowed = max(0, min(range.count, after - sent))
        if allowed > 0 { try inner.write(buffer, range: range.lowerBound..<range.lowerBound + allowed) }
        sent += allowed
        if allowed < range.count {
            inner.interrupt()
            throw VFIOError(.ioFailure, "send failed after \(after) bytes (test)", errno: errno)
        }
    }
}

/// Changes the byte at stream offset `at` as it goes by (an attacker or a broken middlebox).
final class FlippingWrites: PassThroughConnection, @unchecked Sendable {
    let at: Int
    private var sent = 0
    init(_ inner: any ByteStreamConnection, at: Int) {
        self.at = at
        super.init(inner)
    }
    override func write(_ buffer: IOBuffer, range: Range<Int>) throws {
        if range.contains(at - sent + range.lowerBound) {
            var bytes = buffer.bytes(range)
            bytes[at - sent] ^= 0x5A
            try inner.write(IOBuffer(holding: bytes), range: 0..<bytes.count)
        } else {
            try inner.write(buffer, range: range)
        }
        sent += range.count
    }
}

/// Reads return at most `most` bytes each.
final class ShortReads: PassThroughConnection, @unchecked Sendable {
    let most: Int
    init(_ inner: any ByteStreamConnection, most: Int) {
        self.most = most
        super.init(inner)
    }
    override func read(into buffer: IOBuffer, range: Range<Int>) throws -> Int {
        try inner.read(into: buffer, range: range.lowerBound..<min(range.upperBound, range.lowerBound + most))
    }
}

/// The source's control connection, lost around the commit: `before` drops it in place of
/// sending the commit (the peer never sees it), `after` once the commit went out.
final class LosingTheCommit: PassThroughConnection, @unchecked Sendable {
    enum When { case before, after }
    let when: When
    init(_ inner: any ByteStreamConnection, when: When) {
        self.when = when
        super.init(inner)
    }
    override func write(_ buffer: IOBuffer, range: Range<Int>) throws {
        let bytes = buffer.bytes(range)
        // A commit message is a bare 16-byte header of type 7.
        guard bytes.count == 16, bytes[0] == 7, bytes[1] == 0 else { return try inner.write(buffer, range: range) }
        if when == .after { try inner.write(buffer, range: range) }
        inner.interrupt()
        if when == .before { throw VFIOError(.ioFailure, "the control connection was lost (test)", errno: .connectionReset) }
    }
}

/// The source's control connection, lost as soon as its data channels have all ended.
final class LosingControlAfterData: @unchecked Sendable {
    private let lock = NSLock()
    private var control: (any ByteStreamConnection)?
    private var open = 0
    func controlOpened(_ connection: any ByteStreamConnection) { lock.withLock { control = connection } }
    func dataOpened() { lock.withLock { open += 1 } }
    func dataEnded() {
        let last = lock.withLock { () -> (any ByteStreamConnection)? in
            open -= 1
            return open == 0 ? control : nil
        }
        last?.interrupt()
    }
}

final class EndNotifying: PassThroughConnection, @unchecked Sendable {
    let tracker: LosingControlAfterData
    init(_ inner: any ByteStreamConnection, tracker: LosingControlAfterData) {
        self.tracker = tracker
        super.init(inner)
        tracker.dataOpened()
    }
    override func shutdownWrite() throws {
        try inner.shutdownWrite()
        tracker.dataEnded()
    }
}

/// A connector that wraps the control connection (index 0) and the data channels as told.
struct WrappingConnector: TransferConnecting {
    let base: TCPConnector
    var data: TCPConnector?
    var control: (@Sendable (any ByteStreamConnection) -> any ByteStreamConnection)?
    var channel: (@Sendable (any ByteStreamConnection) -> any ByteStreamConnection)?
    let opened = Counter()
    var description: String { "wrapped \(base.description)" }
    var isAuthenticated: Bool { base.isAuthenticated }

    func connect() throws(VFIOError) -> ConnectionChannel {
        let first = opened.next() == 0
        let connection = try (first ? base : (data ?? base)).connect()
        guard let wrap = first ? control : channel else { return connection }
        return ConnectionChannel(wrap(connection.connection))
    }
}

/// An acceptor whose connections read at most a few bytes at a time.
final class ShortReadingAcceptor: TransferAccepting {
    let base: TCPAcceptor
    let most: Int
    init(_ base: TCPAcceptor, most: Int) {
        self.base = base
        self.most = most
    }
    var description: String { base.description }
    var isAuthenticated: Bool { base.isAuthenticated }
    func accept(timeout: Duration) throws(VFIOError) -> ConnectionChannel {
        ConnectionChannel(ShortReads(try base.accept(timeout: timeout).connection, most: most))
    }
}

/// A sink whose disk fills: the first `room` bytes are taken (/dev/null), every later write
/// gets the kernel's ENOSPC (/dev/full).
final class FillingSink: ByteSink {
    let room: Int
    private let roomy: FileChannel
    private let full: FileChannel
    private var taken = 0
    init(room: Int) throws(VFIOError) {
        self.room = room
        roomy = try FileChannel.creating("/dev/null")
        full = try FileChannel.creating("/dev/full")
    }
    var name: String { "file on a disk with \(room) bytes free" }
    func write(_ buffer: IOBuffer, _ range: Range<Int>) throws(VFIOError) {
        let fits = max(0, min(range.count, room - taken))
        if fits > 0 { try roomy.write(buffer, range.lowerBound..<range.lowerBound + fits) }
        taken += fits
        if fits < range.count { try full.write(buffer, range.lowerBound + fits..<range.upperBound) }
    }
}

/// Runs a receiver over any acceptor on its own thread.
struct MatrixTarget {
    let listener: TCPAcceptor
    let session: ReceiveSession
    let run: Background<ReceiveResult>
    var address: NetworkAddress { NetworkAddress(host: "127.0.0.1", port: listener.port) }

    init(_ targets: [VFIODevice], security: TransportSecurity = .insecure, options: ReceiveOptions,
         wrap: (TCPAcceptor) -> any TransferAccepting = { $0 }) throws {
        let listener = try TCPAcceptor(listeningOn: NetworkAddress(host: "127.0.0.1", port: 0), security: security)
        self.listener = listener
        let session = ReceiveSession(devices: targets, acceptor: wrap(listener), options: options)
        self.session = session
        run = Background { () throws(VFIOError) in try session.run(leaving: .running) }
    }

    func finish() -> Result<ReceiveResult, VFIOError> {
        let result = run.join()
        listener.close()
        return result
    }
}

// MARK: signals

/// Handler runs, counted (a C handler cannot capture).
nonisolated(unsafe) private var signalsTaken = 0

/// Sends SIGUSR1 (installed without SA_RESTART, so a blocking call it lands in returns
/// EINTR) over and over to every thread whose name ends with a migration's tag, until stopped.
final class SignalStorm: @unchecked Sendable {
    private typealias TGKill = @convention(c) (pid_t, pid_t, Int32) -> Int32
    private let lock = NSLock()
    private var stopping = false
    private(set) var sent = 0
    private let done = DispatchSemaphore(value: 0)

    init(tag: @escaping @Sendable () -> String?) {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in signalsTaken += 1 }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        sigaction(SIGUSR1, &action, nil)
        // tgkill is not in the Swift overlay of glibc; it is in glibc itself.
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "tgkill") else { preconditionFailure("glibc has no tgkill") }
        let tgkill = unsafeBitCast(symbol, to: TGKill.self)
        let thread = Thread { [self] in
            defer { done.signal() }
            while !lock.withLock({ stopping }) {
                if let tag = tag() {
                    for task in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? [] {
                        let name = (try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8)) ?? ""
                        guard name.trimmingCharacters(in: .whitespacesAndNewlines).hasSuffix(tag), let tid = pid_t(task) else { continue }
                        if tgkill(getpid(), tid, SIGUSR1) == 0 { lock.withLock { sent += 1 } }
                    }
                }
                usleep(300)
            }
        }
        thread.start()
    }

    /// Test threads run with signals blocked (their pool does that), and threads inherit the
    /// mask of the thread that made them: unblock SIGUSR1 here before the migration makes its
    /// threads. Returns the mask to restore.
    static func unblockOnThisThread() -> sigset_t {
        var set = sigset_t()
        var old = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGUSR1)
        pthread_sigmask(SIG_UNBLOCK, &set, &old)
        return old
    }

    static func restore(_ mask: sigset_t) {
        var mask = mask
        pthread_sigmask(SIG_SETMASK, &mask, nil)
    }

    /// Stops; returns how many signals were sent and how many handler runs there were.
    func stop() -> (sent: Int, taken: Int) {
        lock.withLock { stopping = true }
        done.wait()
        return (lock.withLock { sent }, signalsTaken)
    }
}
