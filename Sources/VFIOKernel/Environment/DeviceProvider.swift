// Device naming is a registry of providers: each one recognises a kind of name and opens the
// device it names. The kernel's kinds (PCI address, mdev UUID, sysfs path) are built in;
// others (the emulator's `mock:` devices) are registered by whoever links them, so what a VMM
// links carries no emulator.
import VFIOCore

/// Opens the devices whose names it recognises.
public protocol DeviceProvider: Sendable {
    /// A short name for messages ("PCI address", "mock").
    var kind: String { get }
    /// Opens the device `spec` names, or returns nil when `spec` is not a name of this kind
    /// (so the next provider is asked). Throws when the name is this kind's but the device
    /// cannot be opened.
    func open(_ spec: String, in environment: DeviceEnvironment) throws(VFIOError) -> VFIODevice?
}
