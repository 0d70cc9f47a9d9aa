// Reads PCI devices, IOMMU groups and their relations from a sysfs tree.
import Foundation

/// Device discovery over a sysfs tree. `root` is `/sys` on a host; tests pass a fake tree.
///
/// Every read goes to the files at call time; nothing is cached, so a device that is
/// re-bound between calls is seen as it is now.
public struct SysfsDiscovery: Sendable {
    public let root: String
    let reader = SysfsReader()

    public init(root: String = "/sys") {
        var trimmed = root
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed.removeLast() }
        self.root = trimmed
    }

    var pciBusDirectory: String { root + "/bus/pci/devices" }

    func checkRoot() throws {
        guard reader.isDirectory(root) else { throw DiscoveryError.sysfsRootMissing(path: root) }
    }

    // MARK: PCI

    /// Addresses of all PCI functions in `bus/pci/devices`, sorted. Empty when the host has no PCI bus.
    public func pciAddresses() throws -> [PCIAddress] {
        try checkRoot()
        guard let names = try reader.list(pciBusDirectory) else { return [] }
        return try names.map { name in
            guard let address = PCIAddress(name) else {
                throw DiscoveryError.attributeUnparsable(
                    path: pciBusDirectory + "/" + name, raw: name, expected: "an entry named by a PCI address")
            }
            return address
        }.sorted()
    }

    /// Every PCI function, sorted by address. Throws on the first device that cannot be read;
    /// `report()` is the tolerant variant.
    public func pciDevices() throws -> [PCIDeviceInfo] {
        try pciAddresses().map { try pciDevice($0) }
    }

    /// One PCI function by address.
    public func pciDevice(_ address: PCIAddress) throws -> PCIDeviceInfo {
        try checkRoot()
        let busPath = pciBusDirectory + "/" + address.description
        return try pciDevice(at: try deviceDirectory(busPath, name: address.description), address: address)
    }

    /// Resolves a device entry to its canonical directory, telling a dangling link from an absent one.
    func deviceDirectory(_ path: String, name: String) throws -> String {
        if let canonical = reader.canonicalPath(path), reader.isDirectory(canonical) { return canonical }
        if let target = reader.rawLink(path) { throw DiscoveryError.brokenSymlink(path: path, target: target) }
        throw DiscoveryError.deviceNotFound(name: name, path: path)
    }

    /// Reads a PCI function from its (canonical) sysfs directory.
    func pciDevice(at path: String, address: PCIAddress) throws -> PCIDeviceInfo {
        func hex16(_ name: String) throws -> UInt16 { UInt16(try reader.hex(path + "/" + name, bits: 16)) }

        let numa = try numaNode(path + "/numa_node")
        return PCIDeviceInfo(
            address: address,
            vendorID: try hex16("vendor"),
            deviceID: try hex16("device"),
            subsystemVendorID: try hex16("subsystem_vendor"),
            subsystemDeviceID: try hex16("subsystem_device"),
            classCode: UInt32(try reader.hex(path + "/class", bits: 24)),
            revision: try reader.optionalHex(path + "/revision", bits: 8).map { UInt8($0) },
            driver: try reader.optionalLinkName(path + "/driver"),
            iommuGroup: try reader.optionalGroup(path + "/iommu_group"),
            numaNode: numa,
            physfn: try linkedAddress(path + "/physfn"),
            virtfns: try virtualFunctions(of: path),
            sriovTotalVFs: try reader.optionalInt(path + "/sriov_totalvfs"),
            sriovNumVFs: try reader.optionalInt(path + "/sriov_numvfs"),
            vfioCdev: try reader.vfioCdev(path),
            sysfsPath: path
        )
    }

    /// `numa_node`: -1 (or an absent file on kernels without NUMA) means no node.
    func numaNode(_ path: String) throws -> Int? {
        guard let node = try reader.optionalInt(path) else { return nil }
        if node == -1 { return nil }
        guard node >= 0 else {
            throw DiscoveryError.attributeUnparsable(path: path, raw: String(node), expected: "-1 or a node number")
        }
        return node
    }

    private func linkedAddress(_ path: String) throws -> PCIAddress? {
        guard let name = try reader.optionalLinkName(path) else { return nil }
        guard let address = PCIAddress(name) else {
            throw DiscoveryError.attributeUnparsable(path: path, raw: name, expected: "a link to a PCI device")
        }
        return address
    }

    /// `virtfn0`, `virtfn1`, ... in numeric order (so `virtfn10` follows `virtfn9`).
    private func virtualFunctions(of path: String) throws -> [PCIAddress] {
        let entries = try reader.list(path) ?? []
        let indexed: [(Int, String)] = entries.compactMap { name in
            guard name.hasPrefix("virtfn"), let index = Int(name.dropFirst("virtfn".count)) else { return nil }
            return (index, name)
        }
        return try indexed.sorted { $0.0 < $1.0 }.map { _, name in
            guard let address = try linkedAddress(path + "/" + name) else {
                throw DiscoveryError.attributeMissing(path: path + "/" + name)
            }
            return address
        }
    }

    // MARK: IOMMU groups

    /// Names of the devices in IOMMU group `group` (PCI addresses, mdev UUIDs), sorted.
    public func iommuGroupDevices(_ group: Int) throws -> [String] {
        try checkRoot()
        let groupPath = root + "/kernel/iommu_groups/\(group)"
        guard reader.isDirectory(groupPath) else {
            throw DiscoveryError.iommuGroupNotFound(group: group, path: groupPath)
        }
        guard let names = try reader.list(groupPath + "/devices") else {
            throw DiscoveryError.attributeMissing(path: groupPath + "/devices")
        }
        return names
    }
}
