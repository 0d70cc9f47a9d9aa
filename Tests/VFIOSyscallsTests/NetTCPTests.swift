// Plain TCP over loopback: bytes intact through writes and gather writes, timeouts, a gone
// peer reported as EPIPE/ECONNRESET without SIGPIPE, settings (half close: TLSTransferTests).
import Foundation
import SystemPackage
import Testing
import VFIOBuffers
import VFIOSyscalls

@Suite(.serialized) struct NetTCPTests {
    @Test func writesAndGatherWritesArriveIntact() throws {
        let total = 6 << 20
        let result = try overLoopback(
            server: { connection in try readPattern(connection, total: total + 1) },
            client: { connection in
                // 2 MiB in one write, then 4 MiB as a gather of uneven slices (3000 small ones
                // first: more than one sendmsg may take, so the call must split them).
                try connection.write(patternBuffer(count: 2 << 20), range: 0..<(2 << 20))
                var slices: [BufferSlice] = []
                var offset = 2 << 20
                let small = patternBuffer(count: 3000 * 7, startingAt: offset)
                for i in 0..<3000 { slices.append(BufferSlice(small, i * 7..<(i + 1) * 7)) }
                offset += 3000 * 7
                let empty = IOBuffer(capacity: 1)
                slices.append(BufferSlice(empty, 0..<0))
                let rest = total - offset
                let big = patternBuffer(count: rest, startingAt: offset)
                slices.append(BufferSlice(big, 0..<rest / 3))
                slices.append(BufferSlice(big, rest / 3..<rest))
                try connection.write(gather: slices)
                try connection.close()
            })
        let (received, firstBad) = try result.server.get()
        try result.client.get()
        #expect(received == total)
        #expect(firstBad == nil)
    }

    @Test func listenerReportsTheBoundPortAndBothEndsNameTheirPeer() throws {
        let listener = try TCPListener.bind(loopback)
        #expect(listener.port != 0)
        #expect(listener.localAddress == "127.0.0.1:\(listener.port)")
        let address = NetworkAddress(host: "127.0.0.1", port: listener.port)
        let client = try TCPConnection.connect(to: address, timeout: .seconds(5))
        let server = try listener.accept(timeout: .seconds(5))
        #expect(client.peerAddress == "127.0.0.1:\(listener.port)")
        #expect(server.peerAddress == client.localAddress)
        #expect(client.description == "TCP connection to 127.0.0.1:\(listener.port)")
        #expect(server.description == "TCP connection from \(client.localAddress)")
        try listener.close()
        try listener.close()  // idempotent
        #expect(throws: SyscallError.self) { try listener.accept(timeout: .zero) }
    }

    @Test func ipv6LoopbackWhereTheKernelHasIt() throws {
        let listener: TCPListener
        do {
            listener = try TCPListener.bind(NetworkAddress(host: "::1", port: 0))
        } catch let error as SyscallError where error.errno == .addressNotAvailable || error.errno == .addressFamilyNotSupported {
            return  // no IPv6 loopback in this sandbox
        }
        let client = try TCPConnection.connect(to: NetworkAddress(host: "::1", port: listener.port), timeout: .seconds(5))
        _ = try listener.accept(timeout: .seconds(5))
        #expect(client.peerAddress == "[::1]:\(listener.port)")
    }

    @Test func acceptWithoutAClientTimesOut() throws {
        let listener = try TCPListener.bind(loopback)
        let start = ContinuousClock.now
        #expect {
            try listener.accept(timeout: .milliseconds(200))
        } throws: { error in
            let error = error as? SyscallError
            return error?.errno == .timedOut && error?.operation == "accept (within 200 ms)" && error?.object == listener.description
        }
        #expect(ContinuousClock.now - start >= .milliseconds(190))
    }

    @Test func connectToAClosedPortIsRefused() throws {
        let port = try TCPListener.bind(loopback).port  // closed again when the listener is released
        #expect {
            try TCPConnection.connect(to: NetworkAddress(host: "127.0.0.1", port: port), timeout: .seconds(2))
        } throws: { error in
            let error = error as? SyscallError
            return error?.errno == .connectionRefused && error?.object == "TCP connection to 127.0.0.1:\(port)"
        }
    }

    @Test func aSilentPeerHitsTheReadIdleTimeout() throws {
        let done = Gate()
        let result = try overLoopback(
            clientOptions: TCPOptions(idleTimeout: .milliseconds(300)),
            server: { connection in
                done.wait()
                _ = connection
            },
            client: { connection in
                defer { done.open() }
                let start = ContinuousClock.now
                let buffer = IOBuffer(capacity: 4096)
                do {
                    _ = try connection.read(into: buffer, range: 0..<4096)
                    return (nil as SyscallError?, Duration.zero)
                } catch let error as SyscallError {
                    return (error, ContinuousClock.now - start)
                }
            })
        let (error, waited) = try result.client.get()
        #expect(error?.errno == .timedOut)
        #expect(error?.operation == "read (no progress for 300 ms)")
        #expect(waited >= .milliseconds(280) && waited < .seconds(3))
    }

    @Test func aPeerThatStopsReadingHitsTheWriteIdleTimeout() throws {
        let done = Gate()
        let result = try overLoopback(
            listenerOptions: TCPOptions(receiveBufferSize: 64 << 10),
            clientOptions: TCPOptions(sendBufferSize: 64 << 10, idleTimeout: .milliseconds(300)),
            server: { connection in
                done.wait()
                _ = connection
            },
            client: { connection in
                defer { done.open() }
                let buffer = IOBuffer(capacity: 1 << 20)
                var written = 0
                do {
                    while written < 256 << 20 {
                        try connection.write(buffer, range: 0..<buffer.capacity)
                        written += buffer.capacity
                    }
                    return nil as SyscallError?
                } catch let error as SyscallError {
                    return error
                }
            })
        let error = try result.client.get()
        #expect(error?.errno == .timedOut)
        #expect(error?.operation.hasPrefix("write (") == true)
        #expect(error?.operation.hasSuffix("(no progress for 300 ms)") == true)
    }

    @Test func writingToAClosedPeerIsAnErrorAndRaisesNoSIGPIPE() throws {
        _ = countSIGPIPE
        let before = sigpipeCount.load(ordering: .relaxed)
        let result = try overLoopback(
            server: { connection in try connection.close() },
            client: { connection in
                let buffer = IOBuffer(capacity: 1 << 20)
                do {
                    for _ in 0..<1000 { try connection.write(buffer, range: 0..<buffer.capacity) }
                    return nil as SyscallError?
                } catch let error as SyscallError {
                    return error
                }
            })
        let error = try result.client.get()
        #expect(error?.errno == .brokenPipe || error?.errno == .connectionReset)
        #expect(error?.object.hasPrefix("TCP connection to 127.0.0.1:") == true)
        #expect(sigpipeCount.load(ordering: .relaxed) == before)
    }

    @Test func aClosedConnectionThrowsInsteadOfTouchingItsDescriptor() throws {
        let listener = try TCPListener.bind(loopback)
        let client = try TCPConnection.connect(to: NetworkAddress(host: "127.0.0.1", port: listener.port), timeout: .seconds(5))
        try client.close()
        try client.close()
        let buffer = IOBuffer(capacity: 16)
        #expect {
            try client.write(buffer, range: 0..<16)
        } throws: { error in
            (error as? SyscallError)?.errno == .badFileDescriptor && (error as? SyscallError)?.object.hasSuffix("(closed)") == true
        }
        #expect(throws: SyscallError.self) { try client.read(into: buffer, range: 0..<16) }
    }

    @Test func socketSettingsTakeEffect() throws {
        let listener = try TCPListener.bind(loopback)
        let options = TCPOptions(noDelay: false, sendBufferSize: 256 << 10, receiveBufferSize: 512 << 10)
        let client = try TCPConnection.connect(to: NetworkAddress(host: "127.0.0.1", port: listener.port), timeout: .seconds(5), options: options)
        #expect(client.noDelay == false)
        try client.setNoDelay(true)
        #expect(client.noDelay == true)
        let sizes = try client.bufferSizes()
        // Linux doubles the request for its own bookkeeping, capped by net.core.[rw]mem_max.
        #expect(sizes.send >= 256 << 10)
        #expect(sizes.receive >= 256 << 10)
        let accepted = try listener.accept(timeout: .seconds(5))
        #expect(accepted.noDelay == true)
    }
}
