// `source=fast`: the same stream, data-fd semantics and faults as the generated source (the
// shared tests run with both), served without a producer thread or pipe, checked as fast on
// load, and bounded in memory whatever the state size.
import SystemPackage
import Testing
import VFIOMock
import VFIOSyscalls

@Suite struct MockFastSourceTests {
    @Test func fastSessionsHoldOneReservedDescriptorAndNoThread() throws {
        let kernel = MockKernel()
        let source = try Opened("mock:fs?state=1MiB&source=fast", kernel: kernel)
        let target = try Opened("mock:ft?state=1MiB&source=fast", kernel: kernel)
        try source.set(.stop)
        let data = try source.set(.stopCopy)
        #expect(kernel.emulatorDescriptorCount == 7) // two devices' three fds, and the data fd
        #expect(kernel.liveThreadCount == 0)
        let stream = try kernel.readAll(data)
        try source.set(.stop)
        try kernel.close(data)
        try target.set(.stop)
        let into = try target.set(.resuming)
        #expect(kernel.emulatorDescriptorCount == 7)
        #expect(kernel.liveThreadCount == 0)
        try kernel.writeAll(into, stream)
        try target.set(.stop)
        try kernel.close(into)
        #expect(target.device.stateDigest == source.device.stateDigest)
        try source.close()
        try target.close()
        #expect(kernel.emulatorDescriptorCount == 0)
    }

    @Test func theStreamCarriesTheBytesStateBytesShows() throws {
        let opened = try Opened("mock:fb?state=20KiB&block-size=8KiB&source=fast")
        defer { try? opened.close() }
        opened.device.mutateState(blockIndexes: [1])
        let stream = try opened.saveStopCopy()
        #expect(stream.count == 64 + 2 * (32 + 8192) + (32 + 4096) + 32)
        for block in 0..<3 {
            let length = block == 2 ? 4096 : 8192
            let payload = 64 + block * (32 + 8192) + 32
            #expect(Array(stream[payload..<payload + length]) == opened.device.stateBytes(at: UInt64(block * 8192), count: length))
        }
        // Fast content is not the generated content of the same seed.
        let generated = try Opened("mock:fb2?state=20KiB&block-size=8KiB&seed=\(opened.device.configuration.seed)")
        defer { try? generated.close() }
        #expect(generated.device.stateBytes(at: 0, count: 64) != opened.device.stateBytes(at: 0, count: 64))
    }

    @Test(arguments: [("", "&source=fast"), ("&source=fast", "")])
    func aFastTargetAndAGeneratedOneRefuseEachOthersStreams(from: String, to: String) throws {
        let kernel = MockKernel()
        let source = try Opened("mock:x?state=64KiB\(from)", kernel: kernel)
        let target = try Opened("mock:y?state=64KiB\(to)", kernel: kernel)
        let stream = try source.saveStopCopy()
        try target.set(.stop)
        let data = try target.set(.resuming)
        expectErrno(.invalidArgument) { try kernel.writeAll(data, stream) }
        expectErrno(.invalidArgument) { try target.set(.stop) }
        #expect(target.device.lastLoadRefusal?.contains("source=fast") == true)
        try kernel.close(data)
        try source.close()
        try target.close()
    }

    @Test(arguments: StateSources.all)
    func dataFdsWorkInOneDirectionOnly(kind: String) throws {
        let opened = try Opened("mock:dir?state=8KiB\(kind)")
        defer { try? opened.close() }
        try opened.set(.stop)
        let save = try opened.set(.stopCopy)
        expectErrno(.badFileDescriptor) { _ = try opened.kernel.writeBytes(save, from: [UInt8](repeating: 0, count: 8), byteRange: 0..<8) }
        try opened.set(.stop)
        try opened.kernel.close(save)
        let resume = try opened.set(.resuming)
        var bytes = [UInt8](repeating: 0, count: 8)
        expectErrno(.badFileDescriptor) { _ = try opened.kernel.readBytes(resume, into: &bytes, byteRange: 0..<8) }
        try opened.kernel.close(resume)
    }

    @Test func alteredPaddingIsRefused() throws {
        let kernel = MockKernel()
        let source = try Opened("mock:pa?state=100&source=fast", kernel: kernel)
        let target = try Opened("mock:pb?state=100&source=fast", kernel: kernel)
        var stream = try source.saveStopCopy()
        #expect(stream.count == 64 + 32 + 104 + 32)
        stream[64 + 32 + 101] = 1 // inside the 4 padding bytes of the 100-byte block
        expectErrno(.invalidArgument) { try target.load(stream, chunk: 7) }
        #expect(target.device.lastLoadRefusal?.contains("padding") == true)
        try source.close()
        try target.close()
    }

    /// 16 TiB of state: the pool is the same few MiB as for any other size, so opening,
    /// estimating and reading the start of such a device is cheap.
    @Test func aHugeFastStateCostsOnlyItsPool() throws {
        let opened = try Opened("mock:huge?state=16TiB&block-size=16MiB&source=fast&flags=stop-copy")
        defer { try? opened.close() }
        let size = try opened.feature(R.get | 9, payload: 8).u64(8)
        let blocks = UInt64(1 << 20)
        #expect(size == 64 + blocks * (32 + (16 << 20)) + 32)
        try opened.set(.stop)
        let data = try opened.set(.stopCopy)
        let head = try opened.read(data, exactly: 64 + 32 + (16 << 20))
        #expect(Array(head[(64 + 32)..<(64 + 32 + 4096)]) == opened.device.stateBytes(at: 0, count: 4096))
        try opened.set(.stop)
        try opened.kernel.close(data)
    }
}
