// Where devices are found and opened: the providers registered with the environment are asked
// in turn (the most recently registered first), then the built-in kernel ones.
import Synchronization
import VFIOCore

public final class DeviceEnvironment: Sendable {
    public let sysfsRoot: String
    public let devRoot: String
    private let registered = Mutex<[any DeviceProvider]>([])
    private let builtIn: [any DeviceProvider]

    /// The host's devices through sysfs and /dev/vfio.
    public init(sysfsRoot: String = "/sys", devRoot: String = "/dev") {
        self.sysfsRoot = sysfsRoot
        self.devRoot = devRoot
        self.builtIn = [PCIAddressProvider(), MdevUUIDProvider(), SysfsPathProvider()]
    }

    /// Adds a provider, asked before the ones already known.
    public func register(_ provider: any DeviceProvider) {
        registered.withLock { $0.insert(provider, at: 0) }
    }

    /// The providers in the order they are asked.
    public var providers: [any DeviceProvider] { registered.withLock { $0 } + builtIn }

    /// Opens a device by name: a PCI address, an mdev UUID, a sysfs device path, or any name a
    /// registered provider recognises.
    public func open(_ spec: String) throws(VFIOError) -> VFIODevice {
        for provider in providers {
            if let device = try provider.open(spec, in: self) { return device }
        }
        let kinds = providers.map(\.kind).joined(separator: ", ")
        throw VFIOError(.notFound, "no provider recognises this device name (known kinds: \(kinds))", device: spec)
    }
}
