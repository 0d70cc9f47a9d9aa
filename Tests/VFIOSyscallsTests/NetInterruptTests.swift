// interrupt(): another thread's blocked read or write returns at once, plain and TLS, and the
// connection refuses further I/O. The transfer's cancel and failure paths depend on it.
import Foundation
import Testing
import VFIOBuffers
import VFIOSyscalls

@Suite(.serialized) struct NetInterruptTests {
    /// Both ends connected; `blocked` runs on its own thread against the client end, and the
    /// client is interrupted once `blocked` had time to block.
    private func interrupting(
        tls: Bool, _ blocked: @escaping @Sendable (any ByteStreamConnection) throws -> Void
    ) throws -> (Result<Void, any Error>, Duration) {
        let listener = try TCPListener.bind(loopback)
        let address = NetworkAddress(host: "127.0.0.1", port: listener.port)
        let serverSide = Worker { () throws -> any ByteStreamConnection in
            let tcp = try listener.accept(timeout: .seconds(10))
            return tls ? try TLSConnection(over: tcp, context: Fixtures.server()) : tcp
        }
        let tcp = try TCPConnection.connect(to: address, timeout: .seconds(5))
        let client: any ByteStreamConnection = tls ? try TLSConnection(over: tcp, context: Fixtures.client()) : tcp
        let server = try serverSide.join().get()
        let clock = ContinuousClock()
        let start = clock.now
        let worker = Worker { try blocked(client) }
        Thread.sleep(forTimeInterval: 0.2)
        client.interrupt()
        let result = worker.join()
        let took = clock.now - start
        // Later calls fail too, and close still works.
        #expect(throws: (any Error).self) { try client.write(IOBuffer(capacity: 1), range: 0..<1) }
        try? client.close()
        try? server.close()
        return (result, took)
    }

    @Test(arguments: [false, true]) func aBlockedReadReturnsWhenInterrupted(tls: Bool) throws {
        let (result, took) = try interrupting(tls: tls) { connection in
            let buffer = IOBuffer(capacity: 4096)
            // The peer sends nothing: only interrupt() ends this read (0, the end, or an error).
            let n = try connection.read(into: buffer, range: 0..<4096)
            #expect(n == 0)
        }
        if case .failure(let error) = result { #expect(error is SyscallError || error is TLSError, "\(error)") }
        #expect(took < .seconds(5))
    }

    @Test(arguments: [false, true]) func aBlockedWriteFailsWhenInterrupted(tls: Bool) throws {
        let (result, took) = try interrupting(tls: tls) { connection in
            // The peer never reads: the socket buffers fill and the write blocks until interrupted.
            let buffer = IOBuffer(capacity: 64 << 20)
            try connection.write(buffer, range: 0..<(64 << 20))
        }
        guard case .failure(let error) = result else {
            Issue.record("a 64 MiB write to a peer that never reads completed")
            return
        }
        #expect(error is SyscallError || error is TLSError, "\(error)")
        #expect(took < .seconds(5))
    }
}
