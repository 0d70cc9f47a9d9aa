// PRE_COPY sessions: initial and dirty bytes, the temporary end of stream, the switch to
// STOP_COPY on the same fd, and how sessions end.
import SystemPackage
import Testing
import VFIOMock
import VFIOSyscalls

extension Opened {
    /// VFIO_MIG_GET_PRECOPY_INFO on a data fd.
    func precopyInfo(_ data: CInt, argsz: UInt32 = 24) throws(Errno) -> (initial: UInt64, dirty: UInt64) {
        let b = UserBuffer(bytes: 24)
        b.set(0, u32: argsz)
        try kernel.call(data, R.precopyInfo, b)
        return (b.u64(8), b.u64(16))
    }

    /// Reads up to `count` bytes with one read call.
    func readOnce(_ data: CInt, _ count: Int) throws(Errno) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        let n = try kernel.readBytes(data, into: &buffer, byteRange: 0..<count)
        return Array(buffer[0..<n])
    }

    /// One read; nil at the temporary end of a pre-copy stream (ENOMSG).
    func readUnlessDrained(_ data: CInt, _ count: Int) throws(Errno) -> [UInt8]? {
        let result = Result { () throws(Errno) -> [UInt8] in try readOnce(data, count) }
        if case .failure(.noMessage) = result { return nil }
        return try result.get()
    }

    /// Reads exactly `count` bytes (several reads).
    func read(_ data: CInt, exactly count: Int) throws(Errno) -> [UInt8] {
        var out: [UInt8] = []
        while out.count < count { out += try readOnce(data, count - out.count) }
        return out
    }
}

@Suite struct MockPrecopyTests {
    static let block = 64 << 10
    static let record = 32 + block

    @Test(arguments: StateSources.all)
    func initialThenDirtyBytesThenTheFinalStream(kind: String) throws {
        let kernel = MockKernel()
        let source = try Opened("mock:pc0?state=1MiB&dirty-rate=0\(kind)", kernel: kernel)
        let target = try Opened("mock:pc1?state=1MiB\(kind)", kernel: kernel)
        let data = try source.set(.preCopy)
        #expect(data >= 0)
        let initial = UInt64(64 + 16 * Self.record)
        #expect(try source.precopyInfo(data) == (initial, 0))
        expectErrno(.invalidArgument) { _ = try source.precopyInfo(data, argsz: 16) }

        var stream = try source.read(data, exactly: 100_000)
        #expect(try source.precopyInfo(data) == (initial - 100_000, 0))
        stream += try source.read(data, exactly: Int(initial) - 100_000)
        #expect(try source.precopyInfo(data) == (0, 0))
        expectErrno(.noMessage) { _ = try source.readOnce(data, 4096) }

        // The device keeps running: a changed block becomes dirty data on the same fd.
        #expect(source.device.mutateState(blockIndexes: [3, 9]) == 2)
        #expect(try source.precopyInfo(data) == (0, UInt64(2 * Self.record)))
        stream += try source.read(data, exactly: 2 * Self.record)
        expectErrno(.noMessage) { _ = try source.readOnce(data, 4096) }

        #expect(try source.set(.stopCopy) == -1) // same session continues
        expectErrno(.invalidArgument) { _ = try source.precopyInfo(data) }
        #expect(source.device.mutateState(blocks: 1) == 0) // stopped devices do not change
        stream += try kernel.readAll(data)
        #expect(stream.count == Int(initial) + 2 * Self.record + 32)
        try source.set(.stop)
        expectErrno(.noDevice) { _ = try source.readOnce(data, 16) } // session over
        try kernel.close(data)

        try target.load(stream)
        #expect(target.device.stateDigest == source.device.stateDigest)
        try source.close()
        try target.close()
        #expect(kernel.emulatorDescriptorCount == 0)
        #expect(kernel.liveThreadCount == 0)
    }

    @Test(arguments: StateSources.all)
    func readingWhileRunningDirtiesStateAtTheConfiguredRate(kind: String) throws {
        let kernel = MockKernel()
        let source = try Opened("mock:pr0?state=4MiB&dirty-rate=1/256KiB\(kind)", kernel: kernel)
        let target = try Opened("mock:pr1?state=4MiB\(kind)", kernel: kernel)
        let data = try source.set(.preCopy)
        var stream: [UInt8] = []
        var rounds = 0
        var sawDirty = false
        while let chunk = try source.readUnlessDrained(data, 256 << 10) {
            stream += chunk
            let info = try source.precopyInfo(data)
            if info.initial == 0 && info.dirty > 0 { sawDirty = true }
            rounds += 1
            #expect(rounds < 10_000, "pre-copy must converge at this rate")
        }
        #expect(sawDirty)
        #expect(stream.count > 64 + 64 * Self.record) // the initial image plus resent blocks
        try source.set(.preCopyP2P) // then STOP_COPY through PRE_COPY_P2P, as QEMU does
        try source.set(.stopCopy)
        stream += try kernel.readAll(data)
        try source.set(.stop)
        try kernel.close(data)
        try target.load(stream)
        #expect(target.device.stateDigest == source.device.stateDigest)
        try source.close()
        try target.close()
    }

    @Test(arguments: StateSources.all)
    func zeroInsteadOfENOMSGWhenConfigured(kind: String) throws {
        let opened = try Opened("mock:pz?state=100&precopy-end=zero&dirty-rate=0\(kind)")
        defer { try? opened.close() }
        let data = try opened.set(.preCopy)
        #expect(try opened.read(data, exactly: 64 + 32 + 104).count == 200)
        #expect(try opened.readOnce(data, 100).isEmpty) // "nothing now", not the end
        opened.device.mutateState(blockIndexes: [0])
        #expect(try opened.readOnce(data, 1000).count == 32 + 104)
        try opened.set(.stopCopy)
        #expect(try opened.kernel.readAll(data).count == 32)
        try opened.kernel.close(data)
    }

    @Test(arguments: StateSources.all)
    func leavingThePreCopyGroupEndsTheSession(kind: String) throws {
        let opened = try Opened("mock:pe?state=64KiB\(kind)")
        defer { try? opened.close() }
        let first = try opened.set(.preCopy)
        _ = try opened.readOnce(first, 100)
        try opened.set(.running) // PRE_COPY → RUNNING aborts pre-copy
        expectErrno(.noDevice) { _ = try opened.readOnce(first, 100) }
        expectErrno(.invalidArgument) { _ = try opened.precopyInfo(first) } // not in PRE_COPY
        let second = try opened.set(.preCopy)
        #expect(second != first)
        expectErrno(.noDevice) { _ = try opened.precopyInfo(first) } // PRE_COPY, but a dead session
        #expect(try opened.precopyInfo(second).initial > 0)
        // Resetting ends the session and returns the device to RUNNING.
        #expect(try opened.kernel.ioctl(opened.fd, R.reset, .none) == 0)
        #expect(try opened.state() == .running)
        expectErrno(.noDevice) { _ = try opened.readOnce(second, 100) }
        // Data fds cannot seek and do not take other ioctls.
        var bytes = [UInt8](repeating: 0, count: 8)
        expectErrno(.illegalSeek) { _ = try opened.kernel.preadBytes(second, into: &bytes, offset: 0) }
        expectErrno(.noIoctl) { try opened.kernel.call(second, R.deviceInfo, UserBuffer(bytes: 24)) }
        try opened.kernel.close(first)
        try opened.kernel.close(second)
        #expect(opened.kernel.liveThreadCount == 0)
    }

    @Test(arguments: StateSources.all)
    func stopCopyEndsWithEOFAndUnreadDataIsLostAtStop(kind: String) throws {
        let opened = try Opened("mock:sc?state=4MiB\(kind)")
        defer { try? opened.close() }
        try opened.set(.stop)
        let data = try opened.set(.stopCopy)
        _ = try opened.read(data, exactly: 1000)
        try opened.set(.stop) // the producer may be blocked on a full pipe: it must stop anyway
        expectErrno(.noDevice) { _ = try opened.readOnce(data, 100) }
        try opened.kernel.close(data)
        #expect(opened.kernel.liveThreadCount == 0)
        #expect(opened.kernel.emulatorDescriptorCount == 3)
    }

    @Test(arguments: StateSources.all)
    func closingTheDeviceEndsSessionsAndReopenStartsRunning(kind: String) throws {
        let kernel = MockKernel()
        let opened = try Opened("mock:cl?state=2MiB\(kind)", kernel: kernel)
        let data = try opened.set(.preCopy)
        try kernel.close(opened.fd)
        expectErrno(.noDevice) { _ = try opened.readOnce(data, 100) }
        try kernel.close(data)
        let fd = try kernel.call(opened.group, R.getDeviceFD, UserBuffer(cString: opened.device.kernelName))
        #expect(opened.device.migrationState == MockDeviceState.running.rawValue)
        try kernel.close(fd)
        try kernel.close(opened.group)
        try kernel.close(opened.container)
        #expect(kernel.emulatorDescriptorCount == 0)
        #expect(kernel.liveThreadCount == 0)
    }
}
