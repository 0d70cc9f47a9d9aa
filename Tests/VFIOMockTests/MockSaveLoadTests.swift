// Save → load round trips through real pipes, and the vendor-style refusals of bad streams.
import SystemPackage
import Testing
import VFIOMock
import VFIOSyscalls

@Suite struct MockSaveLoadTests {
    @Test(arguments: [UInt64(1), 4096, (1 << 20) + 1, 3 * (64 << 10) + 17] as [UInt64], StateSources.all)
    func roundTripRestoresIdenticalState(size: UInt64, kind: String) throws {
        let kernel = MockKernel()
        let source = try Opened("mock:src?state=\(size)&seed=7\(kind)", kernel: kernel)
        let target = try Opened("mock:dst?state=\(size)&seed=99\(kind)", kernel: kernel)
        source.device.mutateState(blocks: 3)
        #expect(source.device.stateDigest != target.device.stateDigest)

        let stream = try source.saveStopCopy()
        try target.load(stream, chunk: 4093) // chunking unlike the source's reads
        #expect(try target.state() == .stop)
        #expect(target.device.stateDigest == source.device.stateDigest)
        let probe = Int(min(size, 64))
        #expect(target.device.stateBytes(at: size - UInt64(probe), count: probe)
                == source.device.stateBytes(at: size - UInt64(probe), count: probe))
        try source.close()
        try target.close()
        #expect(kernel.emulatorDescriptorCount == 0)
        #expect(kernel.liveThreadCount == 0)
    }

    @Test(arguments: StateSources.all)
    func streamFromAnIncompatibleDeviceFailsTheWriteWithEINVAL(kind: String) throws {
        let kernel = MockKernel()
        let source = try Opened("mock:a?state=8KiB&compat=vendor-a\(kind)", kernel: kernel)
        let target = try Opened("mock:b?state=8KiB&compat=vendor-b\(kind)", kernel: kernel)
        let stream = try source.saveStopCopy()
        try target.set(.stop)
        let data = try target.set(.resuming)
        expectErrno(.invalidArgument) { try kernel.writeAll(data, stream) }
        // The session is failed from then on, and the load is refused.
        expectErrno(.noDevice) { try kernel.writeAll(data, [0, 0, 0, 0]) }
        expectErrno(.invalidArgument) { try target.set(.stop) }
        #expect(try target.state() == .resuming)
        try kernel.close(data)
        try source.close()
        try target.close()
    }

    @Test(arguments: StateSources.all)
    func streamForADifferentStateSizeIsRefusedAtTheHeader(kind: String) throws {
        let kernel = MockKernel()
        let source = try Opened("mock:a?state=8KiB\(kind)", kernel: kernel)
        let target = try Opened("mock:b?state=16KiB\(kind)", kernel: kernel)
        let stream = try source.saveStopCopy()
        // The header arrives in pieces; the write that completes it fails.
        try target.set(.stop)
        let data = try target.set(.resuming)
        try kernel.writeAll(data, Array(stream[0..<40]))
        expectErrno(.invalidArgument) { try kernel.writeAll(data, Array(stream[40..<64])) }
        try kernel.close(data)
        try source.close()
        try target.close()
    }

    @Test(arguments: StateSources.all)
    func truncatedStreamIsRefusedAtResumingToStop(kind: String) throws {
        let kernel = MockKernel()
        let source = try Opened("mock:a?state=256KiB\(kind)", kernel: kernel)
        let target = try Opened("mock:b?state=256KiB\(kind)", kernel: kernel)
        let stream = try source.saveStopCopy()
        let before = target.device.stateDigest
        expectErrno(.invalidArgument) { try target.load(Array(stream.dropLast(100))) }
        #expect(try target.state() == .resuming) // the failed arc leaves it where it was
        #expect(target.device.stateDigest == before)
        #expect(target.device.lastLoadRefusal?.contains("truncated") == true)
        try source.close()
        try target.close()
    }

    @Test(arguments: StateSources.all)
    func alteredPayloadIsRefusedAndCanLandInError(kind: String) throws {
        let kernel = MockKernel()
        let source = try Opened("mock:a?state=256KiB\(kind)", kernel: kernel)
        let target = try Opened("mock:b?state=256KiB&resume-failure=error\(kind)", kernel: kernel)
        var stream = try source.saveStopCopy()
        stream[100_000] ^= 0x40
        expectErrno(.invalidArgument) { try target.load(stream) }
        #expect(try target.state() == .error)
        // Only a reset leaves ERROR.
        expectErrno(.invalidArgument) { try target.set(.stop) }
        #expect(try kernel.ioctl(target.fd, R.reset, .none) == 0)
        #expect(try target.state() == .running)
        try source.close()
        try target.close()
    }

    @Test(arguments: StateSources.all)
    func alteredRecordHeaderIsRefused(kind: String) throws {
        let kernel = MockKernel()
        let source = try Opened("mock:a?state=64KiB&block-size=4KiB\(kind)", kernel: kernel)
        let target = try Opened("mock:b?state=64KiB&block-size=4KiB\(kind)", kernel: kernel)
        var stream = try source.saveStopCopy()
        // Second block record: header(64) + record(32 + 4096) → its version word at +16.
        stream[64 + 32 + 4096 + 16] ^= 1
        expectErrno(.invalidArgument) { try target.load(stream) }
        #expect(target.device.lastLoadRefusal?.contains("altered") == true)
        try source.close()
        try target.close()
    }

    @Test(arguments: StateSources.all)
    func streamMissingItsEndIsRefusedButTheRealOneLoadsAfterAReset(kind: String) throws {
        let kernel = MockKernel()
        let source = try Opened("mock:a?state=128KiB\(kind)", kernel: kernel)
        let target = try Opened("mock:b?state=128KiB\(kind)", kernel: kernel)
        let stream = try source.saveStopCopy()
        expectErrno(.invalidArgument) { try target.load(Array(stream.dropLast(32))) }
        #expect(try kernel.ioctl(target.fd, R.reset, .none) == 0)
        try target.load(stream)
        #expect(target.device.stateDigest == source.device.stateDigest)
        try source.close()
        try target.close()
    }

    @Test(arguments: StateSources.all)
    func writerClosingItsFdBeforeStopStillLoads(kind: String) throws {
        let kernel = MockKernel()
        let source = try Opened("mock:a?state=300KiB\(kind)", kernel: kernel)
        let target = try Opened("mock:b?state=300KiB\(kind)", kernel: kernel)
        let stream = try source.saveStopCopy()
        try target.set(.stop)
        let data = try target.set(.resuming)
        try kernel.writeAll(data, stream)
        try kernel.close(data)
        try target.set(.running)
        #expect(target.device.stateDigest == source.device.stateDigest)
        #expect(target.device.arcHistory.suffix(3).map(\.description) == ["RESUMING>STOP", "STOP>RUNNING_P2P", "RUNNING_P2P>RUNNING"])
        try source.close()
        try target.close()
        #expect(kernel.emulatorDescriptorCount == 0)
    }

    /// 1 GiB streamed fd to fd without holding it: the target checks every byte.
    @Test(.enabled(if: MockSaveLoadTests.largeTestsEnabled))
    func oneGiBRoundTripStreamsThroughPipes() throws {
        let kernel = MockKernel()
        let source = try Opened("mock:a?state=1GiB&flags=stop-copy", kernel: kernel)
        let target = try Opened("mock:b?state=1GiB&flags=stop-copy", kernel: kernel)
        source.device.mutateState(blocks: 10)
        try source.set(.stop)
        try target.set(.stop)
        let out = try source.set(.stopCopy)
        let into = try target.set(.resuming)
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var total = 0
        while true {
            let n = try kernel.readBytes(out, into: &buffer, byteRange: 0..<buffer.count)
            if n == 0 { break }
            var done = 0
            while done < n { done += try kernel.writeBytes(into, from: buffer, byteRange: done..<n) }
            total += n
        }
        try target.set(.stop)
        try source.set(.stop)
        #expect(total > 1 << 30)
        #expect(target.device.stateDigest == source.device.stateDigest)
        try kernel.close(out)
        try kernel.close(into)
        try source.close()
        try target.close()
    }

    static var largeTestsEnabled: Bool {
        #if DEBUG
        false
        #else
        true
        #endif
    }
}
