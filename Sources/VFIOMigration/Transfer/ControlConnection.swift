// One end of the control connection: its own prefix out, the peer's checked on the first
// read, then whole messages. Turn-taking keeps it thread-confined: at any moment one side
// speaks and the other listens (docs/transfer-protocol.md), so no read and write overlap.
import Synchronization
import VFIOBuffers
import VFIOCore
import VFIOStream

public final class ControlConnection: Sendable {
    private struct Reading {
        var decoder: ControlDecoder
        var peerPrefixRead = false
    }

    public let channel: ConnectionChannel
    public let role: ControlRole
    /// Sends may come from several threads of one side (a target's channel readers send acks).
    private let encoder: Mutex<ControlEncoder>
    /// One reader at a time (turn-taking makes it one thread in practice).
    private let reading: Mutex<Reading>

    /// Sends this side's prefix.
    public init(_ channel: ConnectionChannel, role: ControlRole) throws(VFIOError) {
        self.channel = channel
        self.role = role
        let encoder = ControlEncoder(role: role)
        self.encoder = Mutex(encoder)
        reading = Mutex(Reading(decoder: ControlDecoder(role: role)))
        try write(encoder.encodePrefix())
    }

    public var name: String { channel.name }

    public func send(_ message: ControlMessage) throws(VFIOError) {
        try encoder.withLock { (encoder) throws(VFIOError) in
            let bytes: [UInt8]
            do { bytes = try encoder.encode(message) } catch { throw .invalidUse("control message \(message.type): \(error)") }
            try write(bytes)
        }
    }

    private func write(_ bytes: [UInt8]) throws(VFIOError) {
        let out = IOBuffer(capacity: max(1, bytes.count))
        out.write(bytes, at: 0)
        try channel.write(out, 0..<bytes.count)
    }

    /// The next message; waits at most `timeout` for each piece of it (nil: for ever). The end
    /// of the connection before a whole message is `.ioFailure` naming what was expected.
    public func receive(expecting what: String, timeout: Duration?) throws(VFIOError) -> ControlMessage {
        try channel.setIdleTimeout(timeout)
        return try reading.withLock { (state) throws(VFIOError) -> ControlMessage in
            if !state.peerPrefixRead {
                let prefix = try readExactly(ControlFormat.prefixSize, what)
                do throws(ControlError) { try state.decoder.decodePrefix(prefix) } catch { throw protocolError(error) }
                state.peerPrefixRead = true
            }
            while true {
                let head = try readExactly(ControlFormat.messageHeaderSize, what)
                let header: ControlMessageHeader
                do throws(ControlError) { header = try state.decoder.decodeMessageHeader(head) } catch { throw protocolError(error) }
                let payload = try readExactly(header.payloadLength, what)
                do throws(ControlError) {
                    if let message = try state.decoder.decodeMessage(header, payload: payload) { return message }
                } catch {
                    throw protocolError(error)
                }
            }
        }
    }

    private func readExactly(_ count: Int, _ what: String) throws(VFIOError) -> [UInt8] {
        guard count > 0 else { return [] }
        let into = IOBuffer(capacity: count)
        let got: Int
        do {
            got = try channel.readFully(into: into, 0..<count)
        } catch {
            var failure = error
            if failure.errno == .timedOut { failure.code = .timedOut }
            failure.message = "\(what): \(failure.message)"
            throw failure
        }
        guard got == count else {
            throw VFIOError(.ioFailure, "\(what): the \(role.peer) closed the control connection", device: name)
        }
        return into.bytes(0..<count)
    }

    private func protocolError(_ error: ControlError) -> VFIOError {
        VFIOError(.streamCorrupt, "bad control message from the \(role.peer): \(error)", device: name)
    }

    public func interrupt() { channel.interrupt() }
    public func close() { channel.close() }
}
