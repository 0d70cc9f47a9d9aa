// How fast the emulator produces and checks state through real pipes, and that its memory
// does not grow with the state size (release builds only: debug builds are an order of
// magnitude slower). Prints MB/s; fails below a floor far under what it reaches here, so a
// pathological regression shows.
import Foundation
import SystemPackage
import Testing
import VFIOMock
import VFIOSyscalls

@Suite(.enabled(if: MockSaveLoadTests.largeTestsEnabled), .serialized) struct MockThroughputTests {
    /// Reads a save fd to EOF, writing each chunk to `sink`; returns (bytes, seconds, peak RSS growth).
    static func drain(_ kernel: MockKernel, _ data: CInt, into sink: CInt) throws -> (Int, Double, Int) {
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var total = 0
        let baseline = residentBytes()
        var peak = baseline
        let start = Date()
        while true {
            let n = try kernel.readBytes(data, into: &buffer, byteRange: 0..<buffer.count)
            if n == 0 { break }
            var done = 0
            while done < n { done += try kernel.writeBytes(sink, from: buffer, byteRange: done..<n) }
            total += n
            if total % (256 << 20) < n { peak = max(peak, residentBytes()) }
        }
        return (total, Date().timeIntervalSince(start), peak - baseline)
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
        let (total, seconds, _) = try Self.drain(opened.kernel, data, into: null)
        let rate = Double(total) / seconds / 1e6
        print("mock save 1 GiB: \(total) bytes in \(String(format: "%.3f", seconds)) s = \(Int(rate)) MB/s")
        #expect(total > 1 << 30)
        #expect(rate > 300)
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
        let (total, seconds, _) = try Self.drain(kernel, out, into: into)
        try target.set(.stop)
        let rate = Double(total) / seconds / 1e6
        print("mock save → load 1 GiB: \(String(format: "%.3f", seconds)) s = \(Int(rate)) MB/s (every byte checked)")
        #expect(target.device.stateDigest == source.device.stateDigest)
        #expect(rate > 200)
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
        let (total, seconds, growth) = try Self.drain(opened.kernel, data, into: null)
        print("mock save 16 GiB to /dev/null: \(String(format: "%.2f", seconds)) s = \(Int(Double(total) / seconds / 1e6)) MB/s, RSS growth \(growth >> 20) MiB")
        #expect(total > 16 << 30)
        #expect(growth < 256 << 20)
        try opened.set(.stop)
        try opened.kernel.close(data)
        try opened.kernel.close(null)
        try opened.close()
    }
}
