// What `vfio-migrate probe` prints, as a library call: the device's VFIO info and regions, the
// container's IOMMU capabilities, the migration feature and what the device can do for it.
import VFIOCore
import VFIOStream
import VFIOSyscalls

/// A device's capabilities as the kernel reports them.
public struct DeviceProbe: Sendable, Encodable {
    public var device: String
    public var deviceInfo: DeviceInfo
    /// Regions with a non-zero size, in index order.
    public var regions: [RegionInfo]
    public var iommu: IOMMUInfo
    /// Nil when the device has no migration support (`problem` says why).
    public var migrationFlags: MigrationFlags?
    public var migrationState: MigrationState?
    /// MIG_DATA_SIZE, when the device offers it.
    public var stopCopySizeEstimate: UInt64?
    /// Device DMA logging (DMA_LOGGING_START answers PROBE|SET).
    public var dmaLogging: Bool
    /// MIG_PRECOPY_INFOv2 (REINIT reports) answers PROBE|SET.
    public var preCopyInfoV2: Bool
    /// The compatibility descriptor exactly as a stream would carry it.
    public var descriptor: DeviceDescriptor?
    /// Why the device cannot migrate, when it cannot.
    public var problem: String?
}

extension VFIODevice {
    /// Reads everything `probe` reports; no device state is touched.
    public func probe() throws(VFIOError) -> DeviceProbe {
        let info = try info()
        var regions: [RegionInfo] = []
        for index in 0..<min(info.regionCount, 9) {
            if let region = try? regionInfo(index), region.size > 0 { regions.append(region) }
        }
        var probe = DeviceProbe(
            device: name, deviceInfo: info, regions: regions, iommu: try container.iommuInfo(),
            dmaLogging: (try? supports(.dmaLoggingStart, for: .set)) ?? false,
            preCopyInfoV2: (try? supports(.preCopyInfoV2, for: .set)) ?? false)
        do {
            let flags = try migrationFlags()
            probe.migrationFlags = flags
            probe.migrationState = try currentState()
            probe.stopCopySizeEstimate = try stopCopySizeEstimate()
            probe.descriptor = try descriptor(flags: flags, expectedStateSize: probe.stopCopySizeEstimate)
            if !flags.contains(.stopCopy) { probe.problem = "the device reports migration flags \(flags) without STOP_COPY" }
        } catch {
            probe.problem = error.description
        }
        return probe
    }
}
