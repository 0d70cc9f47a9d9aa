// Mediated devices: instances on the mdev bus and the types their parents offer.
import Foundation

extension SysfsDiscovery {
    var mdevBusDirectory: String { root + "/bus/mdev/devices" }
    var mdevParentDirectory: String { root + "/class/mdev_bus" }

    /// Every mdev instance, sorted by UUID. Empty when the mdev bus is absent (module not loaded).
    public func mdevDevices() throws -> [MdevDeviceInfo] {
        try mdevUUIDs().map { try mdevDevice(uuid: $0) }
    }

    /// UUIDs on the mdev bus, sorted.
    public func mdevUUIDs() throws -> [String] {
        try checkRoot()
        guard let names = try reader.list(mdevBusDirectory) else { return [] }
        for name in names where UUID(uuidString: name) == nil {
            throw DiscoveryError.attributeUnparsable(
                path: mdevBusDirectory + "/" + name, raw: name, expected: "an entry named by a UUID")
        }
        return names
    }

    /// One mdev instance by UUID (any letter case).
    public func mdevDevice(uuid: String) throws -> MdevDeviceInfo {
        guard UUID(uuidString: uuid) != nil else { throw DiscoveryError.badUUID(uuid) }
        try checkRoot()
        let name = uuid.lowercased()  // the kernel names instances in lower case
        let path = try deviceDirectory(mdevBusDirectory + "/" + name, name: name)
        return try mdevDevice(at: path, uuid: name)
    }

    /// Reads an mdev instance from its canonical directory, whose parent directory is the parent device.
    func mdevDevice(at path: String, uuid: String) throws -> MdevDeviceInfo {
        let typeLink = path + "/mdev_type"
        guard let typeID = try reader.optionalLinkName(typeLink) else {
            throw DiscoveryError.attributeMissing(path: typeLink)
        }
        let parentPath = SysfsReader.dirname(path)
        return MdevDeviceInfo(
            uuid: uuid,
            parent: SysfsReader.basename(parentPath),
            parentPath: parentPath,
            typeID: typeID,
            typeName: try reader.optionalString(typeLink + "/name"),
            deviceAPI: try reader.optionalString(typeLink + "/device_api"),
            driver: try reader.optionalLinkName(path + "/driver"),
            iommuGroup: try reader.optionalGroup(path + "/iommu_group"),
            numaNode: try numaNode(parentPath + "/numa_node"),
            vfioCdev: try reader.vfioCdev(path),
            sysfsPath: path
        )
    }

    /// Names of registered mdev parents (`class/mdev_bus`), sorted.
    public func mdevParents() throws -> [String] {
        try checkRoot()
        return try reader.list(mdevParentDirectory) ?? []
    }

    /// The types a parent offers, sorted by type id. `parent` is its name in `class/mdev_bus`
    /// (a PCI address for PCI parents).
    public func mdevTypes(parent: String) throws -> [MdevTypeInfo] {
        try checkRoot()
        let parentPath = try deviceDirectory(mdevParentDirectory + "/" + parent, name: parent)
        let typesPath = parentPath + "/mdev_supported_types"
        guard let typeIDs = try reader.list(typesPath) else {
            throw DiscoveryError.attributeMissing(path: typesPath)
        }
        return try typeIDs.map { typeID in
            let typePath = typesPath + "/" + typeID
            return MdevTypeInfo(
                parent: parent,
                typeID: typeID,
                name: try reader.optionalString(typePath + "/name"),
                deviceAPI: try reader.optionalString(typePath + "/device_api"),
                availableInstances: try reader.optionalInt(typePath + "/available_instances"),
                description: try reader.optionalString(typePath + "/description"),
                instances: try reader.list(typePath + "/devices") ?? [],
                sysfsPath: typePath
            )
        }
    }
}
