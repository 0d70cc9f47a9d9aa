// Containers, groups, devices, DMA mappings and type1 dirty tracking: the same checks on the
// mock and on a real kernel (edu through vfio-pci, and the test mdev).
import Testing
import VFIOCore
import VFIOKernel
import VFIOMigration
import VFIOMockDevices
import VFIOSyscalls

private let page: UInt64 = 4096

@Suite(.serialized) struct IOMMUConformanceTests {
    @Test(arguments: Targets.iommu)
    func containerGroupAndDeviceInfo(target: Targets.IOMMUTarget) throws {
        let device = try DeviceEnvironment.withMockDevices().open(target.spec)
        #expect(device.container.iommuType == VFIOContainer.type1v2)
        let status = try device.group.status()
        #expect(status.viable && status.containerSet)
        let info = try device.info()
        #expect(info.isPCI)
        #expect(info.regionCount >= 8)
        let config = try device.regionInfo(7)
        #expect(config.readable && config.size >= 256)
        let header = try device.readRegion(config, count: 4)
        #expect(header.count == 4)
        #expect(header != [0xFF, 0xFF, 0xFF, 0xFF])
    }

    @Test(arguments: Targets.iommu)
    func iommuInfoCarriesTheMigrationCapability(target: Targets.IOMMUTarget) throws {
        let device = try DeviceEnvironment.withMockDevices().open(target.spec)
        let info = try device.container.iommuInfo()
        // Only a hardware IOMMU domain has IOVA ranges; an mdev-only container has none
        // (the real kernel's answer, found by this suite in the guest).
        #expect(info.iovaRanges.isEmpty == target.preciseDirty, "\(info.iovaRanges)")
        #expect(info.iovaRanges.allSatisfy { $0.start <= $0.last })
        let migration = try #require(info.migration)
        #expect(migration.pageSizes & page == page)
        #expect(migration.maxDirtyBitmapBytes == 256 << 20)
        #expect((info.dmaAvailable ?? 0) > 0)
    }

    @Test(arguments: Targets.iommu)
    func mapAndUnmapDMA(target: Targets.IOMMUTarget) throws {
        let device = try DeviceEnvironment.withMockDevices().open(target.spec)
        let container = device.container
        let memory = DMAMemory(bytes: 16 * Int(page))
        let iova: UInt64 = 0x10_0000
        try container.map(memory, at: iova)
        do {
            try container.map(DMAMemory(bytes: Int(page)), at: iova + page)
            Issue.record("an overlapping mapping was accepted")
        } catch {
            #expect(error.errno == .fileExists, "\(error)")
        }
        #expect(try container.unmap(DMARange(iova: iova + 0x100_0000, length: page)) == 0) // a hole
        #expect(try container.unmap(DMARange(iova: iova, length: UInt64(memory.count))) == UInt64(memory.count))
    }

    /// Type1 tracking is precise only when every group in the container is an emulated-IOMMU
    /// (mdev) group; with a physical device the kernel reports every mapped page dirty.
    @Test(arguments: Targets.iommu)
    func type1DirtyBitmaps(target: Targets.IOMMUTarget) throws {
        let device = try DeviceEnvironment.withMockDevices().open(target.spec)
        let container = device.container
        let pages = 64
        let memory = DMAMemory(bytes: pages * Int(page))
        let iova: UInt64 = 0x20_0000
        try container.map(memory, at: iova)
        try container.startDirtyTracking()
        var bitmap = [UInt64](repeating: 0, count: 1)
        try container.dirtyBitmap(of: DMARange(iova: iova, length: UInt64(memory.count)), pageSize: page, into: &bitmap)
        if target.preciseDirty {
            #expect(bitmap[0] == 0, "no DMA yet, nothing dirty")
            try DMAWriter(device: device).write(iova: iova + 3 * page, length: 2 * page)
            try container.dirtyBitmap(of: DMARange(iova: iova, length: UInt64(memory.count)), pageSize: page, into: &bitmap)
            #expect(bitmap[0] == 0b11000, "pages 3 and 4, got \(String(bitmap[0], radix: 2))")
            try container.dirtyBitmap(of: DMARange(iova: iova, length: UInt64(memory.count)), pageSize: page, into: &bitmap)
            #expect(bitmap[0] == 0, "reading clears")
        } else {
            #expect(bitmap[0] == UInt64.max, "every mapped page is reported dirty")
        }
        // Unmap with the final bitmap harvest.
        var last = [UInt64](repeating: 0, count: 1)
        let unmapped = try container.unmap(DMARange(iova: iova, length: UInt64(memory.count)), pageSize: page, dirtyBitmap: &last)
        #expect(unmapped == UInt64(memory.count))
        try container.stopDirtyTracking()
    }

    /// Device DMA logging: only DMA writes are logged, bits are relative to the report's IOVA,
    /// and a report clears what it returned. Kernels built without IOMMUFD_DRIVER answer the
    /// report with EOPNOTSUPP (Debian's 6.12), which is accepted as "not available here".
    @Test(arguments: Targets.iommu)
    func deviceDMALogging(target: Targets.IOMMUTarget) throws {
        let device = try DeviceEnvironment.withMockDevices().open(target.spec)
        let probed = try device.supports(.dmaLoggingStart, for: .set)
        guard target.migratable else {
            #expect(!probed, "a device without migration offers no DMA logging")
            return
        }
        guard probed else { return }
        let container = device.container
        let memory = DMAMemory(bytes: 64 * Int(page))
        let iova: UInt64 = 0x40_0000
        try container.map(memory, at: iova)
        let granted = try device.startDMALogging(ranges: [DMARange(iova: iova, length: UInt64(memory.count))], pageSize: page)
        #expect(granted >= page && granted.nonzeroBitCount == 1)
        try DMAWriter(device: device).write(iova: iova + 5 * page, length: page)
        var bitmap = [UInt64](repeating: 0, count: 1)
        let reported: VFIOError? = {
            do {
                try device.dmaLoggingReport(of: DMARange(iova: iova, length: UInt64(memory.count)), pageSize: page, into: &bitmap)
                return nil
            } catch {
                return error as? VFIOError
            }
        }()
        if let reported {
            #expect(reported.errno == .notSupported, "\(reported)")
            try device.stopDMALogging()
            return
        }
        #expect(bitmap[0] == 1 << 5, "page 5, got \(String(bitmap[0], radix: 2))")
        try device.dmaLoggingReport(of: DMARange(iova: iova, length: UInt64(memory.count)), pageSize: page, into: &bitmap)
        #expect(bitmap[0] == 0, "a report clears the log")
        try device.stopDMALogging()
        _ = try container.unmap(DMARange(iova: iova, length: UInt64(memory.count)))
    }

    @Test(arguments: Targets.iommu)
    func migrationFeatureMatchesTheDevice(target: Targets.IOMMUTarget) throws {
        let device = try DeviceEnvironment.withMockDevices().open(target.spec)
        if target.migratable {
            let flags = try device.migrationFlags()
            #expect(flags.contains(.stopCopy))
        } else {
            do {
                _ = try device.migrationFlags()
                Issue.record("a device without migration reported flags")
            } catch {
                #expect(error.code == .notSupported, "\(error)")
                #expect(error.errno == .noIoctl)
            }
        }
    }
}

/// Makes a device write guest memory: the mock's DMA hook, or the test device's DMA engine.
struct DMAWriter {
    let device: VFIODevice

    func write(iova: UInt64, length: UInt64) throws {
        if let mock = device.mock {
            try mock.dmaWrite(iova: iova, length: length)
            return
        }
        // vfio_testdev BAR0 registers (tools/vfio-test-device/vfio_testdev_abi.h).
        let bar = try device.regionInfo(0)
        try put(bar, 0x08, 0x100) // source: the data area of BAR0
        try put(bar, 0x0c, UInt32(length))
        try put(bar, 0x10, UInt32(truncatingIfNeeded: iova))
        try put(bar, 0x14, UInt32(truncatingIfNeeded: iova >> 32))
        try put(bar, 0x18, 1) // copy BAR0 -> IOVA
        let status = try device.readRegion(bar, at: 0x1c, count: 4)
        #expect(status == [0, 0, 0, 0], "DMA status \(status)")
    }

    private func put(_ bar: RegionInfo, _ offset: UInt64, _ value: UInt32) throws {
        let bytes = (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
        try device.writeRegion(bar, at: offset, bytes: bytes)
    }
}
