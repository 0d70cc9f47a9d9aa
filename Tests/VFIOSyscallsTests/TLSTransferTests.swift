// Mutual TLS over loopback: bytes intact, identities, the negotiated suite, kernel TLS
// status, close_notify against truncation, half close (and the same over plain TCP),
// timeouts, a gone peer.
import Foundation
import SystemPackage
import Testing
import VFIOBuffers
import VFIOSyscalls

@Suite(.serialized) struct TLSTransferTests {
    @Test func mutualTLSCarriesSeveralMiBIntactThroughWritesAndGatherWrites() throws {
        let total = 8 << 20
        let result = try overTLS(
            server: try Fixtures.server(allowedClients: ["sender-a"]), client: try Fixtures.client(),
            server: { connection in
                let read = try readPattern(connection, total: total + 1)
                return (read.received, read.firstBad, connection.peerIdentity, connection.cipherSuite, connection.kernelTLS)
            },
            client: { connection in
                // A record-header-sized piece, then payloads of awkward sizes, as the stream writer gathers them.
                var offset = 0
                while offset < total {
                    let header = patternBuffer(count: 32, startingAt: offset)
                    let size = min(total - offset - 32, (1 << 20) + 4093)
                    let payload = patternBuffer(count: size, startingAt: offset + 32)
                    try connection.write(gather: [BufferSlice(header, 0..<32), BufferSlice(payload, 0..<size)])
                    offset += 32 + size
                }
                try connection.close()
                return connection.peerIdentity
            })
        let (received, firstBad, clientIdentity, suite, kernelTLS) = try result.server.get()
        let serverIdentity = try result.client.get()
        #expect(received == total)
        #expect(firstBad == nil)
        #expect(clientIdentity.commonName == "sender-a")
        #expect(clientIdentity.dnsNames == ["sender-a.example"])
        #expect(clientIdentity.subject == "CN=sender-a,O=vfio-migration tests")
        #expect(clientIdentity.issuer == "CN=Test CA,O=vfio-migration tests")
        #expect(serverIdentity.commonName == "receiver.test")
        #expect(suite == "TLS_AES_128_GCM_SHA256")
        if !KernelTLSStatus.availableULPs.contains("tls") {
            #expect(kernelTLS.send == false && kernelTLS.receive == false)
            #expect(kernelTLS.note.contains("the kernel lists no tls ULP"))
        }
    }

    @Test func smallGatherSlicesAreCoalescedAndArriveIntact() throws {
        let total = 200_000
        let result = try overTLS(
            server: try Fixtures.server(), client: try Fixtures.client(),
            server: { connection in try readPattern(connection, total: total + 1, chunk: 7000) },
            client: { connection in
                let source = patternBuffer(count: total)
                var slices: [BufferSlice] = []
                var offset = 0
                var size = 1
                while offset < total {
                    let end = min(total, offset + size)
                    slices.append(BufferSlice(source, offset..<end))
                    offset = end
                    size = size * 3 % 40_000 + 1
                }
                try connection.write(gather: slices)
                try connection.close()
            })
        let (received, firstBad) = try result.server.get()
        try result.client.get()
        #expect(received == total && firstBad == nil)
    }

    @Test(arguments: [TLSCipherSuite.aes256GCM, .chacha20Poly1305])
    func theConfiguredSuiteIsNegotiated(suite: TLSCipherSuite) throws {
        let result = try overTLS(
            server: try Fixtures.server(suites: [suite]), client: try Fixtures.client(suites: [suite, .aes128GCM]),
            server: { connection in
                let read = try readPattern(connection, total: 1 << 20)
                return (read.received, read.firstBad, connection.cipherSuite)
            },
            client: { connection in
                try connection.write(patternBuffer(count: 1 << 20), range: 0..<(1 << 20))
                try connection.close()
            })
        let (received, firstBad, negotiated) = try result.server.get()
        try result.client.get()
        #expect(received == 1 << 20 && firstBad == nil)
        #expect(negotiated == suite.rawValue)
    }

    @Test func theServerNameCanBeAnAddressTheCertificateCarries() throws {
        let result = try overTLS(
            server: try Fixtures.server(), client: try Fixtures.client(serverName: "127.0.0.1"),
            server: { connection in
                _ = try readPattern(connection, total: 1)
                return connection.peerIdentity.commonName
            },
            client: { connection in
                try connection.close()
                return connection.peerIdentity.commonName
            })
        #expect(try result.server.get() == "sender-a")
        #expect(try result.client.get() == "receiver.test")
    }

    @Test func closeSendsCloseNotifyAndADroppedConnectionReadsAsTruncated() throws {
        let clean = try overTLS(
            server: try Fixtures.server(), client: try Fixtures.client(),
            server: { connection in try readPattern(connection, total: 1 << 30) },
            client: { connection in
                try connection.write(patternBuffer(count: 300_000), range: 0..<300_000)
                try connection.close()
            })
        let read = try clean.server.get()
        #expect(read.received == 300_000 && read.firstBad == nil)

        let dropped = try overTLS(
            server: try Fixtures.server(), client: try Fixtures.client(),
            server: { connection in try readPattern(connection, total: 1 << 30) },
            client: { connection in
                try connection.write(patternBuffer(count: 300_000), range: 0..<300_000)
                // Released without close(): no close_notify.
            })
        try dropped.client.get()
        let error = try #require(failure(dropped.server, as: TLSError.self))
        #expect(error.step == .read)
        #expect(error.reason.contains("without close_notify"))
    }

    /// The same exchange over plain TCP and over TLS (close_notify, then reading goes on).
    @Test(arguments: [false, true])
    func halfCloseEndsOneDirectionOnly(tls: Bool) throws {
        let server: @Sendable (any ByteStreamConnection) throws -> (received: Int, firstBad: Int?) = { try HalfClose.server($0, reply: 5000) }
        let client: @Sendable (any ByteStreamConnection) throws -> (received: Int, firstBad: Int?) = { try HalfClose.client($0, request: 70_000) }
        let result = tls
            ? try overTLS(server: try Fixtures.server(), client: try Fixtures.client(), server: server, client: client)
            : try overLoopback(server: server, client: client)
        let served = try result.server.get()
        let answered = try result.client.get()
        #expect(served.received == 70_000 && served.firstBad == nil)
        #expect(answered.received == 5000 && answered.firstBad == nil)
    }

    @Test func aStalledPeerHitsTheIdleTimeout() throws {
        let done = Gate()
        let result = try overTLS(
            server: try Fixtures.server(), client: try Fixtures.client(), idleTimeout: .milliseconds(300),
            server: { connection in
                defer { done.open() }
                let start = ContinuousClock.now
                do {
                    _ = try connection.read(into: IOBuffer(capacity: 4096), range: 0..<4096)
                    return (nil as SyscallError?, Duration.zero)
                } catch let error as SyscallError {
                    return (error, ContinuousClock.now - start)
                }
            },
            client: { connection in
                done.wait()
                try connection.close()
            })
        let (error, waited) = try result.server.get()
        #expect(error?.errno == .timedOut)
        #expect(error?.operation == "TLS read (no progress for 300 ms)")
        #expect(waited >= .milliseconds(280) && waited < .seconds(3))
    }

    /// A peer that vanishes (a crash: no close_notify) or closes cleanly once we are connected.
    @Test(arguments: [false, true])
    func writingToAClosedPeerIsAnErrorAndRaisesNoSIGPIPE(peerSendsCloseNotify: Bool) throws {
        _ = countSIGPIPE
        let before = sigpipeCount.load(ordering: .relaxed)
        let connected = Gate()
        let result = try overTLS(
            server: try Fixtures.server(), client: try Fixtures.client(),
            server: { connection in
                connected.wait()
                if peerSendsCloseNotify { try connection.close() }
            },
            client: { connection in
                connected.open()
                let buffer = IOBuffer(capacity: 1 << 20)
                do {
                    for _ in 0..<1000 { try connection.write(buffer, range: 0..<buffer.capacity) }
                    return nil as SyscallError?
                } catch let error as SyscallError {
                    return error
                }
            })
        try result.server.get()
        let error = try result.client.get()
        #expect(error?.errno == .brokenPipe || error?.errno == .connectionReset)
        #expect(error?.operation == "TLS write")
        #expect(sigpipeCount.load(ordering: .relaxed) == before)
    }

    @Test func theTCPConnectionIsTakenOver() throws {
        let result = try overLoopback(
            server: { tcp in
                let tls = try TLSConnection(over: tcp, context: try Fixtures.server())
                _ = try readPattern(tls, total: 1)
                return tls.peerIdentity
            },
            client: { tcp in
                let tls = try TLSConnection(over: tcp, context: try Fixtures.client())
                let buffer = IOBuffer(capacity: 8)
                #expect {
                    try tcp.write(buffer, range: 0..<8)
                } throws: { error in
                    (error as? SyscallError)?.object.hasSuffix("(handed over to TLS)") == true
                }
                #expect(throws: SyscallError.self) { try TLSConnection(over: tcp, context: try Fixtures.client()) }
                try tls.close()
                #expect(throws: SyscallError.self) { try tls.read(into: buffer, range: 0..<8) }
            })
        #expect(try result.server.get().commonName == "sender-a")
        try result.client.get()
    }
}
