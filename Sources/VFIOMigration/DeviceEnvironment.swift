// Where devices are found and opened: the real kernel (sysfs discovery, /dev/vfio) or the
// process's VFIO emulator for `mock:` specs. Both are opened through the same kernel backend.
import Foundation
import VFIOCore
import VFIOKernel
import VFIOMock
import VFIOSyscalls

public final class DeviceEnvironment: @unchecked Sendable {
    public let sysfsRoot: String
    public let devRoot: String
    /// The emulator `mock:` devices live in; one per environment, so a save and a load in
    /// one process can name the same mock device.
    public let mockKernel: MockKernel

    public init(sysfsRoot: String = "/sys", devRoot: String = "/dev", mockKernel: MockKernel = MockKernel()) {
        self.sysfsRoot = sysfsRoot
        self.devRoot = devRoot
        self.mockKernel = mockKernel
    }

    /// Opens a device by spec: a PCI address, an mdev UUID, a sysfs device path, or
    /// `mock:NAME?opts` (created on first use in this environment).
    public func open(_ spec: String) throws(VFIOError) -> OpenedDevice {
        if spec.hasPrefix("mock:") {
            return try openMock(spec)
        }
        return try openKernel(spec)
    }

    private func openMock(_ spec: String) throws(VFIOError) -> OpenedDevice {
        let configuration: MockDeviceConfiguration
        do {
            configuration = try MockDeviceConfiguration(spec: spec)
        } catch {
            throw VFIOError(.invalidArgument, "bad mock device spec: \(error)", device: spec)
        }
        let mock: MockDevice
        if let existing = mockKernel.device(named: configuration.name) {
            let hasOptions = spec.contains("?")
            guard !hasOptions || existing.configuration == configuration else {
                throw VFIOError(
                    .invalidArgument, "mock device \(configuration.name) already exists with other options",
                    device: spec)
            }
            mock = existing
        } else {
            mock = mockKernel.addDevice(configuration)
        }
        let vfio = try VFIODevice.open(
            name: mock.kernelName, groupNumber: mock.groupNumber, kernel: mockKernel, devRoot: "/dev")
        return OpenedDevice(spec: spec, displayName: "mock:\(mock.name)", vfio: vfio, discovered: nil, mock: mock)
    }

    private func openKernel(_ spec: String) throws(VFIOError) -> OpenedDevice {
        let discovery = SysfsDiscovery(root: sysfsRoot)
        let found: DiscoveredDevice
        do {
            found = try discovery.resolve(spec)
        } catch {
            throw VFIOError(.notFound, "cannot find device: \(error)", device: spec)
        }
        guard let group = found.iommuGroup else {
            throw VFIOError(.notFound, "the device is in no IOMMU group (is the IOMMU enabled?)", device: found.vfioName)
        }
        let availability = discovery.vfioAvailability(devRoot: devRoot)
        guard availability.available else {
            throw VFIOError(.notSupported, availability.message, device: found.vfioName)
        }
        guard let driver = found.driver else {
            throw VFIOError(.busy, "the device is bound to no driver; bind it to vfio-pci or its VFIO variant driver", device: found.vfioName)
        }
        if case .pci = found, !driver.contains("vfio") {
            throw VFIOError(.busy, "the device is bound to \(driver), not to a VFIO driver", device: found.vfioName)
        }
        let vfio = try VFIODevice.open(name: found.vfioName, groupNumber: group, kernel: LinuxKernel.shared, devRoot: devRoot)
        return OpenedDevice(spec: spec, displayName: found.vfioName, vfio: vfio, discovered: found, mock: nil)
    }
}

/// An open device with what is known about it.
public final class OpenedDevice: @unchecked Sendable {
    public let spec: String
    /// How messages name it: a PCI address, an mdev UUID, or `mock:NAME`.
    public let displayName: String
    public let vfio: VFIODevice
    /// sysfs facts for a kernel device.
    public let discovered: DiscoveredDevice?
    /// The emulated device behind a `mock:` spec.
    public let mock: MockDevice?
    public let migration: KernelMigrationDevice

    init(spec: String, displayName: String, vfio: VFIODevice, discovered: DiscoveredDevice?, mock: MockDevice?) {
        self.spec = spec
        self.displayName = displayName
        self.vfio = vfio
        self.discovered = discovered
        self.mock = mock
        self.migration = KernelMigrationDevice(device: vfio, displayName: displayName)
    }

    /// The NUMA node the device's I/O buffers belong on (nil: none or unknown).
    public var numaNode: Int? { discovered?.numaNode }

    /// A migration driver for this device (probes flags and state).
    public func driver() throws(VFIOError) -> MigrationDriver {
        try MigrationDriver(device: migration)
    }
}
