// Whole GiB-sized streams through real pipes, checked byte for byte, and a 16 GiB device whose
// save does not grow the emulator's memory (release builds only: debug builds are an order of
// magnitude slower). Speeds are measured by the benchmarks (Benchmarks/), not here.
import Foundation
import SystemPackage
import Testing
import VFIOMock
import VFIOSyscalls

@Suite(.enabled(if: MockSaveLoadTests.largeTestsEnabled), .serialized) struct MockLargeStreamTests {
    /// Reads a save fd to EOF, writing each chunk to `sink`; returns (bytes, peak RSS growth).
    static func drain(_ kernel: MockKernel, _ data: CInt, into sink: CInt) throws -> (Int, Int) {
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var total = 0
        let baseline = residentBytes()
        var peak = baseline
        while true {
            let n = try kernel.readBytes(data, into: &buffer, byteRange: 0..<buffer.count)
            if n == 0 { break }
            var done = 0
            while done < n { done += try kernel.writeBytes(sink, from: buffer, byteRange: done..<n) }
            total += n
            if total % (256 << 20) < n { peak = max(peak, residentBytes()) }
        }
        return (total, peak - baseline)
    }

    static func residentBytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])
        else { return 0 }
        return kib << 10
    }

    @Test func saveOf1GiBThroughThePipe() throws {
        let opened = try Opened("mock:bench?state=1GiB&flags=stop-copy")
        let null = try opened.kernel.open("/dev/null", .writeOnly) // passes through to the real kernel
        try opened.set(.stop)
        let data = try opened.set(.stopCopy)
        let (total, _) = try Self.drain(opened.kernel, data, into: null)
        #expect(total == 64 + 16384 * (32 + 65536) + 32)
        try opened.set(.stop)
        try opened.kernel.close(data)
        try opened.kernel.close(null)
        try opened.close()
    }

    @Test func roundTripOf1GiBSaveToLoad() throws {
        let kernel = MockKernel()
        let source = try Opened("mock:a?state=1GiB&flags=stop-copy", kernel: kernel)
        let target = try Opened("mock:b?state=1GiB&flags=stop-copy", kernel: kernel)
        source.device.mutateState(blocks: 100)
        try source.set(.stop)
        try target.set(.stop)
        let out = try source.set(.stopCopy)
        let into = try target.set(.resuming)
        let (total, _) = try Self.drain(kernel, out, into: into)
        try target.set(.stop)
        #expect(total == 64 + 16384 * (32 + 65536) + 32)
        #expect(target.device.stateDigest == source.device.stateDigest) // every byte was checked
        try source.set(.stop)
        for fd in [out, into] { try kernel.close(fd) }
        try source.close()
        try target.close()
    }

    @Test func sixteenGiBDeviceSavedToDevNullInLittleMemory() throws {
        let opened = try Opened("mock:big?state=16GiB&flags=stop-copy,p2p")
        opened.device.mutateState(blocks: 1000)
        let null = try opened.kernel.open("/dev/null", .writeOnly)
        try opened.set(.stop)
        let data = try opened.set(.stopCopy)
        let (total, growth) = try Self.drain(opened.kernel, data, into: null)
        #expect(total > 16 << 30)
        #expect(growth < 256 << 20)
        try opened.set(.stop)
        try opened.kernel.close(data)
        try opened.kernel.close(null)
        try opened.close()
    }
}
