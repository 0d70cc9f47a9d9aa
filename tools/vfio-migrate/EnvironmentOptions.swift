import ArgumentParser
import VFIOMigration
import VFIOMockDevices

struct EnvironmentOptions: ParsableArguments {
    @Option(help: "Root of the sysfs tree used to find devices.") var sysfsRoot = "/sys"
    @Option(help: "Root of the device tree holding vfio/.") var devRoot = "/dev"

    /// The host's devices, plus `mock:` devices in an emulator of this process.
    func make() -> DeviceEnvironment { DeviceEnvironment.withMockDevices(sysfsRoot: sysfsRoot, devRoot: devRoot) }
}
