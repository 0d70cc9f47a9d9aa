// PRE_COPY REINIT: the device offers MIG_PRECOPY_INFOv2 (feature 12, PROBE|SET), after which
// PRECOPY_INFO's flags are an output whose bit 0 reports new initial data; without the opt-in
// the flags are the caller's, untouched. A REINIT repeats the header and every block of the
// new state in the stream, and a target loads the new state.
import SystemPackage
import Testing
import VFIOMock
import VFIOSyscalls

extension Opened {
    /// VFIO_MIG_GET_PRECOPY_INFO passing `flags` in; returns all three fields as they came back.
    func precopyInfo(_ data: CInt, flags: UInt32) throws(Errno) -> (initial: UInt64, dirty: UInt64, flags: UInt32) {
        let b = UserBuffer(bytes: 24)
        b.set(0, u32: 24)
        b.set(4, u32: flags)
        try kernel.call(data, R.precopyInfo, b)
        return (b.u64(8), b.u64(16), b.u32(4))
    }

    /// SET MIG_PRECOPY_INFOv2.
    func enablePreCopyInfoV2() throws(Errno) { _ = try feature(R.set | 12, payload: 0) }

    /// Reads one chunk at a time until the temporary end of a pre-copy stream.
    func readUntilDrained(_ data: CInt, chunk: Int = 64 << 10) throws(Errno) -> [UInt8] {
        var out: [UInt8] = []
        while let bytes = try readUnlessDrained(data, chunk) { out += bytes }
        return out
    }
}

@Suite struct MockReinitTests {
    static let record = 32 + (64 << 10)
    static let initial256KiB = UInt64(64 + 4 * record)

    @Test func precopyInfoV2IsASetOnlyFeatureOfPreCopyDevices() throws {
        let opened = try Opened("mock:v2?state=64KiB")
        defer { try? opened.close() }
        #expect(try opened.feature(R.probe | R.set | 12, payload: 0).u32(0) == 8)
        try opened.enablePreCopyInfoV2()
        expectErrno(.invalidArgument) { _ = try opened.feature(R.get | 12, payload: 0) }
        expectErrno(.invalidArgument) { _ = try opened.feature(R.probe | R.get | 12, payload: 0) }

        for (spec, errno) in [("mock:np?flags=stop-copy,p2p", Errno.noIoctl), ("mock:nm?flags=none", .noIoctl),
                              ("mock:old?precopy-info-v2=no", .noIoctl), ("mock:oldm?precopy-info-v2=no&mdev-type=t", .invalidArgument)] {
            let other = try Opened(spec)
            defer { try? other.close() }
            expectErrno(errno) { _ = try other.feature(R.probe | R.set | 12, payload: 0) }
        }
    }

    @Test(arguments: StateSources.all)
    func withoutTheOptInTheCallersFlagsComeBackUntouched(kind: String) throws {
        let opened = try Opened("mock:echo?state=256KiB&dirty-rate=0\(kind)")
        defer { try? opened.close() }
        let data = try opened.set(.preCopy)
        #expect(try opened.precopyInfo(data, flags: 0xA5A5_0000).flags == 0xA5A5_0000)
        #expect(opened.device.reinitialize())
        let info = try opened.precopyInfo(data, flags: 0xA5A5_0000)
        #expect(info.flags == 0xA5A5_0000)
        #expect(info.initial >= Self.initial256KiB) // the new initial data is there all the same
        try opened.set(.running)
        try opened.kernel.close(data)
    }

    @Test(arguments: StateSources.all)
    func reinitRestartsTheInitialDataAndIsReportedOnce(kind: String) throws {
        let kernel = MockKernel()
        let source = try Opened("mock:ri?state=256KiB&dirty-rate=0\(kind)", kernel: kernel)
        let target = try Opened("mock:rt?state=256KiB\(kind)", kernel: kernel)
        try source.enablePreCopyInfoV2()
        let data = try source.set(.preCopy)
        // Opted in: flags are an output, so what the caller passed is cleared.
        #expect(try source.precopyInfo(data, flags: 0xFFFF_FFFF) == (Self.initial256KiB, 0, 0))
        var stream = try source.read(data, exactly: 100_000)
        let before = source.device.stateDigest
        #expect(source.device.reinitialize())
        #expect(source.device.stateDigest != before)

        let info = try source.precopyInfo(data, flags: 0)
        #expect(info.flags == 1)
        #expect(info.dirty == 0)
        #expect(info.initial >= Self.initial256KiB)
        if kind.contains("fast") {
            // Served piece by piece: header and two records were scheduled when the REINIT came.
            #expect(info.initial == UInt64(64 + 2 * Self.record - 100_000) + Self.initial256KiB)
        }
        #expect(try source.precopyInfo(data, flags: 0).flags == 0) // reported once
        stream += try source.readUntilDrained(data)
        #expect(try source.precopyInfo(data, flags: 0) == (0, 0, 0))
        #expect(stream.count >= 100_000 + Int(Self.initial256KiB))

        try source.set(.stopCopy)
        stream += try kernel.readAll(data)
        try source.set(.stop)
        try kernel.close(data)
        try target.load(stream, chunk: 5000)
        #expect(target.device.stateDigest == source.device.stateDigest)
        try source.close()
        try target.close()
        #expect(kernel.emulatorDescriptorCount == 0)
        #expect(kernel.liveThreadCount == 0)
    }

    @Test(arguments: StateSources.all)
    func reinitAfterFiresOncePerSession(kind: String) throws {
        let kernel = MockKernel()
        let source = try Opened("mock:ra?state=256KiB&dirty-rate=0&reinit-after=64KiB\(kind)", kernel: kernel)
        let target = try Opened("mock:rb?state=256KiB\(kind)", kernel: kernel)
        try source.enablePreCopyInfoV2()
        for round in 0..<2 {
            let data = try source.set(.preCopy)
            let first = try source.read(data, exactly: 64 << 10)
            #expect(try source.precopyInfo(data, flags: 0).flags == 1, "round \(round)")
            let rest = try source.readUntilDrained(data)
            #expect(try source.precopyInfo(data, flags: 0).flags == 0, "round \(round)")
            #expect(first.count + rest.count >= (64 << 10) + Int(Self.initial256KiB))
            if round == 0 {
                try source.set(.running) // abort; the next session REINITs again
                try kernel.close(data)
                continue
            }
            try source.set(.stopCopy)
            let stream = first + rest + (try kernel.readAll(data))
            try source.set(.stop)
            try kernel.close(data)
            try target.load(stream)
            #expect(target.device.stateDigest == source.device.stateDigest)
        }
        try source.close()
        try target.close()
    }

    @Test func theOptInEndsWithTheLastClose() throws {
        let kernel = MockKernel()
        let opened = try Opened("mock:oc?state=64KiB", kernel: kernel)
        try opened.enablePreCopyInfoV2()
        try kernel.close(opened.fd)
        let fd = try kernel.call(opened.group, R.getDeviceFD, UserBuffer(cString: opened.device.kernelName))
        let reopened = Opened(kernel: kernel, device: opened.device, container: opened.container, group: opened.group, fd: fd)
        let data = try reopened.set(.preCopy)
        #expect(try reopened.precopyInfo(data, flags: 0x77).flags == 0x77)
        try reopened.set(.running)
        try kernel.close(data)
        try reopened.close()
        #expect(kernel.emulatorDescriptorCount == 0)
    }

    @Test func onlyARunningDeviceReinitializes() throws {
        let opened = try Opened("mock:st?state=64KiB")
        defer { try? opened.close() }
        try opened.set(.stop)
        let digest = opened.device.stateDigest
        #expect(!opened.device.reinitialize())
        let data = try opened.set(.stopCopy)
        #expect(!opened.device.reinitialize())
        #expect(opened.device.stateDigest == digest)
        #expect(try opened.kernel.readAll(data).count == 64 + Self.record + 32)
        try opened.set(.stop)
        try opened.kernel.close(data)
    }
}
