// What sysfs says about mediated devices and the types their parents offer.

/// One mediated device instance, from `/sys/bus/mdev/devices/<uuid>`.
public struct MdevDeviceInfo: Sendable, Equatable, Codable {
    /// Lower-case UUID; also the name passed to `VFIO_GROUP_GET_DEVICE_FD`.
    public var uuid: String
    /// Name of the parent device: a PCI address for PCI parents, else the sysfs node name (`mtty`).
    public var parent: String
    /// The parent's canonical sysfs directory.
    public var parentPath: String
    /// The type id, e.g. `mtty-2` or `i915-GVTg_V5_4`.
    public var typeID: String
    /// The type's human name (`name` attribute), if the parent provides one.
    public var typeName: String?
    /// The VFIO device API (`device_api`), e.g. `vfio-pci`.
    public var deviceAPI: String?
    /// The mdev driver bound to the instance (e.g. `mtty`, `nvidia-vgpu-vfio`); nil when unbound.
    public var driver: String?
    public var iommuGroup: Int?
    /// The parent's NUMA node; nil when it has none.
    public var numaNode: Int?
    public var vfioCdev: String?
    /// The instance's canonical sysfs directory (a child of `parentPath`).
    public var sysfsPath: String

    public init(
        uuid: String, parent: String, parentPath: String, typeID: String,
        typeName: String? = nil, deviceAPI: String? = nil, driver: String? = nil, iommuGroup: Int? = nil,
        numaNode: Int? = nil, vfioCdev: String? = nil, sysfsPath: String
    ) {
        self.uuid = uuid
        self.parent = parent
        self.parentPath = parentPath
        self.typeID = typeID
        self.typeName = typeName
        self.deviceAPI = deviceAPI
        self.driver = driver
        self.iommuGroup = iommuGroup
        self.numaNode = numaNode
        self.vfioCdev = vfioCdev
        self.sysfsPath = sysfsPath
    }

    enum CodingKeys: String, CodingKey {
        case uuid, parent, parentPath, typeID, typeName, deviceAPI, driver, iommuGroup, numaNode, vfioCdev, sysfsPath
    }
}

/// One entry of a parent's `mdev_supported_types/`.
public struct MdevTypeInfo: Sendable, Equatable, Codable {
    public var parent: String
    public var typeID: String
    public var name: String?
    public var deviceAPI: String?
    public var availableInstances: Int?
    public var description: String?
    /// UUIDs of existing instances of this type (from `devices/`), sorted.
    public var instances: [String]
    public var sysfsPath: String

    public init(
        parent: String, typeID: String, name: String? = nil, deviceAPI: String? = nil,
        availableInstances: Int? = nil, description: String? = nil, instances: [String] = [],
        sysfsPath: String
    ) {
        self.parent = parent
        self.typeID = typeID
        self.name = name
        self.deviceAPI = deviceAPI
        self.availableInstances = availableInstances
        self.description = description
        self.instances = instances
        self.sysfsPath = sysfsPath
    }

    enum CodingKeys: String, CodingKey {
        case parent, typeID, name, deviceAPI, availableInstances, description, instances, sysfsPath
    }
}
