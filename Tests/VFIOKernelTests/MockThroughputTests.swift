// How fast the emulator produces and checks state through real pipes (release builds only:
// debug builds are an order of magnitude slower). Prints MB/s; fails below a floor far under
// what the generator reaches, so a pathological regression shows.
import Foundation
import SystemPackage
import Testing
import VFIOMock
import VFIOSyscalls

@Suite(.enabled(if: MockSaveLoadTests.largeTestsEnabled)) struct MockThroughputTests {
    @Test func saveOf1GiBThroughThePipe() throws {
        let opened = try Opened("mock:bench?state=1GiB&flags=stop-copy")
        try opened.set(.stop)
        let data = try opened.set(.stopCopy)
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var total = 0
        let start = Date()
        while true {
            let n = try opened.kernel.readBytes(data, into: &buffer, byteRange: 0..<buffer.count)
            if n == 0 { break }
            total += n
        }
        let seconds = Date().timeIntervalSince(start)
        let rate = Double(total) / seconds / 1e6
        print("mock save: \(total) bytes in \(String(format: "%.3f", seconds)) s = \(Int(rate)) MB/s")
        #expect(total > 1 << 30)
        #expect(rate > 300)
        try opened.set(.stop)
        try opened.kernel.close(data)
        try opened.close()
    }

    @Test func loadOf1GiBThroughThePipe() throws {
        let kernel = MockKernel()
        let source = try Opened("mock:a?state=1GiB&flags=stop-copy", kernel: kernel)
        let target = try Opened("mock:b?state=1GiB&flags=stop-copy", kernel: kernel)
        // Stage the stream in memory first so only the load is timed.
        let stream = try source.saveStopCopy()
        try target.set(.stop)
        let data = try target.set(.resuming)
        let start = Date()
        try kernel.writeAll(data, stream)
        try target.set(.stop)
        let seconds = Date().timeIntervalSince(start)
        let rate = Double(stream.count) / seconds / 1e6
        print("mock load: \(stream.count) bytes in \(String(format: "%.3f", seconds)) s = \(Int(rate)) MB/s")
        #expect(target.device.stateDigest == source.device.stateDigest)
        #expect(rate > 300)
        try kernel.close(data)
        try source.close()
        try target.close()
    }
}
