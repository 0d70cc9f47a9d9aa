// The device an embedder holds: a VFIO device fd with its info, regions and features, and the
// v2 migration protocol (it is the engine's MigrationDevice). Each call is one ioctl; errors
// name the device the way its user named it.
import VFIOCore
import VFIOStream
import VFIOSyscalls

/// What a device is beyond what its VFIO ioctls say, supplied by the provider that opened it
/// (sysfs for kernel devices, the emulator for `mock:` ones). It feeds the stream descriptor.
public struct DeviceIdentity: Sendable, Hashable {
    /// VFIO device API: `vfio-pci`, `vfio-ccw`, ...
    public var deviceAPI: String
    /// The (variant) driver bound to the device, and its version.
    public var driverName: String
    public var driverVersion: String
    /// The mdev type and attributes, for a mediated device.
    public var mdev: MdevDefinition?
    /// Opaque vendor string a target must match (empty when the driver offers none).
    public var vendorCompatibility: String
    /// The NUMA node the device is attached to, when known.
    public var numaNode: Int?
    /// The state size the stream records, when the provider knows it better than the kernel's
    /// stop-copy estimate (an emulated device knows its exact size); nil: MIG_DATA_SIZE.
    public var stateSize: UInt64?

    public init(
        deviceAPI: String = "vfio-pci", driverName: String, driverVersion: String, mdev: MdevDefinition? = nil,
        vendorCompatibility: String = "", numaNode: Int? = nil, stateSize: UInt64? = nil
    ) {
        self.deviceAPI = deviceAPI
        self.driverName = driverName
        self.driverVersion = driverVersion
        self.mdev = mdev
        self.vendorCompatibility = vendorCompatibility
        self.numaNode = numaNode
        self.stateSize = stateSize
    }
}

public final class VFIODevice: MigrationDevice, Sendable {
    let fd: DeviceFD
    /// How people name the device (what they passed to `DeviceEnvironment.open`, normalised):
    /// a PCI address, an mdev UUID, `mock:NAME`.
    public let name: String
    /// The name VFIO_GROUP_GET_DEVICE_FD took: the PCI address or the mdev UUID.
    public let vfioName: String
    public let group: VFIOGroup
    public let identity: DeviceIdentity
    /// sysfs facts for a kernel device.
    public let discovered: DiscoveredDevice?
    /// Whatever the provider that opened the device attached to it (e.g. the emulated device
    /// behind a `mock:` spec).
    public let context: (any Sendable)?

    package init(
        vfioName: String, group: VFIOGroup, name: String? = nil, identity: DeviceIdentity,
        discovered: DiscoveredDevice? = nil, context: (any Sendable)? = nil
    ) throws(VFIOError) {
        self.vfioName = vfioName
        self.name = name ?? vfioName
        self.group = group
        self.identity = identity
        self.discovered = discovered
        self.context = context
        fd = try group.openDeviceFD(vfioName)
    }

    /// Opens a device the canonical way: a new container, its group, then the device.
    package static func open(
        vfioName: String, groupNumber: Int, kernel: any KernelInterface, devRoot: String = "/dev",
        name: String? = nil, identity: DeviceIdentity, discovered: DiscoveredDevice? = nil, context: (any Sendable)? = nil
    ) throws(VFIOError) -> VFIODevice {
        let container = try VFIOContainer(kernel: kernel, path: "\(devRoot)/vfio/vfio")
        let group = try VFIOGroup(number: groupNumber, container: container, devRoot: devRoot)
        return try VFIODevice(vfioName: vfioName, group: group, name: name, identity: identity, discovered: discovered, context: context)
    }

    public var container: VFIOContainer { group.container }

    private func wrap<T: ~Copyable>(_ body: () throws(SyscallError) -> T) throws(VFIOError) -> T {
        try VFIOError.wrapping(device: name, body)
    }

    // MARK: VFIO device

    public func info() throws(VFIOError) -> DeviceInfo { try wrap { () throws(SyscallError) in try fd.info() } }

    public func regionInfo(_ index: UInt32) throws(VFIOError) -> RegionInfo {
        try wrap { () throws(SyscallError) in try fd.regionInfo(index) }
    }

    public func irqInfo(_ index: UInt32) throws(VFIOError) -> IRQInfo {
        try wrap { () throws(SyscallError) in try fd.irqInfo(index) }
    }

    public func readRegion(_ region: RegionInfo, at offset: UInt64 = 0, count: Int) throws(VFIOError) -> [UInt8] {
        try wrap { () throws(SyscallError) in try fd.readRegion(region, at: offset, count: count) }
    }

    public func writeRegion(_ region: RegionInfo, at offset: UInt64 = 0, bytes: [UInt8]) throws(VFIOError) {
        try wrap { () throws(SyscallError) in try fd.writeRegion(region, at: offset, bytes: bytes) }
    }

    /// PROBE of a device feature for the given access (ENOTTY/EINVAL/EOPNOTSUPP: false).
    public func supports(_ feature: DeviceFeature, for access: FeatureAccess) throws(VFIOError) -> Bool {
        try wrap { () throws(SyscallError) in try fd.probeFeature(feature, for: access) }
    }

    /// Device DMA logging over IOVA ranges; returns the page size the driver chose.
    public func startDMALogging(ranges: [DMARange], pageSize: UInt64) throws(VFIOError) -> UInt64 {
        try wrap { () throws(SyscallError) in try fd.startDMALogging(ranges: ranges, pageSize: pageSize) }
    }

    public func stopDMALogging() throws(VFIOError) {
        try wrap { () throws(SyscallError) in try fd.stopDMALogging() }
    }

    /// DMA_LOGGING_REPORT of `range` into `bitmap` (zeroed first); reading clears the log.
    public func dmaLoggingReport(of range: DMARange, pageSize: UInt64, into bitmap: inout [UInt64]) throws(VFIOError) {
        try wrap { () throws(SyscallError) in try fd.dmaLoggingReport(iova: range.iova, length: range.length, pageSize: pageSize, into: &bitmap) }
    }

    // MARK: MigrationDevice

    public func migrationFlags() throws(VFIOError) -> MigrationFlags {
        do {
            return MigrationFlags(rawValue: try fd.migrationFlags())
        } catch where error.errno == .noIoctl {
            throw VFIOError(
                .notSupported, "the device does not support migration (its driver has no migration v2 ops)",
                device: name, operation: error.operation, errno: ErrorNumber(error.errno))
        } catch {
            throw .ioctl(error, device: name)
        }
    }

    public func currentState() throws(VFIOError) -> MigrationState {
        let raw = try wrap { () throws(SyscallError) in try fd.migrationState() }
        guard let state = MigrationState(rawValue: raw) else {
            throw VFIOError(.deviceError, "the kernel reported unknown migration state \(raw)", device: name)
        }
        return state
    }

    public func setState(_ state: MigrationState) throws(VFIOError) -> DataSession? {
        let opened = try wrap { () throws(SyscallError) in try fd.setMigrationState(state.rawValue) }
        guard let opened else { return nil }
        return DataSession(KernelDataSession(fd: opened, deviceName: name, saving: state.isSaving))
    }

    public func reset() throws(VFIOError) {
        try wrap { () throws(SyscallError) in try fd.reset() }
    }

    public func stopCopySizeEstimate() throws(VFIOError) -> UInt64? {
        do {
            return try fd.migrationDataSize()
        } catch where error.errno == .noIoctl || error.errno == .invalidArgument {
            return nil // kernels before 6.2 or drivers without the feature
        } catch {
            throw .ioctl(error, device: name)
        }
    }

    public func enablePreCopyReinitReports() throws(VFIOError) -> Bool {
        guard try supports(.preCopyInfoV2, for: .set) else { return false }
        try wrap { () throws(SyscallError) in try fd.enablePreCopyInfoV2() }
        return true
    }
}
