// Containers, groups and the type1 IOMMU: the kernel's errno for each misuse, capability
// chains, DMA mapping rules and both dirty-tracking scopes.
import SystemPackage
import Testing
import VFIOMock

extension Opened {
    func map(iova: UInt64, size: UInt64, flags: UInt32 = 0b11, vaddr: UInt64 = 0x7000_0000_0000) throws(Errno) {
        let b = UserBuffer(bytes: 32)
        b.set(0, u32: 32); b.set(4, u32: flags)
        b.set(8, u64: vaddr); b.set(16, u64: iova); b.set(24, u64: size)
        try kernel.call(container, R.mapDMA, b)
    }

    /// UNMAP_DMA; returns the size the kernel reports unmapped.
    func unmap(iova: UInt64, size: UInt64, flags: UInt32 = 0) throws(Errno) -> UInt64 {
        let b = UserBuffer(bytes: 24)
        b.set(0, u32: 24); b.set(4, u32: flags)
        b.set(8, u64: iova); b.set(16, u64: size)
        try kernel.call(container, R.unmapDMA, b)
        return b.u64(16)
    }

    func dirty(_ flags: UInt32) throws(Errno) {
        let b = UserBuffer(bytes: 8)
        b.set(0, u32: 8); b.set(4, u32: flags)
        try kernel.call(container, R.dirtyPages, b)
    }

    /// DIRTY_PAGES GET_BITMAP over `[iova, iova + size)`; returns the bitmap.
    func dirtyBitmap(iova: UInt64, size: UInt64, pageSize: UInt64 = 4096, bitmapBytes: Int? = nil, argsz: UInt32 = 48) throws(Errno) -> UserBuffer {
        let bytes = bitmapBytes ?? Int((size / 4096 + 63) / 64 * 8)
        let b = UserBuffer(bytes: 48), bitmap = UserBuffer(bytes: bytes)
        b.set(0, u32: argsz); b.set(4, u32: 4)
        b.set(8, u64: iova); b.set(16, u64: size)
        b.set(24, u64: pageSize); b.set(32, u64: UInt64(bytes))
        try kernel.call(container, R.dirtyPages, b, also: [bitmap]) { (a, m) throws(Errno) in
            try m.store(UInt64(a[1]), at: a[0] + 40)
        }
        return bitmap
    }
}

@Suite struct MockContainerTests {
    @Test func groupOpenFollowsTheKernel() throws {
        let kernel = MockKernel()
        let device = try kernel.addDevice(spec: "mock:g0")
        expectErrno(.noSuchFileOrDirectory) { _ = try kernel.open("/dev/vfio/\(device.groupNumber + 100)", .readWrite) }
        expectErrno(.noSuchFileOrDirectory) { _ = try kernel.open("/dev/vfio/devices/vfio0", .readWrite) }
        expectErrno(.noSuchFileOrDirectory) { _ = try kernel.open("/dev/iommu", .readWrite) }
        let group = try kernel.open("/dev/vfio/\(device.groupNumber)", .readWrite)
        expectErrno(.resourceBusy) { _ = try kernel.open("/dev/vfio/\(device.groupNumber)", .readWrite) }
        try kernel.close(group)
        device.disappear()
        expectErrno(.noDevice) { _ = try kernel.open("/dev/vfio/\(device.groupNumber)", .readWrite) }
        #expect(kernel.emulatorDescriptorCount == 0)
    }

    @Test func setIOMMUNeedsAGroupAndASupportedTypeOnce() throws {
        let kernel = MockKernel()
        let device = try kernel.addDevice(spec: "mock:s0")
        let container = try kernel.open("/dev/vfio/vfio", .readWrite)
        expectErrno(.invalidArgument) { _ = try kernel.ioctl(container, R.setIOMMU, .value(3)) }
        // Before SET_IOMMU, the container answers nothing but the three base ioctls.
        expectErrno(.invalidArgument) { try kernel.call(container, R.iommuInfo, UserBuffer(bytes: 24)) }
        #expect(try kernel.ioctl(container, R.checkExtension, .value(1)) == 1)
        #expect(try kernel.ioctl(container, R.checkExtension, .value(9)) == 1) // UNMAP_ALL
        #expect(try kernel.ioctl(container, R.checkExtension, .value(10)) == 0) // UPDATE_VADDR needs an IOMMU
        #expect(try kernel.ioctl(container, R.checkExtension, .value(2)) == 0) // sPAPR
        #expect(try kernel.ioctl(container, R.checkExtension, .value(8)) == 0) // no-IOMMU mode off
        let group = try kernel.open("/dev/vfio/\(device.groupNumber)", .readWrite)
        let fdBuffer = UserBuffer(bytes: 4)
        fdBuffer.set(0, i32: container)
        try kernel.call(group, R.setContainer, fdBuffer)
        expectErrno(.noDevice) { _ = try kernel.ioctl(container, R.setIOMMU, .value(2)) }
        #expect(try kernel.ioctl(container, R.setIOMMU, .value(3)) == 0)
        expectErrno(.invalidArgument) { _ = try kernel.ioctl(container, R.setIOMMU, .value(3)) }
        #expect(try kernel.ioctl(container, R.checkExtension, .value(10)) == 1)
        // A device-only request on a container with type1 behind it.
        expectErrno(.noIoctl) { try kernel.call(container, R.deviceInfo, UserBuffer(bytes: 24)) }
        expectErrno(.noIoctl) { try kernel.call(container, R.precopyInfo, UserBuffer(bytes: 24)) }
        // A container request on a group fd.
        expectErrno(.noIoctl) { _ = try kernel.ioctl(group, R.getAPIVersion, .none) }
        try kernel.close(group)
        try kernel.close(container)
        #expect(kernel.emulatorDescriptorCount == 0)
    }

    @Test func groupStatusSetContainerAndDeviceFD() throws {
        let kernel = MockKernel()
        let device = try kernel.addDevice(spec: "mock:d0")
        let container = try kernel.open("/dev/vfio/vfio", .readWrite)
        let group = try kernel.open("/dev/vfio/\(device.groupNumber)", .readWrite)
        let status = UserBuffer(bytes: 8)
        status.set(0, u32: 4)
        expectErrno(.invalidArgument) { try kernel.call(group, R.groupStatus, status) }
        status.set(0, u32: 8)
        try kernel.call(group, R.groupStatus, status)
        #expect(status.u32(4) == 1) // VIABLE
        expectErrno(.invalidArgument) { try kernel.call(group, R.getDeviceFD, UserBuffer(cString: device.kernelName)) }

        let fdBuffer = UserBuffer(bytes: 4)
        fdBuffer.set(0, i32: -1)
        expectErrno(.badFileDescriptor) { try kernel.call(group, R.setContainer, fdBuffer) }
        fdBuffer.set(0, i32: group)
        expectErrno(.invalidArgument) { try kernel.call(group, R.setContainer, fdBuffer) }
        fdBuffer.set(0, i32: container)
        try kernel.call(group, R.setContainer, fdBuffer)
        expectErrno(.invalidArgument) { try kernel.call(group, R.setContainer, fdBuffer) }
        try kernel.call(group, R.groupStatus, status)
        #expect(status.u32(4) == 3) // VIABLE | CONTAINER_SET
        // The group is in a container, but the container has no IOMMU yet.
        expectErrno(.invalidArgument) { try kernel.call(group, R.getDeviceFD, UserBuffer(cString: device.kernelName)) }
        #expect(try kernel.ioctl(container, R.setIOMMU, .value(3)) == 0)
        expectErrno(.noDevice) { try kernel.call(group, R.getDeviceFD, UserBuffer(cString: "0000:ff:1f.7")) }
        expectErrno(.noDevice) { try kernel.call(group, R.getDeviceFD, UserBuffer(cString: device.name)) }
        expectErrno(.badAddress) { _ = try kernel.ioctl(group, R.getDeviceFD, .value(0)) }
        let fd = try kernel.call(group, R.getDeviceFD, UserBuffer(cString: device.kernelName))
        #expect(device.isOpen)

        // UNSET_CONTAINER waits for device fds; closing the group fd keeps the group busy.
        expectErrno(.resourceBusy) { _ = try kernel.ioctl(group, R.unsetContainer, .none) }
        try kernel.close(group)
        expectErrno(.resourceBusy) { _ = try kernel.open("/dev/vfio/\(device.groupNumber)", .readWrite) }
        let info = UserBuffer(bytes: 24)
        info.set(0, u32: 24)
        try kernel.call(fd, R.deviceInfo, info)
        try kernel.close(fd)
        #expect(!device.isOpen)
        // The group was released with its last device fd, and left the container, which lost its IOMMU.
        expectErrno(.invalidArgument) { try kernel.call(container, R.iommuInfo, info) }
        let again = try kernel.open("/dev/vfio/\(device.groupNumber)", .readWrite)
        try kernel.call(again, R.groupStatus, status)
        #expect(status.u32(4) == 1)
        expectErrno(.invalidArgument) { _ = try kernel.ioctl(again, R.unsetContainer, .none) }
        try kernel.close(again)
        try kernel.close(container)
        #expect(kernel.emulatorDescriptorCount == 0)
    }

    @Test func unsetContainerDropsTheIOMMUWithTheLastGroup() throws {
        let opened = try Opened("mock:u0")
        try opened.map(iova: 0x10_0000, size: 0x1000)
        try opened.kernel.close(opened.fd)
        #expect(try opened.kernel.ioctl(opened.group, R.unsetContainer, .none) == 0)
        expectErrno(.invalidArgument) { try opened.kernel.call(opened.container, R.iommuInfo, UserBuffer(bytes: 24)) }
        try opened.kernel.close(opened.group)
        try opened.kernel.close(opened.container)
        #expect(opened.kernel.emulatorDescriptorCount == 0)
    }

    @Test func iommuInfoReportsCapabilitiesOrTheSizeItNeeds() throws {
        let opened = try Opened("mock:i0")
        defer { try? opened.close() }
        let small = UserBuffer(bytes: 24)
        small.set(0, u32: 12)
        expectErrno(.invalidArgument) { try opened.kernel.call(opened.container, R.iommuInfo, small) }
        small.set(0, u32: 24)
        try opened.kernel.call(opened.container, R.iommuInfo, small)
        #expect(small.u32(4) == 0b11) // PGSIZES | CAPS
        #expect(small.u64(8) & 0xFFF == 0 && small.u64(8) & 0x1000 != 0)
        #expect(small.u32(16) == 0) // no room: no cap_offset
        let needed = Int(small.u32(0))
        #expect(needed > 24)

        try opened.map(iova: 0, size: 0x2000)
        let full = UserBuffer(bytes: needed)
        full.set(0, u32: UInt32(needed))
        try opened.kernel.call(opened.container, R.iommuInfo, full)
        #expect(full.u32(0) == UInt32(needed))
        // Walk the chain with unaligned reads, by id.
        func byte(_ i: Int) -> UInt64 { (full.words[i / 8] >> (8 * UInt64(i % 8))) & 0xFF }
        func field(_ offset: Int, _ size: Int) -> UInt64 { (0..<size).reduce(0) { $0 | byte(offset + $1) << (8 * UInt64($1)) } }
        var caps: [UInt64: Int] = [:]
        var next = Int(full.u32(16))
        #expect(next == 24)
        while next != 0 {
            caps[field(next, 2)] = next
            #expect(field(next + 2, 2) == 1)
            next = Int(field(next + 4, 4))
        }
        #expect(Set(caps.keys) == [1, 2, 3])
        let migration = caps[2]!, avail = caps[3]!, ranges = caps[1]!
        #expect(field(migration + 16, 8) == 4096)
        #expect(field(migration + 24, 8) == 256 << 20)
        #expect(field(avail + 8, 4) == 65534)
        #expect(field(ranges + 8, 4) == 2)
        #expect(field(ranges + 16, 8) == 0 && field(ranges + 24, 8) == 0xFEDF_FFFF)
        #expect(field(ranges + 32, 8) == 0xFEF0_0000 && field(ranges + 40, 8) == 0x7F_FFFF_FFFF)
    }

    @Test func mapAndUnmapFollowType1v2Rules() throws {
        let opened = try Opened("mock:m0")
        defer { try? opened.close() }
        expectErrno(.invalidArgument) { try opened.map(iova: 0x1800, size: 0x1000) } // unaligned
        expectErrno(.invalidArgument) { try opened.map(iova: 0x1000, size: 0) }
        expectErrno(.invalidArgument) { try opened.map(iova: 0x1000, size: 0x1000, flags: 0) } // no access
        expectErrno(.invalidArgument) { try opened.map(iova: 0xFEE0_0000, size: 0x1000) } // MSI window
        expectErrno(.invalidArgument) { try opened.map(iova: 0xFED0_0000, size: 0x20_0000) } // crosses into it
        let bad = UserBuffer(bytes: 32)
        bad.set(0, u32: 24)
        expectErrno(.invalidArgument) { try opened.kernel.call(opened.container, R.mapDMA, bad) }
        try opened.map(iova: 0x10_0000, size: 0x4000)
        try opened.map(iova: 0x20_0000, size: 0x2000)
        expectErrno(.fileExists) { try opened.map(iova: 0x10_2000, size: 0x4000) }

        expectErrno(.invalidArgument) { _ = try opened.unmap(iova: 0x10_1000, size: 0x1000) } // bisects
        expectErrno(.invalidArgument) { _ = try opened.unmap(iova: 0x10_0000, size: 0x2000) } // bisects
        #expect(try opened.unmap(iova: 0x30_0000, size: 0x1000) == 0) // a hole
        #expect(try opened.unmap(iova: 0x10_0000, size: 0x4000) == 0x4000)
        expectErrno(.invalidArgument) { _ = try opened.unmap(iova: 0x1000, size: 0, flags: 2) } // ALL needs 0/0
        try opened.map(iova: 0x40_0000, size: 0x1000)
        #expect(try opened.unmap(iova: 0, size: 0, flags: 2) == 0x3000)
        #expect(try opened.unmap(iova: 0, size: 0x1_0000_0000) == 0)
    }

    @Test func dmaEntriesRunOut() throws {
        let opened = try Opened("mock:n0")
        defer { try? opened.close() }
        for i in 0..<UInt64(65535) { try opened.map(iova: i * 0x1000, size: 0x1000) }
        expectErrno(.noSpace) { try opened.map(iova: 0x1_0000_0000, size: 0x1000) }
    }

    @Test func dirtyTrackingNeedsV2AndValidRequests() throws {
        let kernel = MockKernel()
        let device = try kernel.addDevice(spec: "mock:v1")
        let container = try kernel.open("/dev/vfio/vfio", .readWrite)
        let group = try kernel.open("/dev/vfio/\(device.groupNumber)", .readWrite)
        let fdBuffer = UserBuffer(bytes: 4)
        fdBuffer.set(0, i32: container)
        try kernel.call(group, R.setContainer, fdBuffer)
        #expect(try kernel.ioctl(container, R.setIOMMU, .value(1)) == 0)
        let start = UserBuffer(bytes: 8)
        start.set(0, u32: 8); start.set(4, u32: 1)
        expectErrno(.permissionDenied) { try kernel.call(container, R.dirtyPages, start) }
        try kernel.close(group)
        try kernel.close(container)

        let opened = try Opened("mock:v2")
        defer { try? opened.close() }
        try opened.map(iova: 0x10_0000, size: 0x10000)
        expectErrno(.invalidArgument) { try opened.dirty(0) }
        expectErrno(.invalidArgument) { try opened.dirty(0b11) }
        expectErrno(.invalidArgument) { _ = try opened.dirtyBitmap(iova: 0x10_0000, size: 0x10000) } // not started
        try opened.dirty(1)
        try opened.dirty(1) // START twice is fine
        expectErrno(.invalidArgument) { _ = try opened.dirtyBitmap(iova: 0x10_0000, size: 0x10000, argsz: 40) }
        expectErrno(.invalidArgument) { _ = try opened.dirtyBitmap(iova: 0x10_0000, size: 0x10000, pageSize: 8192) }
        expectErrno(.invalidArgument) { _ = try opened.dirtyBitmap(iova: 0x10_0000, size: 0x10000, pageSize: 0) }
        expectErrno(.invalidArgument) { _ = try opened.dirtyBitmap(iova: 0x10_0000, size: 0x10000 * 64 * 8 + 0x1000, bitmapBytes: 8) }
        expectErrno(.invalidArgument) { _ = try opened.dirtyBitmap(iova: 0x10_1000, size: 0x2000) } // bisects
        expectErrno(.invalidArgument) { _ = try opened.dirtyBitmap(iova: 0x10_0800, size: 0x10000) } // unaligned
        _ = try opened.dirtyBitmap(iova: 0x10_0000, size: 0x10000)
        try opened.dirty(2)
        try opened.dirty(2) // STOP twice is fine
        expectErrno(.invalidArgument) { _ = try opened.dirtyBitmap(iova: 0x10_0000, size: 0x10000) }
    }

    @Test func physicalDeviceGroupsMakeEveryMappedPageDirty() throws {
        let opened = try Opened("mock:p0")
        defer { try? opened.close() }
        try opened.map(iova: 0x10_0000, size: 0x4000)
        try opened.map(iova: 0x10_8000, size: 0x2000)
        try opened.dirty(1)
        for _ in 0..<2 { // every round, before any DMA
            let bitmap = try opened.dirtyBitmap(iova: 0x10_0000, size: 0x10000)
            #expect(bitmap.setBits == [0, 1, 2, 3, 8, 9])
        }
    }

    @Test func emulatedIOMMUGroupsReportExactlyTheWrittenPages() throws {
        let opened = try Opened("mock:md0?mdev-type=mock-2")
        defer { try? opened.close() }
        #expect(opened.device.kernelName.count == 36) // a UUID
        try opened.map(iova: 0x10_0000, size: 0x8000)
        try opened.map(iova: 0x20_0000, size: 0x4000, flags: 1) // read-only for the device
        try opened.dirty(1)
        #expect(try opened.dirtyBitmap(iova: 0x10_0000, size: 0x8000).setBits.isEmpty)
        try opened.device.dmaWrite(iova: 0x10_1800, length: 0x1000) // straddles pages 1 and 2
        try opened.device.dmaWrite(iova: 0x10_7000, length: 1)
        expectErrno(.invalidArgument) { try opened.device.dmaWrite(iova: 0x30_0000, length: 8) }
        expectErrno(.notPermitted) { try opened.device.dmaWrite(iova: 0x20_0000, length: 8) }
        #expect(try opened.dirtyBitmap(iova: 0x10_0000, size: 0x8000).setBits == [1, 2, 7])
        #expect(try opened.dirtyBitmap(iova: 0x10_0000, size: 0x8000).setBits.isEmpty) // GET clears
        // Unmap with the final harvest: bits relative to the unmap's iova.
        try opened.device.dmaWrite(iova: 0x10_3000, length: 0x2000)
        let unmap = UserBuffer(bytes: 48), bitmap = UserBuffer(bytes: 8)
        unmap.set(0, u32: 48); unmap.set(4, u32: 1)
        unmap.set(8, u64: 0x10_0000); unmap.set(16, u64: 0x8000)
        unmap.set(24, u64: 4096); unmap.set(32, u64: 8)
        try opened.kernel.call(opened.container, R.unmapDMA, unmap, also: [bitmap]) { (a, m) throws(Errno) in
            try m.store(UInt64(a[1]), at: a[0] + 40)
        }
        #expect(unmap.u64(16) == 0x8000)
        #expect(bitmap.setBits == [3, 4])
        unmap.set(4, u32: 1 | 2)
        expectErrno(.invalidArgument) { try opened.kernel.call(opened.container, R.unmapDMA, unmap) }
    }
}
