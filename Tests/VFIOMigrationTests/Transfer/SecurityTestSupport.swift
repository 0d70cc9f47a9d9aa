// Hostile peers and eavesdroppers for the security tests: a connector that records every byte
// a source sends (for replays), one that injects a stray connection before the source's own
// data channels, one that rewrites the migration id in a data channel's header as it goes out,
// a connection that never authenticates, and a receiver on a listener the test configures.
import Foundation
import Testing
import VFIOMigration
import VFIOMockDevices

/// What one connection carried from the source, in order.
final class Recording: @unchecked Sendable {
    private let lock = NSLock()
    private var bytes: [UInt8] = []
    func append(_ more: [UInt8]) { lock.withLock { bytes += more } }
    var data: [UInt8] { lock.withLock { bytes } }
}

/// A connection that copies everything written on it into a recording.
final class RecordingConnection: PassThroughConnection, @unchecked Sendable {
    let recording: Recording
    init(_ inner: any ByteStreamConnection, into recording: Recording) {
        self.recording = recording
        super.init(inner)
    }
    override func write(_ buffer: IOBuffer, range: Range<Int>) throws {
        try inner.write(buffer, range: range)
        recording.append(buffer.bytes(range))
    }
}

/// Records every connection a source opens: the first is the control connection, the others
/// its data channels.
final class RecordingConnector: TransferConnecting, @unchecked Sendable {
    let base: any TransferConnecting
    private let lock = NSLock()
    private var made: [Recording] = []
    init(_ base: any TransferConnecting) { self.base = base }
    var description: String { "recording \(base.description)" }
    var isAuthenticated: Bool { base.isAuthenticated }
    var recordings: [[UInt8]] { lock.withLock { made.map(\.data) } }

    func connect() throws(VFIOError) -> ConnectionChannel {
        let channel = try base.connect()
        let recording = Recording()
        lock.withLock { made.append(recording) }
        return ConnectionChannel(RecordingConnection(channel.connection, into: recording))
    }
}

/// Before the source's first data channel, opens one more connection to the target and sends
/// `stray` on it: a recorded channel of another migration, or a forged one.
final class InjectingConnector: TransferConnecting, @unchecked Sendable {
    let base: TCPConnector
    let stray: [UInt8]
    private let lock = NSLock()
    private var opened = 0
    private(set) var injected: ConnectionChannel?
    init(_ base: TCPConnector, stray: [UInt8]) {
        self.base = base
        self.stray = stray
    }
    var description: String { "injecting \(base.description)" }
    var isAuthenticated: Bool { base.isAuthenticated }

    func connect() throws(VFIOError) -> ConnectionChannel {
        let index = lock.withLock { defer { opened += 1 }; return opened }
        if index == 1 {
            let channel = try base.connect()
            // The target may turn it away (and reset it) before it was all sent.
            try? channel.write(IOBuffer(holding: stray), 0..<stray.count)
            try? channel.finishSending()
            lock.withLock { injected = channel }
        }
        return try base.connect()
    }

    func close() { lock.withLock { injected }?.close() }
}

/// A path that swaps the migration id in the header of data channel `channel` for `foreign`
/// (and reseals the header) as the source sends it: a channel from another session.
final class ForeignIDConnector: TransferConnecting, @unchecked Sendable {
    let base: TCPConnector
    let channel: Int
    let foreign: MigrationID
    private let lock = NSLock()
    private var opened = 0
    init(_ base: TCPConnector, channel: Int, foreign: MigrationID) {
        self.base = base
        self.channel = channel
        self.foreign = foreign
    }
    var description: String { "rewriting \(base.description)" }
    var isAuthenticated: Bool { base.isAuthenticated }

    func connect() throws(VFIOError) -> ConnectionChannel {
        let connection = try base.connect()
        let index = lock.withLock { defer { opened += 1 }; return opened }
        guard index == channel + 1 else { return connection }
        return ConnectionChannel(HeaderRewritingConnection(connection.connection, migrationID: foreign))
    }
}

/// Holds back the stream header until it is whole, then sends it with another migration id.
final class HeaderRewritingConnection: PassThroughConnection, @unchecked Sendable {
    let migrationID: MigrationID
    private var pending: [UInt8] = []
    private var passed = false
    init(_ inner: any ByteStreamConnection, migrationID: MigrationID) {
        self.migrationID = migrationID
        super.init(inner)
    }

    override func write(_ buffer: IOBuffer, range: Range<Int>) throws {
        guard !passed else { return try inner.write(buffer, range: range) }
        pending += buffer.bytes(range)
        guard pending.count >= StreamFormat.headerPrefixSize else { return }
        let length = Int(pending[12]) | Int(pending[13]) << 8 | Int(pending[14]) << 16 | Int(pending[15]) << 24
        guard pending.count >= length else { return }
        var decoder = StreamDecoder(limits: StreamLimits(maxPayload: StreamFormat.hardMaxPayload, acceptsNoRecordChecksums: true))
        var header = try decoder.decodeHeader(Array(pending[0..<length]))
        header.migrationID = migrationID
        let rewritten = try StreamEncoder(header: header).encodeHeader() + pending[length...]
        passed = true
        try inner.write(IOBuffer(holding: rewritten), range: 0..<rewritten.count)
    }
}

extension IOBuffer {
    /// A buffer holding exactly `bytes`.
    convenience init(holding bytes: [UInt8]) {
        self.init(capacity: max(1, bytes.count))
        write(bytes, at: 0)
    }
}

/// Plays recorded connections back at a target, byte for byte: the control connection's
/// recording first, then each data channel's, as a replaying attacker on the path would.
func replay(_ recordings: [[UInt8]], to address: NetworkAddress) throws -> [ConnectionChannel] {
    let connector = TCPConnector(to: address, security: .insecure)
    var opened: [ConnectionChannel] = []
    for bytes in recordings {
        let channel = try connector.connect()
        opened.append(channel)
        try channel.write(IOBuffer(holding: bytes), 0..<bytes.count)
    }
    return opened
}

/// A receiver on a listener the test made (its security and authentication deadline).
struct ListeningTarget {
    let acceptor: TCPAcceptor
    let run: Background<ReceiveResult>
    var address: NetworkAddress { NetworkAddress(host: "127.0.0.1", port: acceptor.port) }

    init(
        _ targets: [VFIODevice], security: TransportSecurity, authenticationTimeout: Duration = .seconds(5),
        options: ReceiveOptions = ReceiveOptions(handshakeTimeout: .seconds(10), idleTimeout: .seconds(10))
    ) throws {
        let acceptor = try TCPAcceptor(
            listeningOn: NetworkAddress(host: "127.0.0.1", port: 0), security: security, authenticationTimeout: authenticationTimeout)
        self.acceptor = acceptor
        let devices = targets
        run = Background { () throws(VFIOError) in try Migration.receive(devices, from: acceptor, options: options) }
    }

    func finish() -> Result<ReceiveResult, VFIOError> {
        let result = run.join()
        acceptor.close()
        return result
    }
}

/// Iterates pre-copy until `release()` (the source keeps running meanwhile), then stops;
/// `entered` is signalled at the first round, once the migration is well under way.
final class HeldPolicy: ConvergencePolicy, @unchecked Sendable {
    let entered = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var released = false
    private var signalled = false
    func release() { lock.withLock { released = true } }
    func decide(after snapshot: RoundSnapshot) -> ConvergenceDecision {
        let (go, first) = lock.withLock { () -> (Bool, Bool) in
            defer { signalled = true }
            return (released, !signalled)
        }
        if first { entered.signal() }
        if go { return .giveUp(reason: "released by the test") }
        Thread.sleep(forTimeInterval: 0.01)
        return .iterate
    }
}

/// Where a device is and what happened to it, for the checks that nothing ran on a refusal.
extension VFIODevice {
    var untouched: Bool { mock!.arcHistory.isEmpty }
}
