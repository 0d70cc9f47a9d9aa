import ArgumentParser
import VFIOMigration

struct EnvironmentOptions: ParsableArguments {
    @Option(help: "Root of the sysfs tree used to find devices.") var sysfsRoot = "/sys"
    @Option(help: "Root of the device tree holding vfio/.") var devRoot = "/dev"

    func make() -> DeviceEnvironment { DeviceEnvironment(sysfsRoot: sysfsRoot, devRoot: devRoot) }
}
