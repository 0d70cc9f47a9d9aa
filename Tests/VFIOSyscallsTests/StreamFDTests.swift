// A stream written to a pipe whose reader is gone fails with EPIPE, and the process lives on:
// no SIGPIPE reaches it (the test process would die with signal 13 otherwise).
import SystemPackage
import Testing
import VFIOBuffers
@testable import VFIOSyscalls

@Suite struct StreamFDTests {
    @Test func writingToAPipeWithoutAReaderIsEPIPENotSIGPIPE() throws {
        let ends = try LinuxKernel.shared.makePipe()
        try LinuxKernel.shared.close(ends.read)
        let stream = StreamFD.adopting(ends.write, name: "pipe")
        let buffer = IOBuffer(capacity: 64 << 10)
        let error = #expect(throws: SyscallError.self) { try stream.writeAll(buffer, 0..<buffer.capacity) }
        #expect(error?.errno == .brokenPipe)
        #expect(error?.object == "pipe")
        // A second failure is the same error: nothing was left pending to kill us later.
        #expect(throws: SyscallError.self) { try stream.writeAll(buffer, 0..<16) }
    }

    @Test func aPipeThatIsReadReceivesEveryByte() throws {
        let ends = try LinuxKernel.shared.makePipe()
        let writer = StreamFD.adopting(ends.write, name: "pipe")
        let reader = StreamFD.adopting(ends.read, name: "pipe")
        let buffer = IOBuffer(capacity: 4096)
        for i in 0..<4096 { buffer[i] = UInt8(truncatingIfNeeded: i * 7) }
        try writer.writeAll(buffer, 0..<4096)
        let back = IOBuffer(capacity: 4096)
        #expect(try reader.readFully(into: back, 0..<4096) == 4096)
        #expect(back.bytes(0..<4096) == buffer.bytes(0..<4096))
    }
}
