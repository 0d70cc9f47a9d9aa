// Container ioctls: request number, fd kind, argument encoding and decoded results.
import SystemPackage
import Testing
import VFIOSyscalls

@Suite struct ContainerIoctlTests {
    @Test func openIssuesOneOpenOfTheContainerNode() throws {
        let kernel = RecordingKernel()
        let container = try ContainerFD.open(kernel: kernel)
        let opens = kernel.calls.filter { $0.syscall == .open }
        #expect(opens.count == 1)
        #expect(opens.first?.path == "/dev/vfio/vfio")
        #expect(kernel.kind(of: container.rawValue) == .container)
        #expect(container.label == "/dev/vfio/vfio")
        #expect(container.object == "container /dev/vfio/vfio")
    }

    @Test func openFailureNamesTheContainerAndErrno() {
        let kernel = RecordingKernel()
        kernel.script(.open, .fail(.noSuchFileOrDirectory))
        let error = #expect(throws: SyscallError.self) { _ = try ContainerFD.open(kernel: kernel) }
        #expect(error?.operation == "open")
        #expect(error?.object == "container /dev/vfio/vfio")
        #expect(error?.description.contains("ENOENT") == true)
    }

    @Test func apiVersionHasNoArgumentAndReturnsTheIoctlValue() throws {
        let kernel = RecordingKernel()
        let container = try ContainerFD.open(kernel: kernel)
        kernel.onIoctl(Req.getAPIVersion, .answer { _ throws(Errno) in 0 })
        #expect(try container.apiVersion() == 0)
        kernel.onIoctl(Req.getAPIVersion, .answer { _ throws(Errno) in 7 })
        #expect(try container.apiVersion() == 7)
        let calls = kernel.ioctls
        #expect(calls.count == 2)
        for call in calls {
            #expect(call.request == 0x3B64)
            #expect(call.fd == container.rawValue)
            #expect(call.kind == .container)
            #expect(call.noArgument)
        }
    }

    @Test(arguments: [(3 as UInt32, 1 as Int, true), (1, 0, false), (9, 1, true), (10, 0, false)])
    func checkExtensionPassesTheIdByValue(id: UInt32, kernelSays: Int, expected: Bool) throws {
        let kernel = RecordingKernel()
        let container = try ContainerFD.open(kernel: kernel)
        kernel.onIoctl(Req.checkExtension, on: .container, .answer { _ throws(Errno) in kernelSays })
        #expect(try container.checkExtension(id) == expected)
        let call = try #require(kernel.lastIoctl(0x3B65))
        #expect(call.kind == .container)
        #expect(call.value == UInt(id))
        #expect(call.address == nil)
        #expect(kernel.pendingScripts == 0)
    }

    @Test func setIOMMUPassesTheTypeByValue() throws {
        let kernel = RecordingKernel()
        let container = try ContainerFD.open(kernel: kernel)
        try container.setIOMMU(3)
        let call = try #require(kernel.ioctls.only)
        #expect(call.request == 0x3B66)
        #expect(call.kind == .container)
        #expect(call.value == 3)
    }

    @Test func setIOMMUFailureNamesTheTypeAndErrno() throws {
        let kernel = RecordingKernel()
        let container = try ContainerFD.open(kernel: kernel)
        kernel.onIoctl(Req.setIOMMU, .fail(.invalidArgument))
        let error = #expect(throws: SyscallError.self) { try container.setIOMMU(3) }
        #expect(error?.description.hasPrefix("VFIO_SET_IOMMU(3) on container /dev/vfio/vfio failed: EINVAL") == true)
    }

    @Test func mapDMAEncodesTheMapStruct() throws {
        let kernel = RecordingKernel()
        let container = try ContainerFD.open(kernel: kernel)
        try container.mapDMA(vaddr: 0x7F00_0000_0000, iova: 0x10_0000, size: 0x20_0000, access: .readWrite)
        try container.mapDMA(vaddr: 0x7F00_0040_0000, iova: 0x40_0000, size: 0x1000, access: .read)
        try container.mapDMA(vaddr: 0x7F00_0080_0000, iova: 0x80_0000, size: 0x1000, access: .write)
        let calls = kernel.ioctls
        #expect(calls.count == 3)
        for call in calls {
            #expect(call.request == 0x3B71)
            #expect(call.kind == .container)
            #expect(call.argumentBytes.count == 32)
            #expect(call.argumentBytes.u32(0) == 32) // argsz
        }
        let bytes = calls[0].argumentBytes
        #expect(bytes.u32(4) == 0x3) // READ | WRITE
        #expect(bytes.u64(8) == 0x7F00_0000_0000)
        #expect(bytes.u64(16) == 0x10_0000)
        #expect(bytes.u64(24) == 0x20_0000)
        #expect(calls[1].argumentBytes.u32(4) == 0x1)
        #expect(calls[2].argumentBytes.u32(4) == 0x2)
    }

    @Test func mapDMAErrorNamesTheRangeAndErrno() throws {
        let kernel = RecordingKernel()
        let container = try ContainerFD.open(kernel: kernel)
        kernel.onIoctl(Req.iommuMapDMA, .fail(.fileExists))
        let error = #expect(throws: SyscallError.self) {
            try container.mapDMA(vaddr: 0x1000, iova: 0x10_0000, size: 0x2000, access: .readWrite)
        }
        #expect(error?.errno == .fileExists)
        #expect(error?.operation == "VFIO_IOMMU_MAP_DMA[iova 0x100000 size 0x2000]")
        #expect(error?.description.contains("EEXIST") == true)
    }

    @Test func unmapDMAEncodesAndDecodesTheUnmappedSize() throws {
        let kernel = RecordingKernel()
        let container = try ContainerFD.open(kernel: kernel)
        kernel.onIoctl(Req.iommuUnmapDMA, on: .container, .answer { inv throws(Errno) in
            // The kernel rewrites size with what it actually unmapped.
            try inv.setField(UInt64(0x1000), at: 16)
            return 0
        })
        let unmapped = try container.unmapDMA(iova: 0x10_0000, size: 0x4000)
        #expect(unmapped == 0x1000)
        let call = try #require(kernel.ioctls.only)
        #expect(call.request == 0x3B72)
        #expect(call.kind == .container)
        let bytes = call.argumentBytes
        #expect(bytes.count == 24)
        #expect(bytes.u32(0) == 24)
        #expect(bytes.u32(4) == 0)
        #expect(bytes.u64(8) == 0x10_0000)
        #expect(bytes.u64(16) == 0x4000)
    }

    @Test func unmapDMAOfAHoleReturnsZero() throws {
        let kernel = RecordingKernel()
        let container = try ContainerFD.open(kernel: kernel)
        kernel.onIoctl(Req.iommuUnmapDMA, .answer { inv throws(Errno) in
            try inv.setField(UInt64(0), at: 16)
            return 0
        })
        #expect(try container.unmapDMA(iova: 0x10_0000, size: 0x4000) == 0)
    }

    @Test func unmapAllSetsFlagAllWithZeroRange() throws {
        let kernel = RecordingKernel()
        let container = try ContainerFD.open(kernel: kernel)
        kernel.onIoctl(Req.iommuUnmapDMA, .answer { inv throws(Errno) in
            try inv.setField(UInt64(0x30_0000), at: 16)
            return 0
        })
        #expect(try container.unmapAllDMA() == 0x30_0000)
        let bytes = try #require(kernel.ioctls.only).argumentBytes
        #expect(bytes.u32(0) == 24)
        #expect(bytes.u32(4) == 0x2) // VFIO_DMA_UNMAP_FLAG_ALL
        #expect(bytes.u64(8) == 0)
        #expect(bytes.u64(16) == 0)
    }

    @Test func unmapWithDirtyBitmapCarriesAReachableZeroedBitmap() throws {
        let kernel = RecordingKernel()
        let container = try ContainerFD.open(kernel: kernel)
        var sawZeroed = false
        kernel.onIoctl(Req.iommuUnmapDMA, on: .container, .answer { inv throws(Errno) in
            let pointer = try inv.field(UInt64.self, at: 40)
            let bitmapBytes = try inv.field(UInt64.self, at: 32)
            let old = try inv.memory.copyIn(from: UInt(pointer), count: Int(bitmapBytes))
            sawZeroed = old.allSatisfy { $0 == 0 }
            // Pages 0, 5 and 64 of the range were dirty.
            try inv.memory.store(UInt64(1 << 0 | 1 << 5), at: UInt(pointer))
            try inv.memory.store(UInt64(1), at: UInt(pointer) + 8)
            try inv.setField(UInt64(0x80_000), at: 16)
            return 0
        })
        var bitmap: [UInt64] = [.max, .max]
        let unmapped = try container.unmapDMA(iova: 0x100_0000, size: 0x80_000, pageSize: 4096, dirtyBitmap: &bitmap)
        #expect(unmapped == 0x80_000)
        #expect(sawZeroed)
        #expect(bitmap == [0b10_0001, 1])

        let call = try #require(kernel.ioctls.only)
        #expect(call.request == 0x3B72)
        #expect(call.kind == .container)
        let bytes = call.argumentBytes
        #expect(bytes.count == 48)
        #expect(bytes.u32(0) == 48) // unmap struct (24) + vfio_bitmap (24)
        #expect(bytes.u32(4) == 0x1) // GET_DIRTY_BITMAP
        #expect(bytes.u64(8) == 0x100_0000)
        #expect(bytes.u64(16) == 0x80_000)
        #expect(bytes.u64(24) == 4096) // bitmap.pgsize
        #expect(bytes.u64(32) == 16) // bitmap.size in bytes
        let pointer = try #require(bytes.u64(40))
        #expect(call.regions[UInt(pointer)]?.count == 16)
        #expect(call.writableRegions.contains(UInt(pointer)))
    }

    @Test(arguments: [(true, 0x1 as UInt32, "START"), (false, 0x2, "STOP")])
    func dirtyTrackingEncodesStartOrStop(enabled: Bool, flag: UInt32, word: String) throws {
        let kernel = RecordingKernel()
        let container = try ContainerFD.open(kernel: kernel)
        if enabled { try container.startDirtyTracking() } else { try container.stopDirtyTracking() }
        let call = try #require(kernel.ioctls.only)
        #expect(call.request == 0x3B75)
        #expect(call.kind == .container)
        #expect(call.argumentBytes.count == 8)
        #expect(call.argumentBytes.u32(0) == 8)
        #expect(call.argumentBytes.u32(4) == flag)

        kernel.onIoctl(Req.iommuDirtyPages, on: .container, .fail(.permissionDenied))
        let error = #expect(throws: SyscallError.self) {
            if enabled { try container.startDirtyTracking() } else { try container.stopDirtyTracking() }
        }
        #expect(error?.operation == "VFIO_IOMMU_DIRTY_PAGES[\(word)]")
        #expect(error?.description.contains("EACCES") == true)
    }

    @Test func dirtyBitmapEncodesGetBitmapAndDecodesBits() throws {
        let kernel = RecordingKernel()
        let container = try ContainerFD.open(kernel: kernel)
        var sawZeroed = false
        kernel.onIoctl(Req.iommuDirtyPages, on: .container, .answer { inv throws(Errno) in
            let pointer = UInt(try inv.field(UInt64.self, at: 40))
            let size = Int(try inv.field(UInt64.self, at: 32))
            sawZeroed = try inv.memory.copyIn(from: pointer, count: size).allSatisfy { $0 == 0 }
            try inv.memory.store(UInt64(1) << 63, at: pointer)
            try inv.memory.store(UInt64(0b110), at: pointer + 16)
            return 0
        })
        var bitmap = [UInt64](repeating: 0xDEAD_BEEF, count: 3)
        try container.dirtyBitmap(iova: 0x4000_0000, size: 192 * 4096, pageSize: 4096, into: &bitmap)
        #expect(sawZeroed)
        #expect(bitmap == [1 << 63, 0, 0b110])

        let call = try #require(kernel.ioctls.only)
        #expect(call.request == 0x3B75)
        #expect(call.kind == .container)
        let bytes = call.argumentBytes
        #expect(bytes.count == 48)
        #expect(bytes.u32(0) == 48) // header (8) + dirty_bitmap_get (40), not the bitmap itself
        #expect(bytes.u32(4) == 0x4) // GET_BITMAP
        #expect(bytes.u64(8) == 0x4000_0000) // iova
        #expect(bytes.u64(16) == 192 * 4096) // size
        #expect(bytes.u64(24) == 4096) // bitmap.pgsize
        #expect(bytes.u64(32) == 24) // bitmap.size
        let pointer = UInt(try #require(bytes.u64(40)))
        #expect(call.regions[pointer]?.count == 24)
        #expect(call.writableRegions.contains(pointer))
    }

    @Test func dirtyBitmapFailureNamesTheSubOperation() throws {
        let kernel = RecordingKernel()
        let container = try ContainerFD.open(kernel: kernel)
        kernel.onIoctl(Req.iommuDirtyPages, .fail(.invalidArgument))
        var bitmap = [UInt64](repeating: 0, count: 1)
        let error = #expect(throws: SyscallError.self) {
            try container.dirtyBitmap(iova: 0, size: 4096, pageSize: 4096, into: &bitmap)
        }
        #expect(error?.description.hasPrefix("VFIO_IOMMU_DIRTY_PAGES[GET_BITMAP] on container /dev/vfio/vfio failed: EINVAL") == true)
    }
}

extension Array {
    /// The single element, or nil when there are none or several.
    var only: Element? { count == 1 ? first : nil }
}
