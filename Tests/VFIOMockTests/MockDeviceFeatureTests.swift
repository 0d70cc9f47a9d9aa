// VFIO_DEVICE_FEATURE validation order, migration features, DMA logging, and the vfio-pci
// device ioctls (info, regions, IRQs, region I/O).
import SystemPackage
import Testing
import VFIOMock
import VFIOSyscalls

@Suite struct MockDeviceFeatureTests {
    @Test func featureHeaderIsValidatedInKernelOrder() throws {
        let opened = try Opened("mock:f0")
        defer { try? opened.close() }
        expectErrno(.invalidArgument) { _ = try opened.feature(R.get | 1, payload: 8, argsz: 7) }
        expectErrno(.invalidArgument) { _ = try opened.feature(R.get | 1 | 0x80000, payload: 8) } // unknown flag
        expectErrno(.invalidArgument) { _ = try opened.feature(R.get | R.set | 2, payload: 8) }
        expectErrno(.invalidArgument) { _ = try opened.feature(R.set | 1, payload: 8) } // MIGRATION is GET-only
        expectErrno(.invalidArgument) { _ = try opened.feature(1, payload: 8) } // neither GET nor SET
        expectErrno(.invalidArgument) { _ = try opened.feature(R.get | 1, payload: 4) } // payload too small
        // PROBE answers "supported" without a payload, also for GET|SET together.
        _ = try opened.feature(R.probe | R.get | 1, payload: 0)
        _ = try opened.feature(R.probe | R.get | R.set | 2, payload: 0)
        expectErrno(.invalidArgument) { _ = try opened.feature(R.probe | R.set | 1, payload: 0) }
        let migration = try opened.feature(R.get | 1, payload: 8)
        #expect(migration.u64(8) == 0x7)
        // Unknown feature indexes reach vfio-pci, which answers ENOTTY.
        expectErrno(.noIoctl) { _ = try opened.feature(R.get | 42, payload: 8) }
    }

    @Test func deviceWithoutMigrationAnswersENOTTY() throws {
        let opened = try Opened("mock:f1?flags=none&dma-logging=no")
        defer { try? opened.close() }
        for index: UInt32 in [1, 2, 9] {
            expectErrno(.noIoctl) { _ = try opened.feature(R.probe | R.get | index, payload: 0) }
        }
        for index: UInt32 in [6, 7, 8] {
            expectErrno(.noIoctl) { _ = try opened.feature(R.probe | R.set | index, payload: 0) }
        }
    }

    @Test func mdevDeviceLeavesUnknownFeaturesAtEINVAL() throws {
        let opened = try Opened("mock:f2?mdev-type=mock-1&data-size=no")
        defer { try? opened.close() }
        expectErrno(.invalidArgument) { _ = try opened.feature(R.get | 42, payload: 8) }
        // Without MIG_DATA_SIZE (a 6.1 kernel) index 9 is an unknown feature too.
        expectErrno(.invalidArgument) { _ = try opened.feature(R.get | 9, payload: 8) }
    }

    @Test func migDataSizeEstimatesTheStopCopyStream() throws {
        let opened = try Opened("mock:f3?state=1MiB&flags=stop-copy")
        defer { try? opened.close() }
        let size = try opened.feature(R.get | 9, payload: 8).u64(8)
        let stream = try opened.saveStopCopy()
        #expect(size == UInt64(stream.count))
        expectErrno(.invalidArgument) { _ = try opened.feature(R.set | 9, payload: 8) }
    }

    @Test func failedSetCopiesBackTheRequestedStateAndNoFD() throws {
        let opened = try Opened("mock:f4?fail-arc=RUNNING>RUNNING_P2P:EIO")
        defer { try? opened.close() }
        let buffer = UserBuffer(bytes: 16)
        buffer.set(0, u32: 16); buffer.set(4, u32: R.set | 2)
        buffer.set(8, u32: MockDeviceState.stopCopy.rawValue); buffer.set(12, i32: 1234)
        expectErrno(.ioError) { try opened.kernel.call(opened.fd, R.feature, buffer) }
        #expect(buffer.u32(8) == MockDeviceState.stopCopy.rawValue)
        #expect(buffer.i32(12) == -1)
        #expect(try opened.state() == .running)
        let get = try opened.feature(R.get | 2, payload: 8) { $0.set(12, i32: 77) }
        #expect(get.i32(12) == -1)
    }

    @Test func dmaLoggingStartChecksRanges() throws {
        let opened = try Opened("mock:l0")
        defer { try? opened.close() }
        func start(pageSize: UInt64, _ ranges: [(UInt64, UInt64)], count: UInt32? = nil) throws(Errno) -> UInt64 {
            let control = UserBuffer(bytes: 32), list = UserBuffer(bytes: max(16, ranges.count * 16))
            control.set(0, u32: 32); control.set(4, u32: R.set | 6)
            control.set(8, u64: pageSize); control.set(16, u32: count ?? UInt32(ranges.count))
            for (i, r) in ranges.enumerated() { list.set(i * 16, u64: r.0); list.set(i * 16 + 8, u64: r.1) }
            try opened.kernel.call(opened.fd, R.feature, control, also: [list]) { (a, m) throws(Errno) in
                try m.store(UInt64(a[1]), at: a[0] + 24)
            }
            return control.u64(8)
        }
        expectErrno(.invalidArgument) { _ = try start(pageSize: 4096, []) }
        expectErrno(.argListTooLong) { _ = try start(pageSize: 4096, [(0, 4096)], count: 257) }
        expectErrno(.invalidArgument) { _ = try start(pageSize: 4096, [(0x800, 4096)]) }
        expectErrno(.invalidArgument) { _ = try start(pageSize: 4096, [(0, 0x2000), (0x1000, 0x1000)]) }
        expectErrno(.overflow) { _ = try start(pageSize: 4096, [(0xFFFF_FFFF_FFFF_F000, 0x2000)]) }
        expectErrno(.badAddress) { _ = try start(pageSize: 4096, [(0, 4096)], count: 2) } // list too short
        #expect(!opened.device.isDMALoggingActive)
        #expect(try start(pageSize: 4096, [(0x10_0000, 0x10000), (0x40_0000, 0x1000)]) == 4096)
        expectErrno(.invalidArgument) { _ = try start(pageSize: 4096, [(0, 4096)]) } // one session at a time
        _ = try opened.feature(R.set | 7, payload: 0)
        #expect(!opened.device.isDMALoggingActive)
        // The driver picks its granularity: the next power of two ≥ the hint, at least 4 KiB.
        #expect(try start(pageSize: 5000, [(0, 0x10000)]) == 8192)
    }

    @Test func dmaLoggingReportsAndClearsWrittenPages() throws {
        let opened = try Opened("mock:l1")
        defer { try? opened.close() }
        try opened.map(iova: 0x10_0000, size: 0x20000)
        let control = UserBuffer(bytes: 32), list = UserBuffer(bytes: 16)
        control.set(0, u32: 32); control.set(4, u32: R.set | 6)
        control.set(8, u64: 4096); control.set(16, u32: 1)
        list.set(0, u64: 0x10_0000); list.set(8, u64: 0x10000) // only the first 64 KiB is logged
        try opened.kernel.call(opened.fd, R.feature, control, also: [list]) { (a, m) throws(Errno) in
            try m.store(UInt64(a[1]), at: a[0] + 24)
        }
        func report(pageSize: UInt64 = 4096, length: UInt64 = 0x10000, bitmapBytes: Int = 8) throws(Errno) -> UserBuffer {
            let r = UserBuffer(bytes: 40), bitmap = UserBuffer(bytes: bitmapBytes)
            r.set(0, u32: 40); r.set(4, u32: R.get | 8)
            r.set(8, u64: 0x10_0000); r.set(16, u64: length); r.set(24, u64: pageSize)
            try opened.kernel.call(opened.fd, R.feature, r, also: [bitmap]) { (a, m) throws(Errno) in
                try m.store(UInt64(a[1]), at: a[0] + 32)
            }
            return bitmap
        }
        try opened.device.dmaWrite(iova: 0x10_2000, length: 0x1001)
        try opened.device.dmaWrite(iova: 0x11_8000, length: 0x1000) // outside the logged range
        expectErrno(.invalidArgument) { _ = try report(pageSize: 2048) }
        expectErrno(.invalidArgument) { _ = try report(pageSize: 12288) }
        expectErrno(.badAddress) { _ = try report(length: 0x1000 * 65, bitmapBytes: 8) } // needs 16 bytes
        #expect(try report(pageSize: 8192).setBits == [1]) // coarser report page
        try opened.device.dmaWrite(iova: 0x10_2000, length: 0x1001)
        #expect(try report().setBits == [2, 3])
        #expect(try report().setBits.isEmpty) // reading clears
        _ = try opened.feature(R.set | 7, payload: 0)
        expectErrno(.invalidArgument) { _ = try report() } // not started
    }

    @Test func regionsIRQsAndConfigSpace() throws {
        let opened = try Opened("mock:r0?vendor=0x15b3&device=0x101e&bar0=64KiB")
        defer { try? opened.close() }
        func region(_ index: UInt32) throws(Errno) -> UserBuffer {
            let b = UserBuffer(bytes: 32)
            b.set(0, u32: 32); b.set(8, u32: index)
            try opened.kernel.call(opened.fd, R.regionInfo, b)
            return b
        }
        let bar0 = try region(0)
        #expect(bar0.u32(4) == 0b11 && bar0.u64(16) == 0x10000 && bar0.u64(24) == 0)
        let config = try region(7)
        #expect(config.u64(16) == 256 && config.u64(24) == 7 << 40)
        #expect(try region(3).u64(16) == 0)
        expectErrno(.invalidArgument) { _ = try region(8) } // no VGA
        expectErrno(.invalidArgument) { _ = try region(9) }
        let short = UserBuffer(bytes: 32)
        short.set(0, u32: 16)
        expectErrno(.invalidArgument) { try opened.kernel.call(opened.fd, R.regionInfo, short) }

        var ids = [UInt8](repeating: 0, count: 4)
        #expect(try opened.kernel.preadBytes(opened.fd, into: &ids, offset: 7 << 40) == 4)
        #expect(ids == [0xB3, 0x15, 0x1E, 0x10])
        // Config reads stop at the end of config space; vendor id is read-only.
        var tail = [UInt8](repeating: 0, count: 16)
        #expect(try opened.kernel.preadBytes(opened.fd, into: &tail, offset: (7 << 40) + 250) == 6)
        #expect(try opened.kernel.pwriteBytes(opened.fd, from: [0, 0], offset: 7 << 40) == 2)
        #expect(try opened.kernel.preadBytes(opened.fd, into: &ids, offset: 7 << 40) == 4 && ids[0] == 0xB3)
        // BAR0 is backed memory.
        #expect(try opened.kernel.pwriteBytes(opened.fd, from: [1, 2, 3], offset: 0xFFFE) == 2)
        var bar = [UInt8](repeating: 9, count: 3)
        #expect(try opened.kernel.preadBytes(opened.fd, into: &bar, offset: 0xFFFD) == 3)
        #expect(bar == [0, 1, 2])
        expectErrno(.invalidArgument) { _ = try opened.kernel.preadBytes(opened.fd, into: &bar, offset: 0x10000) }
        expectErrno(.invalidArgument) { _ = try opened.kernel.preadBytes(opened.fd, into: &bar, offset: 2 << 40) }

        let irq = UserBuffer(bytes: 16)
        irq.set(0, u32: 16); irq.set(8, u32: 2)
        try opened.kernel.call(opened.fd, R.irqInfo, irq)
        #expect(irq.u32(4) & 1 == 1 && irq.u32(12) > 0)
        irq.set(8, u32: 5)
        expectErrno(.invalidArgument) { try opened.kernel.call(opened.fd, R.irqInfo, irq) }
        // SET_IRQS: DATA_NONE | ACTION_TRIGGER on MSI vector 0 is accepted; past the count is not.
        let set = UserBuffer(bytes: 20)
        set.set(0, u32: 20); set.set(4, u32: 1 | 1 << 5); set.set(8, u32: 1); set.set(16, u32: 1)
        try opened.kernel.call(opened.fd, R.setIRQs, set)
        set.set(16, u32: 2)
        expectErrno(.invalidArgument) { try opened.kernel.call(opened.fd, R.setIRQs, set) }
        // Container and group fds have no read method; data fds are not seekable.
        expectErrno(.invalidArgument) { _ = try opened.kernel.preadBytes(opened.container, into: &bar, offset: 0) }
    }
}

extension KernelInterface {
    func preadBytes(_ fd: CInt, into bytes: inout [UInt8], offset: Int64) throws(Errno) -> Int {
        let buffer = UserBuffer(bytes: bytes.count)
        let n = try withUserMemory([buffer]) { (a, _) throws(Errno) -> Int in
            try pread(fd, into: UserRegion(address: a[0], count: buffer.byteCount, writable: true), offset: offset)
        }
        for i in 0..<n { bytes[i] = UInt8(truncatingIfNeeded: buffer.words[i / 8] >> (8 * UInt64(i % 8))) }
        return n
    }

    func pwriteBytes(_ fd: CInt, from bytes: [UInt8], offset: Int64) throws(Errno) -> Int {
        let buffer = UserBuffer(bytes: bytes.count)
        for (i, b) in bytes.enumerated() { buffer.words[i / 8] |= UInt64(b) << (8 * UInt64(i % 8)) }
        return try withUserMemory([buffer]) { (a, _) throws(Errno) -> Int in
            try pwrite(fd, from: UserRegion(address: a[0], count: buffer.byteCount, writable: false), offset: offset)
        }
    }
}
