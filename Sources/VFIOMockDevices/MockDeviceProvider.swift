// `mock:NAME?opts` devices: the VFIO emulator registered as a device provider. The CLI and
// test suites register it; a VMM that embeds the engine never links it.
import VFIOCore
import VFIOKernel
import VFIOMock
import VFIOStream

/// Opens `mock:` devices in one emulator, creating each on first use so a save and a load in
/// one process can name the same device.
public final class MockDeviceProvider: DeviceProvider {
    public let kind = "mock"
    public let kernel: MockKernel

    public init(kernel: MockKernel = MockKernel()) { self.kernel = kernel }

    public func open(_ spec: String, in environment: DeviceEnvironment) throws(VFIOError) -> VFIODevice? {
        guard spec.hasPrefix("mock:") else { return nil }
        let configuration: MockDeviceConfiguration
        do {
            configuration = try MockDeviceConfiguration(spec: spec)
        } catch {
            throw VFIOError(.invalidArgument, "bad mock device spec: \(error)", device: spec)
        }
        let mock: MockDevice
        if let existing = kernel.device(named: configuration.name) {
            guard !spec.contains("?") || existing.configuration == configuration else {
                throw VFIOError(.invalidArgument, "mock device \(configuration.name) already exists with other options", device: spec)
            }
            mock = existing
        } else {
            mock = kernel.addDevice(configuration)
        }
        return try VFIODevice.open(
            vfioName: mock.kernelName, groupNumber: mock.groupNumber, kernel: kernel, devRoot: "/dev",
            name: "mock:\(mock.name)", identity: Self.identity(of: mock.configuration), context: mock)
    }

    /// What a stream descriptor says about a mock device: its driver, mdev type, state size and
    /// what a target must share to take its state (compat id, block size, content source).
    /// Fault options are not part of it.
    static func identity(of c: MockDeviceConfiguration) -> DeviceIdentity {
        DeviceIdentity(
            driverName: c.driverName, driverVersion: c.driverVersion, mdev: c.mdevType.map { MdevDefinition(type: $0) },
            vendorCompatibility: c.vendorCompatibility, stateSize: c.stateSize)
    }
}

extension VFIODevice {
    /// The emulated device behind a `mock:` device, nil for any other.
    public var mock: MockDevice? { context as? MockDevice }
}

extension DeviceEnvironment {
    /// The host's devices plus `mock:` devices in `kernel`.
    public static func withMockDevices(
        kernel: MockKernel = MockKernel(), sysfsRoot: String = "/sys", devRoot: String = "/dev"
    ) -> DeviceEnvironment {
        let environment = DeviceEnvironment(sysfsRoot: sysfsRoot, devRoot: devRoot)
        environment.register(MockDeviceProvider(kernel: kernel))
        return environment
    }

    /// The emulator of the first registered mock provider.
    public var mockKernel: MockKernel? {
        providers.lazy.compactMap { ($0 as? MockDeviceProvider)?.kernel }.first
    }
}
