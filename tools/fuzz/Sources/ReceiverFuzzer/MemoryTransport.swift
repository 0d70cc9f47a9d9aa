// Connections and a listener in memory: a connection reads the bytes the fuzzer gave it (a
// few at a time when the input says so) and keeps what the receiver wrote; the listener hands
// out the control connection first, then one data connection per input segment, each given
// the migration id the receiver assigned (as a replaying or well-informed attacker would).
import Foundation
import FuzzSupport
import VFIOMigration

final class MemoryConnection: ByteStreamConnection, @unchecked Sendable {
    private let lock = NSLock()
    private let incoming: [UInt8]
    private var position = 0
    /// Most bytes one read returns (0: as many as asked).
    private let most: Int
    private var outgoing: [UInt8] = []
    private var interrupted = false
    let description: String

    init(_ incoming: [UInt8], most: Int, name: String) {
        self.incoming = incoming
        self.most = most
        description = name
    }

    var peerAddress: String { "memory" }
    var written: [UInt8] { lock.withLock { outgoing } }

    func read(into buffer: IOBuffer, range: Range<Int>) throws -> Int {
        try lock.withLock {
            guard !interrupted else { throw VFIOError(.ioFailure, "\(description) was interrupted", errno: .connectionReset) }
            let left = incoming.count - position
            let count = min(range.count, left, most > 0 ? most : Int.max)
            buffer.write(incoming[position..<(position + count)], at: range.lowerBound)
            position += count
            return count
        }
    }

    func write(_ buffer: IOBuffer, range: Range<Int>) throws {
        try lock.withLock {
            guard !interrupted else { throw VFIOError(.ioFailure, "\(description) was interrupted", errno: .brokenPipe) }
            outgoing += buffer.bytes(range)
        }
    }

    func write(gather slices: [BufferSlice]) throws { for slice in slices { try write(slice.buffer, range: slice.range) } }
    func shutdownWrite() throws {}
    func close() throws { lock.withLock { interrupted = true } }
    func interrupt() { lock.withLock { interrupted = true } }
    func setIdleTimeout(_ timeout: Duration?) throws {}
}

final class MemoryAcceptor: TransferAccepting, @unchecked Sendable {
    let control: MemoryConnection
    private let segments: [[UInt8]]
    private let most: Int
    private let reseal: Bool
    private let lock = NSLock()
    private var served = 0
    /// The data connections' bytes as handed to the receiver (id set, resealed), made at the
    /// first data connection, once the receiver assigned its id.
    private var prepared: [[UInt8]]?
    private var channels: [[UInt8]] = []

    init(control: [UInt8], channels: [[UInt8]], most: Int, reseal: Bool) {
        self.control = MemoryConnection(reseal ? resealedControl(control) : control, most: most, name: "memory control connection")
        segments = channels
        self.most = most
        self.reseal = reseal
    }

    var description: String { "memory listener" }
    let isAuthenticated = false

    func accept(timeout: Duration) throws(VFIOError) -> ConnectionChannel {
        let next = lock.withLock { () -> Int in
            defer { served += 1 }
            return served
        }
        if next == 0 { return ConnectionChannel(control) }
        guard next - 1 < segments.count else {
            // Not a timeout: the receiver gives up at once instead of waiting out its deadline.
            throw VFIOError(.invalidUse, "the fuzz input has no more connections")
        }
        let bytes = lock.withLock { () -> [UInt8] in
            let all = prepared ?? prepare()
            prepared = all
            channels.append(all[next - 1])
            return all[next - 1]
        }
        return ConnectionChannel(MemoryConnection(bytes, most: most, name: "memory data connection \(next - 1)"))
    }

    var handedOut: [[UInt8]] { lock.withLock { channels } }

    /// Every segment with the assigned migration id; resealed, each digest over the device's
    /// data on all channels (a single stream's over its own).
    private func prepare() -> [[UInt8]] {
        var all = segments
        if let id = assignedMigrationID(in: control.written) { all = all.map { settingMigrationID($0, to: id) } }
        guard reseal else { return all }
        let digests = all.count > 1 ? reassembledDigests(all) : nil
        return all.map { resealed($0, digests: digests) }
    }
}
