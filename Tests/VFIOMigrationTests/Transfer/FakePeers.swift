// Peers that follow the protocol only as far as a test needs: a target that negotiates and
// then never reads, a source that negotiates, opens a channel and then writes what the test
// wants (or nothing).
import Foundation
import VFIOMigration

/// Accepts a migration and its data channel, then reads nothing until `stop()`.
final class StalledTarget: @unchecked Sendable {
    let acceptor: TCPAcceptor
    private let release = DispatchSemaphore(value: 0)
    private let done = DispatchSemaphore(value: 0)
    private var held: [ConnectionChannel] = []
    private(set) var nonce: MigrationID?
    var address: NetworkAddress { NetworkAddress(host: "127.0.0.1", port: acceptor.port) }
    /// The connections this fake target holds open (its own sockets of the port).
    var heldConnections: Int { held.count }

    init(descriptor: DeviceDescriptor) throws {
        acceptor = try TCPAcceptor(listeningOn: NetworkAddress(host: "127.0.0.1", port: 0), security: .insecure)
        let thread = Thread { [self] in
            defer { done.signal() }
            do {
                let channel = try acceptor.accept(timeout: .seconds(10))
                held.append(channel)
                let control = try ControlConnection(channel, role: .target)
                guard case .propose(let proposal) = try control.receive(expecting: "proposal", timeout: .seconds(10)) else { return }
                let id = MigrationID.random()
                nonce = id
                try control.send(.accept(StreamHeader(
                    creationTimeNanoseconds: 0, maxPayload: 64 << 20, devices: [descriptor], migrationID: id)))
                for _ in 0..<Int(proposal.channel?.count ?? 1) { held.append(try acceptor.accept(timeout: .seconds(10))) }
            } catch {
                return
            }
            release.wait()
        }
        thread.start()
    }

    func stop() {
        release.signal()
        done.wait()
        for channel in held { channel.close() }
        acceptor.close()
    }
}

/// The source side by hand.
final class FakeSource {
    let control: ControlConnection
    let header: StreamHeader
    let connector: TCPConnector
    private var channels: [ConnectionChannel] = []

    init(to address: NetworkAddress, devices: [DeviceDescriptor], maxPayload: UInt32 = 1 << 20) throws {
        connector = TCPConnector(to: address, security: .insecure)
        let proposal = StreamHeader(creationTimeNanoseconds: 0, maxPayload: maxPayload, devices: devices)
        control = try ControlConnection(try connector.connect(), role: .source)
        try control.send(.propose(proposal))
        guard case .accept(let answer) = try control.receive(expecting: "accept", timeout: .seconds(10)), let nonce = answer.migrationID else {
            throw TestFailure("the target did not accept")
        }
        header = StreamHeader(creationTimeNanoseconds: 0, maxPayload: maxPayload, devices: devices, migrationID: nonce)
    }

    /// A data channel that has sent its stream header.
    @discardableResult
    func openChannel() throws -> ConnectionChannel {
        let channel = try connector.connect()
        channels.append(channel)
        let bytes = try StreamEncoder(header: header).encodeHeader()
        let buffer = IOBuffer(capacity: bytes.count)
        buffer.write(bytes, at: 0)
        try channel.write(buffer, 0..<bytes.count)
        return channel
    }

    func nextMessage() throws -> ControlMessage {
        try control.receive(expecting: "the target's next message", timeout: .seconds(10))
    }

    func close() {
        control.close()
        for channel in channels { channel.close() }
    }
}
