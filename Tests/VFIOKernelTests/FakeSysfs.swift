// A throw-away sysfs-like tree laid out as the kernel lays it out, with real relative symlinks.
import Foundation

/// Builds `<tmp>/sys` and `<tmp>/dev` for discovery tests; removed when released.
/// Paths given to its methods are relative to the sysfs root.
final class FakeSysfs {
    let base: String
    let root: String
    let dev: String

    init() throws {
        base = FileManager.default.temporaryDirectory.path + "/fake-sysfs-" + UUID().uuidString
        root = base + "/sys"
        dev = base + "/dev"
        for dir in ["bus/pci/devices", "bus/pci/drivers", "devices/pci0000:00", "kernel/iommu_groups", "module"] {
            try mkdir(dir)
        }
        try FileManager.default.createDirectory(atPath: dev, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: base) }

    // MARK: primitives

    func mkdir(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: root + "/" + path, withIntermediateDirectories: true)
    }

    /// Writes an attribute the way the kernel shows it: the value and a newline.
    func write(_ path: String, _ value: String, newline: Bool = true) throws {
        try mkdir(Self.parent(path))
        try (value + (newline ? "\n" : "")).write(toFile: root + "/" + path, atomically: false, encoding: .utf8)
    }

    /// Makes `path` a relative symlink to `target` (both relative to the root), as sysfs does.
    func link(_ path: String, to target: String) throws {
        try mkdir(Self.parent(path))
        try FileManager.default.createSymbolicLink(
            atPath: root + "/" + path, withDestinationPath: Self.relative(from: Self.parent(path), to: target))
    }

    func remove(_ path: String) throws {
        try FileManager.default.removeItem(atPath: root + "/" + path)
    }

    /// Creates a device node stand-in under the fake /dev.
    func touchDev(_ path: String) throws {
        let full = dev + "/" + path
        try FileManager.default.createDirectory(atPath: "/" + Self.parent(full), withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: full, contents: nil) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: full])
        }
    }

    // MARK: PCI

    struct PCIFunction {
        var address: String
        var vendor = "0x8086"
        var device = "0x1572"
        var subsystemVendor = "0x8086"
        var subsystemDevice = "0x0007"
        var classCode = "0x020000"
        var revision: String? = "0x01"
        var numaNode: String? = "-1"
        var driver: String? = nil
        var iommuGroup: Int? = nil
        var vfioCdev: String? = nil
        var totalVFs: Int? = nil
    }

    static func devicePath(_ address: String) -> String { "devices/pci0000:00/" + address }

    /// Adds a PCI function under `devices/pci0000:00/` with its bus link, driver and group links.
    @discardableResult
    func addPCI(_ function: PCIFunction) throws -> String {
        let path = Self.devicePath(function.address)
        try write(path + "/vendor", function.vendor)
        try write(path + "/device", function.device)
        try write(path + "/subsystem_vendor", function.subsystemVendor)
        try write(path + "/subsystem_device", function.subsystemDevice)
        try write(path + "/class", function.classCode)
        if let revision = function.revision { try write(path + "/revision", revision) }
        if let numa = function.numaNode { try write(path + "/numa_node", numa) }
        try link("bus/pci/devices/" + function.address, to: path)
        if let driver = function.driver { try bind(function.address, to: driver) }
        if let group = function.iommuGroup { try addToGroup(group, devicePath: path) }
        if let cdev = function.vfioCdev { try mkdir(path + "/vfio-dev/" + cdev) }
        if let total = function.totalVFs {
            try write(path + "/sriov_totalvfs", String(total))
            try write(path + "/sriov_numvfs", "0")
        }
        return path
    }

    func bind(_ address: String, to driver: String) throws {
        let driverPath = "bus/pci/drivers/" + driver
        try mkdir(driverPath)
        try link(Self.devicePath(address) + "/driver", to: driverPath)
        try link(driverPath + "/" + address, to: Self.devicePath(address))
    }

    func addToGroup(_ group: Int, devicePath: String) throws {
        let groupPath = "kernel/iommu_groups/\(group)"
        try link(devicePath + "/iommu_group", to: groupPath)
        try link(groupPath + "/devices/" + Self.name(devicePath), to: devicePath)
    }

    /// Links VF `vf` as `virtfn<index>` of `pf` and the VF's `physfn` back; bumps `sriov_numvfs`.
    func addVF(_ vf: String, toPF pf: String, index: Int) throws {
        try link(Self.devicePath(pf) + "/virtfn\(index)", to: Self.devicePath(vf))
        try link(Self.devicePath(vf) + "/physfn", to: Self.devicePath(pf))
        let numPath = root + "/" + Self.devicePath(pf) + "/sriov_numvfs"
        let current = (try? String(contentsOfFile: numPath, encoding: .utf8)).flatMap {
            Int($0.trimmingCharacters(in: .whitespacesAndNewlines))
        } ?? 0
        try write(Self.devicePath(pf) + "/sriov_numvfs", String(current + 1))
    }

    // MARK: mdev

    struct MdevType {
        var id: String
        var name: String?
        var deviceAPI = "vfio-pci"
        var availableInstances = 4
        var description: String? = nil
    }

    /// Registers `devicePath` as an mdev parent named `name` offering `types`.
    func addMdevParent(name: String, devicePath: String, types: [MdevType]) throws {
        try mkdir("bus/mdev/devices")
        try link("class/mdev_bus/" + name, to: devicePath)
        for type in types {
            let typePath = devicePath + "/mdev_supported_types/" + type.id
            if let typeName = type.name { try write(typePath + "/name", typeName) }
            try write(typePath + "/device_api", type.deviceAPI)
            try write(typePath + "/available_instances", String(type.availableInstances))
            if let description = type.description { try write(typePath + "/description", description) }
            try write(typePath + "/create", "", newline: false)
            try mkdir(typePath + "/devices")
        }
    }

    /// Creates an mdev instance as a child of its parent, as writing its UUID to `create` would.
    @discardableResult
    func addMdev(uuid: String, parentPath: String, typeID: String, iommuGroup: Int?, driver: String?) throws -> String {
        let path = parentPath + "/" + uuid
        let typePath = parentPath + "/mdev_supported_types/" + typeID
        try link(path + "/mdev_type", to: typePath)
        try link(typePath + "/devices/" + uuid, to: path)
        try link("bus/mdev/devices/" + uuid, to: path)
        try write(path + "/remove", "", newline: false)
        if let group = iommuGroup { try addToGroup(group, devicePath: path) }
        if let driver {
            let driverPath = "bus/mdev/drivers/" + driver
            try mkdir(driverPath)
            try link(path + "/driver", to: driverPath)
        }
        return path
    }

    // MARK: path helpers

    static func parent(_ path: String) -> String {
        path.split(separator: "/").dropLast().joined(separator: "/")
    }

    static func name(_ path: String) -> String {
        String(path.split(separator: "/").last ?? "")
    }

    /// The relative path from directory `from` to `to`, through their common prefix.
    static func relative(from: String, to: String) -> String {
        let a = from.split(separator: "/")
        let b = to.split(separator: "/")
        var common = 0
        while common < a.count, common < b.count, a[common] == b[common] { common += 1 }
        let ups = Array(repeating: "..", count: a.count - common)
        return (ups + b[common...].map(String.init)).joined(separator: "/")
    }
}

/// The host most tests start from:
/// - PF 0000:06:00.0 (i40e, group 10, NUMA 1, 4 VFs possible) with VFs 0000:06:02.0 and
///   0000:06:02.1 bound to vfio-pci in groups 12 and 13, with cdevs vfio0 and vfio1;
/// - an unbound audio function 0000:00:1f.3 in group 7, NUMA -1;
/// - a GPU 0000:3b:00.0 (NUMA 1) that is an mdev parent with types nvidia-222 and nvidia-223
///   and one nvidia-222 instance in group 40.
enum StandardHost {
    static let pf = "0000:06:00.0"
    static let vf0 = "0000:06:02.0"
    static let vf1 = "0000:06:02.1"
    static let audio = "0000:00:1f.3"
    static let gpu = "0000:3b:00.0"
    static let mdevUUID = "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001"

    static func make() throws -> FakeSysfs {
        let fake = try FakeSysfs()
        try fake.addPCI(.init(address: pf, numaNode: "1", driver: "i40e", iommuGroup: 10, totalVFs: 4))
        try fake.addPCI(.init(address: vf0, device: "0x154c", numaNode: "1", driver: "vfio-pci", iommuGroup: 12, vfioCdev: "vfio0"))
        try fake.addPCI(.init(address: vf1, device: "0x154c", numaNode: "1", driver: "vfio-pci", iommuGroup: 13, vfioCdev: "vfio1"))
        try fake.addVF(vf0, toPF: pf, index: 0)
        try fake.addVF(vf1, toPF: pf, index: 1)
        try fake.addPCI(.init(
            address: audio, device: "0xa348", subsystemVendor: "0x1028", subsystemDevice: "0x0869",
            classCode: "0x040300", revision: "0x10", numaNode: "-1", iommuGroup: 7))
        let gpuPath = try fake.addPCI(.init(
            address: gpu, vendor: "0x10de", device: "0x1eb8", subsystemVendor: "0x10de", subsystemDevice: "0x12a2",
            classCode: "0x030200", revision: "0xa1", numaNode: "1", driver: "nvidia", iommuGroup: 30))
        try fake.addMdevParent(name: gpu, devicePath: gpuPath, types: [
            .init(id: "nvidia-222", name: "GRID T4-1B", availableInstances: 15, description: "num_heads=4, frl_config=45"),
            .init(id: "nvidia-223", name: "GRID T4-2B", availableInstances: 8),
        ])
        try fake.addMdev(uuid: mdevUUID, parentPath: gpuPath, typeID: "nvidia-222", iommuGroup: 40, driver: "nvidia-vgpu-vfio")
        return fake
    }
}
