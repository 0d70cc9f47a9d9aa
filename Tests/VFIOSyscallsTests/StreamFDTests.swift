// A stream written to a pipe whose reader is gone fails with EPIPE, and the process lives on:
// no SIGPIPE reaches it (the test process would die with signal 13 otherwise), for write and
// writev alike; a gather write puts its slices in order, into files and pipes.
import Foundation
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

    /// `n` slices (more than one writev group) of odd sizes up to `largest` from two buffers.
    func slices(_ n: Int = 200, largest: Int = 5000) -> ([BufferSlice], [UInt8]) {
        let a = IOBuffer(capacity: 1 << 20), b = IOBuffer(capacity: 1 << 20)
        for i in 0..<(1 << 20) { a[i] = UInt8(truncatingIfNeeded: i &* 31); b[i] = UInt8(truncatingIfNeeded: i &* 17 &+ 5) }
        var out: [BufferSlice] = [], expected: [UInt8] = []
        var offset = 0
        for i in 0..<n {
            let count = (i * 977) % largest + (i % 7 == 0 ? 0 : 1)
            let slice = BufferSlice(i % 2 == 0 ? a : b, offset..<offset + count)
            out.append(slice)
            expected += slice.buffer.bytes(slice.range)
            offset += count
        }
        return (out, expected)
    }

    @Test func aGatherWriteToAFileKeepsTheSlicesInOrder() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("gather-\(getpid()).bin").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (parts, expected) = slices()
        do {
            let file = try StreamFD.create(path)
            try file.writeAll(gather: parts)
        }
        #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) == expected)
    }

    @Test func aGatherWriteThroughAPipeArrivesInOrderAndAGoneReaderIsEPIPE() throws {
        let ends = try LinuxKernel.shared.makePipe()
        let writer = StreamFD.adopting(ends.write, name: "pipe")
        let reader = StreamFD.adopting(ends.read, name: "pipe")
        let (parts, expected) = slices(70, largest: 800) // 70 slices, less than the pipe holds
        try writer.writeAll(gather: parts)
        let back = IOBuffer(capacity: expected.count)
        #expect(try reader.readFully(into: back, 0..<expected.count) == expected.count)
        #expect(back.bytes(0..<expected.count) == expected)

        let gone = try LinuxKernel.shared.makePipe()
        try LinuxKernel.shared.close(gone.read)
        let orphan = StreamFD.adopting(gone.write, name: "pipe")
        let error = #expect(throws: SyscallError.self) { try orphan.writeAll(gather: parts) }
        #expect(error?.errno == .brokenPipe)
    }

    /// A short write leaves the group where the kernel stopped, mid-slice or on a boundary.
    @Test func aShortWriteAdvancesTheIOVecsInPlace() {
        let a = IOBuffer(capacity: 64), b = IOBuffer(capacity: 64)
        let slices = [BufferSlice(a, 0..<10), BufferSlice(b, 0..<0), BufferSlice(b, 0..<20), BufferSlice(a, 10..<40)]
        var seen: [[Int]] = []
        slices.forEachRegionGroup { (group: inout IOVecGroup) in
            seen.append(group.remaining.map(\.iov_len))
            group.consume(15)
            seen.append(group.remaining.map(\.iov_len))
            group.consume(15)
            seen.append(group.remaining.map(\.iov_len))
            group.consume(30)
            #expect(group.isEmpty)
        }
        #expect(seen == [[10, 20, 30], [15, 30], [30]], "the empty slice takes no iovec")
    }
}
