// What an opened device says about migration, read with GETs and PROBEs only: the MIGRATION
// feature's flags (or that it answers ENOTTY), the state, MIG_DATA_SIZE, PRECOPY_INFOv2, and
// the dirty trackers a VMM could use with it.
import VFIOCore
import VFIOStream

/// Dirty page tracking the type1 container offers (its IOMMU MIGRATION capability).
public struct Type1DirtyTracking: Sendable, Hashable, Codable {
    /// Page sizes the dirty bitmap can be kept at (the capability's pgsize_bitmap, as sizes).
    public var pageSizes: [UInt64]
    /// The largest bitmap one GET_BITMAP call may ask for.
    public var maxBitmapBytes: UInt64
    /// True when the bitmap holds only pages devices really wrote: every group in the
    /// container is an emulated-IOMMU (mdev) group. For a device that can DMA on its own
    /// every mapped page is reported dirty every time.
    public var precise: Bool

    public init(pageSizes: [UInt64], maxBitmapBytes: UInt64, precise: Bool) {
        self.pageSizes = pageSizes
        self.maxBitmapBytes = maxBitmapBytes
        self.precise = precise
    }

    /// The sizes of the set bits of a page-size bitmap, smallest first.
    public static func sizes(ofBitmap bitmap: UInt64) -> [UInt64] {
        (0..<64).compactMap { bit in bitmap & (1 << UInt64(bit)) != 0 ? 1 << UInt64(bit) : nil }
    }
}

public struct MigrationCapabilities: Sendable, Hashable, Encodable {
    /// Nil when VFIO_DEVICE_FEATURE_MIGRATION answers ENOTTY: the driver has no migration support.
    public var flags: MigrationFlags?
    public var state: MigrationState?
    /// MIG_DATA_SIZE; nil when the device cannot say (kernels before 6.2, drivers without it).
    public var stopCopySizeEstimate: UInt64?
    /// MIG_PRECOPY_INFOv2 (REINIT reports) answers PROBE|SET.
    public var preCopyInfoV2: Bool
    /// Device DMA logging (DMA_LOGGING_START answers PROBE|SET).
    public var dmaLogging: Bool
    /// The container's type1 tracking; nil when its IOMMU has no MIGRATION capability.
    public var type1: Type1DirtyTracking?

    public init(
        flags: MigrationFlags?, state: MigrationState? = nil, stopCopySizeEstimate: UInt64? = nil,
        preCopyInfoV2: Bool = false, dmaLogging: Bool = false, type1: Type1DirtyTracking? = nil
    ) {
        self.flags = flags
        self.state = state
        self.stopCopySizeEstimate = stopCopySizeEstimate
        self.preCopyInfoV2 = preCopyInfoV2
        self.dmaLogging = dmaLogging
        self.type1 = type1
    }

    enum CodingKeys: String, CodingKey { case flags, state, stopCopySizeEstimate, preCopyInfoV2, dmaLogging, type1 }

    /// States by name ("RUNNING"), absent values as null, so every key is always there.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(flags, forKey: .flags)
        try c.encode(state.map(\.description), forKey: .state)
        try c.encode(stopCopySizeEstimate, forKey: .stopCopySizeEstimate)
        try c.encode(preCopyInfoV2, forKey: .preCopyInfoV2)
        try c.encode(dmaLogging, forKey: .dmaLogging)
        try c.encode(type1, forKey: .type1)
    }

    /// Some tracker gives dirty pages a pre-copy can converge on.
    public var hasPreciseDirtyTracking: Bool { dmaLogging || type1?.precise == true }
}

extension VFIODevice {
    /// True for a mediated device: its group is an emulated IOMMU, so it cannot DMA on its own.
    public var isMediated: Bool {
        if case .mdev = discovered { return true }
        return identity.mdev != nil
    }

    /// Reads the migration capabilities with GETs and PROBEs; no state changes. A device whose
    /// MIGRATION feature answers ENOTTY has `flags` nil; other failures throw.
    public func migrationCapabilities() throws(VFIOError) -> MigrationCapabilities {
        var capabilities = MigrationCapabilities(
            flags: nil,
            preCopyInfoV2: (try? supports(.preCopyInfoV2, for: .set)) ?? false,
            dmaLogging: (try? supports(.dmaLoggingStart, for: .set)) ?? false)
        if let migration = try container.iommuInfo().migration {
            capabilities.type1 = Type1DirtyTracking(
                pageSizes: Type1DirtyTracking.sizes(ofBitmap: migration.pageSizes),
                maxBitmapBytes: migration.maxDirtyBitmapBytes, precise: isMediated)
        }
        do {
            capabilities.flags = try migrationFlags()
        } catch where error.code == .notSupported && error.errno == .noIoctl {
            return capabilities
        }
        capabilities.state = try currentState()
        capabilities.stopCopySizeEstimate = try stopCopySizeEstimate()
        return capabilities
    }

    /// The PCI class code from config space; nil for a non-PCI device.
    public func pciClassCode() -> UInt32? {
        (try? pciIdentity())??.classCode
    }
}
