// The VFIO uAPI numbers the emulator answers, written independently from the fact sheet (not
// imported from CVFIO): a second reading of the same facts catches mistakes in either.

/// Request numbers: `_IO(';', 100 + n)`, no size or direction bits. Numbers repeat across fd
/// kinds, so the emulator dispatches on what the fd is first.
enum Request {
    static let getAPIVersion: UInt = 0x3B64
    static let checkExtension: UInt = 0x3B65
    static let setIOMMU: UInt = 0x3B66
    static let groupGetStatus: UInt = 0x3B67
    static let groupSetContainer: UInt = 0x3B68
    static let groupUnsetContainer: UInt = 0x3B69
    static let groupGetDeviceFD: UInt = 0x3B6A
    static let deviceGetInfo: UInt = 0x3B6B
    static let deviceGetRegionInfo: UInt = 0x3B6C
    static let deviceGetIRQInfo: UInt = 0x3B6D
    static let deviceSetIRQs: UInt = 0x3B6E
    static let deviceReset: UInt = 0x3B6F
    /// Container: VFIO_IOMMU_GET_INFO.
    static let iommuGetInfo: UInt = 0x3B70
    static let iommuMapDMA: UInt = 0x3B71
    static let iommuUnmapDMA: UInt = 0x3B72
    /// Container: VFIO_IOMMU_DIRTY_PAGES; device: VFIO_DEVICE_FEATURE.
    static let iommuDirtyPages: UInt = 0x3B75
    static let deviceFeature: UInt = 0x3B75
    /// Migration data fd: VFIO_MIG_GET_PRECOPY_INFO.
    static let migGetPrecopyInfo: UInt = 0x3B79
}

enum Extension {
    static let type1: UInt = 1
    static let spaprTCE: UInt = 2
    static let type1v2: UInt = 3
    static let dmaCoherent: UInt = 4
    static let eeh: UInt = 5
    static let type1Nesting: UInt = 6
    static let spaprTCEv2: UInt = 7
    static let noIOMMU: UInt = 8
    static let unmapAll: UInt = 9
    static let updateVaddr: UInt = 10
}

enum GroupFlag {
    static let viable: UInt32 = 1 << 0
    static let containerSet: UInt32 = 1 << 1
}

enum DeviceFlag {
    static let reset: UInt32 = 1 << 0
    static let pci: UInt32 = 1 << 1
}

enum RegionFlag {
    static let read: UInt32 = 1 << 0
    static let write: UInt32 = 1 << 1
}

/// vfio-pci region indexes; a region's file offset is `index << 40`.
enum PCIRegion {
    static let bar0 = 0
    static let rom = 6
    static let config = 7
    static let vga = 8
    static let count = 9
    static let offsetShift: UInt64 = 40
}

enum IRQFlag {
    static let eventfd: UInt32 = 1 << 0
    static let maskable: UInt32 = 1 << 1
    static let automasked: UInt32 = 1 << 2
    static let noResize: UInt32 = 1 << 3
}

enum IRQSetFlag {
    static let dataMask: UInt32 = 0b111
    static let dataNone: UInt32 = 1 << 0
    static let dataBool: UInt32 = 1 << 1
    static let dataEventfd: UInt32 = 1 << 2
    static let actionMask: UInt32 = 0b111 << 3
}

enum Type1Info {
    static let flagPageSizes: UInt32 = 1 << 0
    static let flagCaps: UInt32 = 1 << 1
    static let capIOVARange: UInt16 = 1
    static let capMigration: UInt16 = 2
    static let capDMAAvail: UInt16 = 3
    /// Type1's default limit on MAP_DMA entries.
    static let dmaEntryLimit = 65535
    /// Largest dirty bitmap the kernel accepts, in bytes (256 MiB).
    static let maxDirtyBitmapBytes: UInt64 = 268_435_456
}

enum DMAMapFlag {
    static let read: UInt32 = 1 << 0
    static let write: UInt32 = 1 << 1
    static let vaddr: UInt32 = 1 << 2
}

enum DMAUnmapFlag {
    static let getDirtyBitmap: UInt32 = 1 << 0
    static let all: UInt32 = 1 << 1
    static let vaddr: UInt32 = 1 << 2
}

enum DirtyPagesFlag {
    static let start: UInt32 = 1 << 0
    static let stop: UInt32 = 1 << 1
    static let getBitmap: UInt32 = 1 << 2
}

enum FeatureFlag {
    static let indexMask: UInt32 = 0x0000_FFFF
    static let get: UInt32 = 0x0001_0000
    static let set: UInt32 = 0x0002_0000
    static let probe: UInt32 = 0x0004_0000
}

enum Feature {
    static let migration: UInt32 = 1
    static let migDeviceState: UInt32 = 2
    static let dmaLoggingStart: UInt32 = 6
    static let dmaLoggingStop: UInt32 = 7
    static let dmaLoggingReport: UInt32 = 8
    static let migDataSize: UInt32 = 9
    static let migPrecopyInfoV2: UInt32 = 12
}

/// Bits of `vfio_precopy_info.flags`, an output only after MIG_PRECOPY_INFOv2 was set.
enum PrecopyInfoFlag {
    static let reinit: UInt32 = 1 << 0
}

/// Bits of the MIGRATION feature's flags.
public enum MigrationFlag {
    public static let stopCopy: UInt32 = 1 << 0
    public static let p2p: UInt32 = 1 << 1
    public static let preCopy: UInt32 = 1 << 2
}
