// A VFIO device fd with its info, regions and features.
import VFIOCore
import VFIOSyscalls

public final class VFIODevice: @unchecked Sendable {
    let fd: DeviceFD
    public let name: String
    public let group: VFIOGroup

    /// VFIO_GROUP_GET_DEVICE_FD on `group` for `name` (PCI address or mdev UUID).
    public init(name: String, group: VFIOGroup) throws(VFIOError) {
        self.name = name
        self.group = group
        fd = try group.openDeviceFD(name)
    }

    /// Opens a device the canonical way: a new container, its group, then the device.
    public static func open(
        name: String, groupNumber: Int, kernel: any KernelInterface = LinuxKernel.shared, devRoot: String = "/dev"
    ) throws(VFIOError) -> VFIODevice {
        let container = try VFIOContainer(kernel: kernel, path: "\(devRoot)/vfio/vfio")
        let group = try VFIOGroup(number: groupNumber, container: container, devRoot: devRoot)
        return try VFIODevice(name: name, group: group)
    }

    public var container: VFIOContainer { group.container }

    public func info() throws(VFIOError) -> DeviceInfo {
        try wrap { () throws(SyscallError) in try fd.info() }
    }

    public func regionInfo(_ index: UInt32) throws(VFIOError) -> RegionInfo {
        try wrap { () throws(SyscallError) in try fd.regionInfo(index) }
    }

    public func irqInfo(_ index: UInt32) throws(VFIOError) -> IRQInfo {
        try wrap { () throws(SyscallError) in try fd.irqInfo(index) }
    }

    public func reset() throws(VFIOError) {
        try wrap { () throws(SyscallError) in try fd.reset() }
    }

    public func readRegion(_ region: RegionInfo, at offset: UInt64 = 0, count: Int) throws(VFIOError) -> [UInt8] {
        try wrap { () throws(SyscallError) in try fd.readRegion(region, at: offset, count: count) }
    }

    public func writeRegion(_ region: RegionInfo, at offset: UInt64 = 0, bytes: [UInt8]) throws(VFIOError) {
        try wrap { () throws(SyscallError) in try fd.writeRegion(region, at: offset, bytes: bytes) }
    }

    /// PROBE of a device feature by uAPI index.
    public func probeFeature(_ index: Int32, get: Bool = false, set: Bool = false) throws(VFIOError) -> Bool {
        try wrap { () throws(SyscallError) in try fd.probeFeature(index, get: get, set: set) }
    }

    /// Device DMA logging over IOVA ranges; returns the page size the driver chose.
    public func startDMALogging(ranges: [(iova: UInt64, length: UInt64)], pageSize: UInt64) throws(VFIOError) -> UInt64 {
        try wrap { () throws(SyscallError) in try fd.startDMALogging(ranges: ranges, pageSize: pageSize) }
    }

    public func stopDMALogging() throws(VFIOError) {
        try wrap { () throws(SyscallError) in try fd.stopDMALogging() }
    }

    public func dmaLoggingReport(iova: UInt64, length: UInt64, pageSize: UInt64, into bitmap: inout [UInt64]) throws(VFIOError) {
        try wrap { () throws(SyscallError) in try fd.dmaLoggingReport(iova: iova, length: length, pageSize: pageSize, into: &bitmap) }
    }

    func wrap<T: ~Copyable>(_ body: () throws(SyscallError) -> T) throws(VFIOError) -> T {
        do {
            return try body()
        } catch {
            throw VFIOError(syscall: error, device: name)
        }
    }
}
