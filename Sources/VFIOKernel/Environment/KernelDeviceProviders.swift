// The built-in providers: the kernel's own ways of naming a VFIO device. Each resolves the
// name through sysfs and opens the device through /dev/vfio the same way.
import Foundation
import VFIOCore
import VFIOStream
import VFIOSyscalls

/// `0000:06:0d.0` or `06:0d.0`.
public struct PCIAddressProvider: DeviceProvider {
    public let kind = "PCI address"
    public init() {}
    public func open(_ spec: String, in environment: DeviceEnvironment) throws(VFIOError) -> VFIODevice? {
        guard !spec.contains("/"), PCIAddress(spec) != nil else { return nil }
        return try KernelDevices.open(spec, in: environment)
    }
}

/// An mdev instance's UUID.
public struct MdevUUIDProvider: DeviceProvider {
    public let kind = "mdev UUID"
    public init() {}
    public func open(_ spec: String, in environment: DeviceEnvironment) throws(VFIOError) -> VFIODevice? {
        guard UUID(uuidString: spec) != nil else { return nil }
        return try KernelDevices.open(spec, in: environment)
    }
}

/// A sysfs device directory (`/sys/bus/pci/devices/0000:06:0d.0`, `/sys/bus/mdev/devices/UUID`);
/// also names that merely look like a PCI address or UUID, so their error says what is wrong.
public struct SysfsPathProvider: DeviceProvider {
    public let kind = "sysfs path"
    public init() {}
    public func open(_ spec: String, in environment: DeviceEnvironment) throws(VFIOError) -> VFIODevice? {
        guard spec.hasPrefix("/") || spec.contains(":") || spec.filter({ $0 == "-" }).count == 4 else { return nil }
        return try KernelDevices.open(spec, in: environment)
    }
}

enum KernelDevices {
    static func open(_ spec: String, in environment: DeviceEnvironment) throws(VFIOError) -> VFIODevice {
        let discovery = SysfsDiscovery(root: environment.sysfsRoot)
        let found: DiscoveredDevice
        do {
            found = try discovery.resolve(spec)
        } catch {
            throw VFIOError(.notFound, "cannot find device: \(error)", device: spec)
        }
        guard let group = found.iommuGroup else {
            throw VFIOError(.notFound, "the device is in no IOMMU group", device: found.vfioName, hint: "enable the IOMMU (intel_iommu=on or amd_iommu=on)")
        }
        let availability = discovery.vfioAvailability(devRoot: environment.devRoot)
        guard availability.available else {
            throw VFIOError(.notSupported, availability.message, device: found.vfioName)
        }
        guard let driver = found.driver else {
            throw VFIOError(.busy, "the device is bound to no driver", device: found.vfioName, hint: "bind it to vfio-pci or its VFIO variant driver")
        }
        if case .pci = found, !driver.contains("vfio") {
            throw VFIOError(.busy, "the device is bound to \(driver), not to a VFIO driver", device: found.vfioName,
                            hint: "unbind it and bind it to vfio-pci or its VFIO variant driver")
        }
        return try VFIODevice.open(
            vfioName: found.vfioName, groupNumber: group, kernel: LinuxKernel.shared, devRoot: environment.devRoot,
            identity: identity(of: found, sysfsRoot: environment.sysfsRoot), discovered: found)
    }

    static func identity(of found: DiscoveredDevice, sysfsRoot: String) -> DeviceIdentity {
        switch found {
        case .mdev(let info):
            let driver = info.typeID.split(separator: "-").first.map(String.init) ?? info.typeID
            return DeviceIdentity(
                deviceAPI: info.deviceAPI ?? "vfio-pci", driverName: driver,
                driverVersion: HostInfo.moduleVersion(driver, sysfsRoot: sysfsRoot), mdev: MdevDefinition(type: info.typeID),
                numaNode: info.numaNode)
        case .pci(let info):
            let driver = info.driver ?? "vfio-pci"
            return DeviceIdentity(
                driverName: driver, driverVersion: HostInfo.moduleVersion(driver, sysfsRoot: sysfsRoot), numaNode: info.numaNode)
        }
    }
}
