// An emulated /dev/vfio/vfio container: its groups, its IOMMU backend, and the container
// ioctls. Every method runs with the kernel lock held.
import SystemPackage
import VFIOSyscalls

final class MockContainer {
    var groups: [MockGroup] = []
    var iommu: Type1IOMMU?
    /// The container fd is still open (groups keep the container alive after it closes).
    var fdOpen = true

    /// Dirty bits are precise only if every group is emulated-IOMMU (mdev-like); any group
    /// that can DMA on its own makes the kernel report every mapped page dirty.
    var preciseDirtyScope: Bool { groups.allSatisfy(\.emulated) }

    func ioctl(_ request: UInt, _ argument: IoctlArgument) throws(Errno) -> CInt {
        switch request {
        case Request.getAPIVersion:
            return 0
        case Request.checkExtension:
            return checkExtension(argument.integerValue)
        case Request.setIOMMU:
            try setIOMMU(argument.integerValue)
            return 0
        default:
            // Without an IOMMU backend the container knows nothing else (EINVAL); with one,
            // type1 answers what it implements and ENOTTY for the rest.
            guard let iommu else { throw .invalidArgument }
            switch request {
            case Request.iommuGetInfo: try getInfo(iommu, try UserStruct(argument))
            case Request.iommuMapDMA: try mapDMA(iommu, try UserStruct(argument))
            case Request.iommuUnmapDMA: try unmapDMA(iommu, try UserStruct(argument))
            case Request.iommuDirtyPages: try dirtyPages(iommu, argument)
            default: throw .noIoctl
            }
            return 0
        }
    }

    private func checkExtension(_ id: UInt) -> CInt {
        switch id {
        case Extension.type1, Extension.type1v2, Extension.unmapAll:
            return 1
        case Extension.updateVaddr:
            return iommu != nil && !groups.contains(where: \.emulated) ? 1 : 0
        case Extension.dmaCoherent:
            return iommu != nil ? 1 : 0
        default:
            return 0
        }
    }

    private func setIOMMU(_ type: UInt) throws(Errno) {
        if groups.isEmpty || iommu != nil { throw .invalidArgument }
        switch type {
        case Extension.type1v2: iommu = Type1IOMMU(v2: true)
        case Extension.type1: iommu = Type1IOMMU(v2: false)
        default: throw .noDevice
        }
    }

    // MARK: VFIO_IOMMU_GET_INFO

    private func getInfo(_ iommu: Type1IOMMU, _ arg: UserStruct) throws(Errno) {
        let argsz = try arg.u32(0)
        guard argsz >= 16 else { throw .invalidArgument }
        // Capabilities in the order type1 emits them, unpadded as on 6.1 kernels.
        var caps = ByteWriter()
        let infoSize = 24
        let migration = caps.count
        caps.u16(Type1Info.capMigration); caps.u16(1); caps.u32(0)
        caps.u32(0); caps.u32(0)
        caps.u64(Type1IOMMU.pageSize)
        caps.u64(Type1Info.maxDirtyBitmapBytes)
        let avail = caps.count
        caps.u16(Type1Info.capDMAAvail); caps.u16(1); caps.u32(0)
        caps.u32(UInt32(iommu.dmaAvail))
        caps.patch(u32: UInt32(infoSize + avail), at: migration + 4)
        // Only a hardware IOMMU domain has an IOVA list: a container of emulated-IOMMU (mdev)
        // groups reports no IOVA_RANGE capability at all (seen on 6.1 and 6.12 in the guest).
        if !preciseDirtyScope {
            let ranges = caps.count
            caps.u16(Type1Info.capIOVARange); caps.u16(1); caps.u32(0)
            caps.u32(UInt32(Type1IOMMU.iovaRanges.count)); caps.u32(0)
            for r in Type1IOMMU.iovaRanges { caps.u64(r.start); caps.u64(r.last) }
            caps.patch(u32: UInt32(infoSize + ranges), at: avail + 4)
        }

        let flags = Type1Info.flagPageSizes | Type1Info.flagCaps
        var outArgsz = argsz
        var capOffset: UInt32 = 0
        let needed = UInt32(infoSize + caps.count)
        if argsz < needed {
            outArgsz = needed
        } else {
            try arg.memory.copyOut(caps.bytes, to: arg.address + UInt(infoSize))
            capOffset = UInt32(infoSize)
        }
        // The fixed part is copied back up to min(argsz, 24) bytes.
        try arg.set(0, u32: outArgsz)
        try arg.set(4, u32: flags)
        try arg.set(8, u64: Type1IOMMU.pageSizeBitmap)
        if argsz >= 20 { try arg.set(16, u32: capOffset) }
        if argsz >= 24 { try arg.set(20, u32: 0) }
    }

    // MARK: MAP / UNMAP

    private func mapDMA(_ iommu: Type1IOMMU, _ arg: UserStruct) throws(Errno) {
        let argsz = try arg.u32(0), flags = try arg.u32(4)
        let vaddr = try arg.u64(8), iova = try arg.u64(16), size = try arg.u64(24)
        let known = DMAMapFlag.read | DMAMapFlag.write | DMAMapFlag.vaddr
        guard argsz >= 32, flags & ~known == 0 else { throw .invalidArgument }
        try iommu.map(iova: iova, size: size, vaddr: vaddr, flags: flags, checkRanges: !preciseDirtyScope)
    }

    private func unmapDMA(_ iommu: Type1IOMMU, _ arg: UserStruct) throws(Errno) {
        let argsz = try arg.u32(0), flags = try arg.u32(4)
        let iova = try arg.u64(8), size = try arg.u64(16)
        let known = DMAUnmapFlag.getDirtyBitmap | DMAUnmapFlag.all | DMAUnmapFlag.vaddr
        guard argsz >= 24, flags & ~known == 0 else { throw .invalidArgument }
        let wantBitmap = flags & DMAUnmapFlag.getDirtyBitmap != 0
        if wantBitmap && flags & (DMAUnmapFlag.all | DMAUnmapFlag.vaddr) != 0 { throw .invalidArgument }
        var harvest: ((Type1IOMMU.Mapping, [UInt64]) throws(Errno) -> Void)?
        if wantBitmap {
            guard argsz >= 48 else { throw .invalidArgument }
            let bitmap = try BitmapDescriptor(arg, at: 24)
            try bitmap.checkSize(pages: bitmap.pageShift.map { size >> $0 })
            // The kernel checks alignment first, then tracking and page size: all EINVAL.
            guard bitmap.pageSize == Type1IOMMU.pageSize else { throw .invalidArgument }
            let precise = preciseDirtyScope
            harvest = { (mapping, dirty) throws(Errno) in
                try Self.report(mapping, dirty: dirty, precise: precise, base: iova, into: bitmap, memory: arg.memory)
            }
        }
        let unmapped = try iommu.unmap(iova: iova, size: size, all: flags & DMAUnmapFlag.all != 0,
                                       invalidateVaddr: flags & DMAUnmapFlag.vaddr != 0, harvest: harvest)
        try arg.set(16, u64: unmapped)
    }

    // MARK: VFIO_IOMMU_DIRTY_PAGES

    private func dirtyPages(_ iommu: Type1IOMMU, _ argument: IoctlArgument) throws(Errno) {
        guard iommu.v2 else { throw .permissionDenied }
        let arg = try UserStruct(argument)
        let argsz = try arg.u32(0), flags = try arg.u32(4)
        let known = DirtyPagesFlag.start | DirtyPagesFlag.stop | DirtyPagesFlag.getBitmap
        guard argsz >= 8, flags & ~known == 0, flags.nonzeroBitCount == 1 else { throw .invalidArgument }
        switch flags {
        case DirtyPagesFlag.start:
            iommu.startTracking()
        case DirtyPagesFlag.stop:
            iommu.stopTracking()
        default:
            guard argsz - 8 >= 40 else { throw .invalidArgument }
            let iova = try arg.u64(8), size = try arg.u64(16)
            let bitmap = try BitmapDescriptor(arg, at: 24)
            if iova &+ size < iova { throw .invalidArgument }
            try bitmap.checkSize(pages: bitmap.pageShift.map { size >> $0 })
            let mask = Type1IOMMU.pageSize - 1
            guard bitmap.pageSize == Type1IOMMU.pageSize, iova & mask == 0, size != 0, size & mask == 0,
                  iommu.tracking
            else { throw .invalidArgument }
            try iommu.checkNotBisecting(iova, size)
            let precise = preciseDirtyScope
            for i in iommu.overlapping(iova, iova + size) {
                let mapping = iommu.mappings[i]
                try Self.report(mapping, dirty: iommu.takeDirty(of: mapping), precise: precise, base: iova,
                                into: bitmap, memory: arg.memory)
            }
        }
    }

    /// Writes one mapping's dirty bits relative to `base`: its written pages in the precise
    /// scope, every page otherwise.
    private static func report(_ m: Type1IOMMU.Mapping, dirty: [UInt64], precise: Bool, base: UInt64,
                               into bitmap: BitmapDescriptor, memory: UserMemory) throws(Errno) {
        let firstBit = (m.iova - base) / Type1IOMMU.pageSize
        if precise {
            for page in dirty {
                try setBitmapBit(memory, base: bitmap.data, bit: page - base / Type1IOMMU.pageSize)
            }
        } else {
            try setBitmapRun(memory, base: bitmap.data, first: firstBit, count: m.size / Type1IOMMU.pageSize)
        }
    }
}

/// `struct vfio_bitmap` (pgsize, size, data) read from the caller's struct.
struct BitmapDescriptor {
    let pageSize: UInt64
    let size: UInt64
    let data: UInt

    init(_ arg: UserStruct, at offset: UInt) throws(Errno) {
        pageSize = try arg.u64(offset)
        size = try arg.u64(offset + 8)
        data = UInt(truncatingIfNeeded: try arg.u64(offset + 16))
    }

    var pageShift: UInt64? { pageSize == 0 ? nil : UInt64(pageSize.trailingZeroBitCount) }

    /// The kernel's size rule: non-zero, at most 256 MiB, and enough u64 words for `pages` bits.
    func checkSize(pages: UInt64?) throws(Errno) {
        guard let pages, pages != 0, size != 0, size <= Type1Info.maxDirtyBitmapBytes else { throw .invalidArgument }
        let needed = (pages + 63) / 64 * 8
        guard size >= needed else { throw .invalidArgument }
    }
}
