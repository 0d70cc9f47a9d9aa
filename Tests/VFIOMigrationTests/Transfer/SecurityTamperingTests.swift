// An attacker on the path with TLS on: a relay between source and target that passes every
// connection through and changes one byte of the ciphertext of the first data channel. TLS
// must notice (the record's MAC fails), the migration must fail, and both ends roll back
// with nothing of it loaded.
import Foundation
import Testing
import VFIOMigration
import VFIOMockDevices
import VFIOMock

/// Relays TCP connections to `upstream` byte for byte, changing the byte at offset `at` of
/// what connection `flipping` (0: the first accepted, the control connection) sends upstream.
final class TamperingRelay: @unchecked Sendable {
    let listener: TCPAcceptor
    private let lock = NSLock()
    private var open: [any ByteStreamConnection] = []
    private(set) var flipped = false

    init(to upstream: NetworkAddress, flipping: Int, at: Int) throws {
        let listener = try TCPAcceptor(listeningOn: NetworkAddress(host: "127.0.0.1", port: 0), security: .insecure)
        self.listener = listener
        Thread { [self] in
            var index = 0
            while let downstream = try? listener.accept(timeout: .seconds(10)).connection {
                guard let upstream = try? TCPConnector(to: upstream, security: .insecure).connect().connection else { break }
                lock.withLock { open += [downstream, upstream] }
                pump(from: downstream, to: upstream, flipAt: index == flipping ? at : nil)
                pump(from: upstream, to: downstream, flipAt: nil)
                index += 1
            }
        }.start()
    }

    var address: NetworkAddress { NetworkAddress(host: "127.0.0.1", port: listener.port) }

    private func pump(from: any ByteStreamConnection, to: any ByteStreamConnection, flipAt: Int?) {
        Thread { [self] in
            let buffer = IOBuffer(capacity: 64 << 10)
            var passed = 0
            do {
                while true {
                    let count = try from.read(into: buffer, range: 0..<buffer.capacity)
                    guard count > 0 else { break }
                    if let flipAt, (passed..<passed + count).contains(flipAt) {
                        var byte = buffer.bytes((flipAt - passed)..<(flipAt - passed + 1))
                        byte[0] ^= 0x5A
                        buffer.write(byte, at: flipAt - passed)
                        lock.withLock { flipped = true }
                    }
                    try to.write(buffer, range: 0..<count)
                    passed += count
                }
                try? to.shutdownWrite()
            } catch {
                from.interrupt()
                to.interrupt()
            }
        }.start()
    }

    func stop() {
        listener.close()
        for connection in lock.withLock({ open }) { try? connection.close() }
    }
}

@Suite(.serialized) struct SecurityTamperingTests {
    private let env = DeviceEnvironment.withMockDevices()

    @Test func aByteChangedOnTheWireUnderTLSFailsTheMigrationAndBothSidesRollBack() throws {
        let source = try env.open("mock:tamper-s?flags=stop-copy&state=2MiB&seed=3")
        let target = try env.open("mock:tamper-t?flags=stop-copy&state=2MiB")
        let before = target.mock!.stateDigest
        let listening = try MatrixTarget(
            [target], security: .tls(try TLSFixtures.server()), options: ReceiveOptions(handshakeTimeout: .seconds(5), idleTimeout: .seconds(5)))
        let relay = try TamperingRelay(to: listening.address, flipping: 1, at: 256 << 10)
        defer { relay.stop() }
        let connector = TCPConnector(to: relay.address, security: .tls(try TLSFixtures.client()))
        let sent = Result { () throws(VFIOError) in try Migration.send([source], to: connector, options: .test(), save: .test) }
        let received = listening.finish()
        #expect(relay.flipped, "the relay changed a byte of the first data channel")
        guard case .failure(let sourceError) = sent else { Issue.record("a migration with a changed byte committed"); return }
        guard case .failure(let targetError) = received else { Issue.record("the target loaded a changed stream"); return }
        #expect(sourceError.outcomes.map(\.isRunning) == [true], "\(sourceError)")
        #expect(try source.currentState() == .running)
        #expect(targetError.outcomes.map(\.recovery) == [.reset], "\(targetError)")
        #expect(try target.currentState() == .running)
        #expect(target.mock!.stateDigest == before, "nothing of the changed stream stayed in the target")
        // OpenSSL's own reason reaches both sides: the record did not authenticate.
        #expect(targetError.message.contains("bad record mac"), "\(targetError)")
        #expect(sourceError.message.contains("the target failed") && sourceError.message.contains("bad record mac"), "\(sourceError)")
    }
}
