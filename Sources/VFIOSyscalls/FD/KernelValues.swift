// Decoded forms of what the kernel fills in: plain values, no pointers.
import CVFIO

/// One usable IOVA window; `last` is inclusive, as the kernel reports it.
public struct IOVARange: Sendable, Equatable, Codable {
    public var start: UInt64
    public var last: UInt64
    public init(start: UInt64, last: UInt64) {
        self.start = start
        self.last = last
    }
}

/// VFIO_IOMMU_GET_INFO for a type1 container.
public struct IOMMUInfo: Sendable, Equatable, Codable {
    /// Supported IOMMU page sizes (bitmap), when the kernel reports them.
    public var pageSizes: UInt64?
    public var iovaRanges: [IOVARange]
    /// The migration capability: present means VFIO_IOMMU_DIRTY_PAGES is implemented.
    public var migration: Migration?
    /// Remaining MAP_DMA entries.
    public var dmaAvailable: UInt32?

    public struct Migration: Sendable, Equatable, Codable {
        public var flags: UInt32
        public var pageSizes: UInt64
        public var maxDirtyBitmapBytes: UInt64
    }

    init(decoding info: cvfio_iommu_type1_info, bytes: [UInt8]) {
        pageSizes = info.flags & UInt32(CVFIO_IOMMU_INFO_PGSIZES) != 0 ? info.iova_pgsizes : nil
        iovaRanges = []
        migration = nil
        dmaAvailable = nil
        guard info.flags & UInt32(CVFIO_IOMMU_INFO_CAPS) != 0, info.cap_offset != 0 else { return }
        let reader = CapabilityReader(bytes: bytes)
        for cap in reader.capabilities(from: info.cap_offset) {
            switch Int32(cap.id) {
            case Int32(CVFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE):
                guard let n = reader.u32(cap.offset + 8) else { continue }
                for i in 0..<Int(min(n, 4096)) {
                    let at = cap.offset + 16 + 16 * i
                    guard let start = reader.u64(at), let last = reader.u64(at + 8) else { break }
                    iovaRanges.append(IOVARange(start: start, last: last))
                }
            case Int32(CVFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION):
                if let flags = reader.u32(cap.offset + 8), let sizes = reader.u64(cap.offset + 16),
                   let maxBytes = reader.u64(cap.offset + 24) {
                    migration = Migration(flags: flags, pageSizes: sizes, maxDirtyBitmapBytes: maxBytes)
                }
            case Int32(CVFIO_IOMMU_TYPE1_INFO_DMA_AVAIL):
                dmaAvailable = reader.u32(cap.offset + 8)
            default:
                continue // capabilities we do not use are skipped
            }
        }
    }
}

/// VFIO_GROUP_GET_STATUS.
public struct GroupStatus: Sendable, Equatable, Codable {
    public var viable: Bool
    public var containerSet: Bool
}

/// VFIO_DEVICE_GET_INFO.
public struct DeviceInfo: Sendable, Equatable, Codable {
    public var flags: UInt32
    public var regionCount: UInt32
    public var irqCount: UInt32
    public var supportsReset: Bool { flags & UInt32(CVFIO_DEVICE_FLAGS_RESET) != 0 }
    public var isPCI: Bool { flags & UInt32(CVFIO_DEVICE_FLAGS_PCI) != 0 }
}

/// VFIO_DEVICE_GET_REGION_INFO.
public struct RegionInfo: Sendable, Equatable, Codable {
    public var index: UInt32
    public var flags: UInt32
    public var size: UInt64
    /// Offset of the region within the device fd (for pread/pwrite/mmap).
    public var offset: UInt64
    public var readable: Bool { flags & UInt32(CVFIO_REGION_INFO_FLAG_READ) != 0 }
    public var writable: Bool { flags & UInt32(CVFIO_REGION_INFO_FLAG_WRITE) != 0 }
    public var mappable: Bool { flags & UInt32(CVFIO_REGION_INFO_FLAG_MMAP) != 0 }
}

/// VFIO_DEVICE_GET_IRQ_INFO.
public struct IRQInfo: Sendable, Equatable, Codable {
    public var index: UInt32
    public var flags: UInt32
    public var count: UInt32
}
