// Every way a handshake must fail, and what each end is told: a CA neither trusts, the
// allow-list, no certificate, the wrong name, a peer that is not TLS, a peer that stalls.
import Foundation
import SystemPackage
import Testing
import VFIOBuffers
import VFIOSyscalls

@Suite(.serialized) struct TLSRefusalTests {
    /// Both ends' outcomes of a handshake; the server holds the connection until the client closes it.
    func handshake(server: TLSContext, client: TLSContext) throws -> (server: Result<TLSPeerIdentity, any Error>, client: Result<TLSPeerIdentity, any Error>) {
        try overTLS(
            server: server, client: client,
            server: { connection in
                _ = try readPattern(connection, total: 1)
                return connection.peerIdentity
            },
            client: { connection in
                try connection.close()
                return connection.peerIdentity
            })
    }

    @Test func aClientCertificateFromAnotherCAIsRefused() throws {
        let result = try handshake(server: try Fixtures.server(), client: try Fixtures.client("rogue-client"))
        let server = try #require(failure(result.server, as: TLSError.self))
        #expect(server.step == .verifyPeer)
        #expect(server.reason.contains("unable to get local issuer certificate"))
        #expect(server.reason.contains("O=somebody else"))
        #expect(server.object.hasPrefix("TLS connection from 127.0.0.1:"))
        let client = try #require(failure(result.client, as: TLSError.self))
        #expect(client.step == .refusedByPeer)
        #expect(client.reason.contains("unknown ca"))
        #expect(client.reason.contains("does not trust the CA that issued our certificate"))
    }

    @Test func aServerCertificateFromAnotherCAIsRefusedByTheClient() throws {
        let result = try handshake(server: try Fixtures.server(directory: "rogue-server"), client: try Fixtures.client())
        let client = try #require(failure(result.client, as: TLSError.self))
        #expect(client.step == .verifyPeer)
        #expect(client.reason.contains("unable to get local issuer certificate"))
        #expect(client.object.hasPrefix("TLS connection to 127.0.0.1:"))
        let server = try #require(failure(result.server, as: TLSError.self))
        #expect(server.step == .refusedByPeer)
        #expect(server.reason.contains("unknown ca"))
    }

    @Test func aClientWhoseNameIsNotAllowedIsRefused() throws {
        let result = try handshake(server: try Fixtures.server(allowedClients: ["sender-a", "sender-c.example"]), client: try Fixtures.client("client-other"))
        let server = try #require(failure(result.server, as: TLSError.self))
        #expect(server.step == .peerNotAllowed)
        #expect(server.reason == "client CN=sender-b,O=vfio-migration tests (DNS names sender-b.example) is not in the allow-list [sender-a, sender-c.example]")
        let client = try #require(failure(result.client, as: TLSError.self))
        #expect(client.step == .refusedByPeer)
        #expect(client.reason.contains("rejected our certificate"))
    }

    @Test(arguments: [["sender-a"], ["SENDER-A.example"], ["nobody", "sender-a.example"]])
    func theAllowListMatchesTheCommonNameOrADNSName(allowed: [String]) throws {
        let result = try handshake(server: try Fixtures.server(allowedClients: allowed), client: try Fixtures.client())
        #expect(try result.server.get().commonName == "sender-a")
        #expect(try result.client.get().commonName == "receiver.test")
    }

    @Test func theCommonNameMatchIsExact() throws {
        let result = try handshake(server: try Fixtures.server(allowedClients: ["Sender-A", "sender"]), client: try Fixtures.client())
        #expect(failure(result.server, as: TLSError.self)?.step == .peerNotAllowed)
    }

    @Test func aClientWithoutACertificateIsRefused() throws {
        let anonymous = try TLSContext.clientWithoutCertificate(
            trusting: Fixtures.credentials("client") + "/ca-cert.pem", handshakeTimeout: .seconds(10))
        let result = try handshake(server: try Fixtures.server(), client: anonymous)
        let server = try #require(failure(result.server, as: TLSError.self))
        #expect(server.step == .verifyPeer)
        #expect(server.reason.contains("the client presented no certificate"))
        let client = try #require(failure(result.client, as: TLSError.self))
        #expect(client.step == .refusedByPeer)
        #expect(client.reason.contains("requires a client certificate"))
    }

    @Test func aServerWithAnotherNameIsRefusedByTheClient() throws {
        let result = try handshake(server: try Fixtures.server(), client: try Fixtures.client(serverName: "other.test"))
        let client = try #require(failure(result.client, as: TLSError.self))
        #expect(client.step == .verifyPeer)
        #expect(client.reason.contains("hostname mismatch"))
        #expect(failure(result.server, as: TLSError.self)?.step == .refusedByPeer)
    }

    @Test func aPlainTCPClientAgainstATLSListenerFailsFastOnBothEnds() throws {
        let start = ContinuousClock.now
        let result = try overLoopback(
            server: { tcp in try TLSConnection(over: tcp, context: try Fixtures.server(handshakeTimeout: .seconds(10))) },
            client: { tcp in
                // What a sender without TLS does first: write its stream header, then go on.
                try tcp.write(patternBuffer(count: 4096), range: 0..<4096)
                let buffer = IOBuffer(capacity: 4096)
                var answer: [UInt8] = []
                while true {
                    let n = try tcp.read(into: buffer, range: 0..<4096)
                    if n == 0 { break }
                    answer += buffer.bytes(0..<n)
                }
                return answer
            })
        #expect(ContinuousClock.now - start < .seconds(3))
        let server = try #require(failure(result.server, as: TLSError.self))
        #expect(server.step == .handshake)
        #expect(server.reason.contains("does not speak TLS"))
        // The plain end is reset at once: it never waits for the deadline, and never reads a clean end.
        let client = try #require(failure(result.client, as: SyscallError.self))
        #expect(client.errno == .connectionReset)
        #expect(client.operation == "read")
    }

    @Test func aPeerThatSendsNothingIsDroppedAtTheHandshakeDeadline() throws {
        let start = ContinuousClock.now
        let done = Gate()
        let result = try overLoopback(
            server: { tcp in
                defer { done.open() }
                return try TLSConnection(over: tcp, context: try Fixtures.server(handshakeTimeout: .milliseconds(400)))
            },
            client: { tcp in
                done.wait()
                // The server has given up: what does a silent peer see now?
                _ = try tcp.read(into: IOBuffer(capacity: 16), range: 0..<16)
            })
        let server = try #require(failure(result.server, as: TLSError.self))
        #expect(server.step == .handshake)
        #expect(server.reason == "the peer did not complete the handshake within 400 ms")
        let client = try #require(failure(result.client, as: SyscallError.self))
        #expect(client.errno == .connectionReset)
        #expect(ContinuousClock.now - start < .seconds(2.5))
    }

    @Test func aPeerTricklingBytesIsStillDroppedAtTheDeadline() throws {
        let result = try overLoopback(
            server: { tcp in
                let start = ContinuousClock.now
                do {
                    _ = try TLSConnection(over: tcp, context: try Fixtures.server(handshakeTimeout: .milliseconds(500)))
                    return (nil as TLSError?, Duration.zero)
                } catch let error as TLSError {
                    return (error, ContinuousClock.now - start)
                }
            },
            client: { tcp in
                // A TLS record header promising a long ClientHello, then one byte every 100 ms.
                let header = IOBuffer(capacity: 5)
                header.write([0x16, 0x03, 0x01, 0x10, 0x00], at: 0)
                try tcp.write(header, range: 0..<5)
                let byte = IOBuffer(capacity: 1)
                for _ in 0..<20 {
                    Thread.sleep(forTimeInterval: 0.1)
                    do { try tcp.write(byte, range: 0..<1) } catch { break }
                }
            })
        let (error, waited) = try result.server.get()
        #expect(error?.step == .handshake)
        #expect(waited >= .milliseconds(480) && waited < .milliseconds(1500))
    }
}
