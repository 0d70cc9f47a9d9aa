// What sysfs says about one PCI function.

/// One PCI function as read from `/sys/bus/pci/devices/<address>`.
public struct PCIDeviceInfo: Sendable, Equatable, Codable {
    public var address: PCIAddress
    public var vendorID: UInt16
    public var deviceID: UInt16
    public var subsystemVendorID: UInt16
    public var subsystemDeviceID: UInt16
    /// 24-bit class code: base class, subclass, programming interface (`0x020000` = Ethernet).
    public var classCode: UInt32
    public var revision: UInt8?
    /// Name of the bound driver; nil when unbound.
    public var driver: String?
    public var iommuGroup: Int?
    /// nil when the kernel reports -1 (no affinity) or has no NUMA support.
    public var numaNode: Int?
    /// For a virtual function: its physical function.
    public var physfn: PCIAddress?
    /// For a physical function: its enabled virtual functions in VF-index order.
    public var virtfns: [PCIAddress]
    /// For an SR-IOV capable physical function: `sriov_totalvfs` and `sriov_numvfs`.
    public var sriovTotalVFs: Int?
    public var sriovNumVFs: Int?
    /// The VFIO char device name (`vfio3` → `/dev/vfio/devices/vfio3`), kernels ≥ 6.1.
    public var vfioCdev: String?
    /// The device's canonical sysfs directory (symlinks resolved).
    public var sysfsPath: String

    public init(
        address: PCIAddress, vendorID: UInt16, deviceID: UInt16,
        subsystemVendorID: UInt16, subsystemDeviceID: UInt16, classCode: UInt32,
        revision: UInt8? = nil, driver: String? = nil, iommuGroup: Int? = nil, numaNode: Int? = nil,
        physfn: PCIAddress? = nil, virtfns: [PCIAddress] = [],
        sriovTotalVFs: Int? = nil, sriovNumVFs: Int? = nil,
        vfioCdev: String? = nil, sysfsPath: String
    ) {
        self.address = address
        self.vendorID = vendorID
        self.deviceID = deviceID
        self.subsystemVendorID = subsystemVendorID
        self.subsystemDeviceID = subsystemDeviceID
        self.classCode = classCode
        self.revision = revision
        self.driver = driver
        self.iommuGroup = iommuGroup
        self.numaNode = numaNode
        self.physfn = physfn
        self.virtfns = virtfns
        self.sriovTotalVFs = sriovTotalVFs
        self.sriovNumVFs = sriovNumVFs
        self.vfioCdev = vfioCdev
        self.sysfsPath = sysfsPath
    }

    // Spelled out so the JSON of `vfio-migrate list --json` keeps its keys across refactors.
    enum CodingKeys: String, CodingKey {
        case address, vendorID, deviceID, subsystemVendorID, subsystemDeviceID, classCode, revision
        case driver, iommuGroup, numaNode, physfn, virtfns, sriovTotalVFs, sriovNumVFs, vfioCdev, sysfsPath
    }

    /// The device's place in SR-IOV.
    public var sriovRole: SRIOVRole {
        if let physfn { return .virtualFunction(of: physfn) }
        if let total = sriovTotalVFs, total > 0 {
            return .physicalFunction(enabledVFs: sriovNumVFs ?? virtfns.count, totalVFs: total)
        }
        if !virtfns.isEmpty { return .physicalFunction(enabledVFs: virtfns.count, totalVFs: virtfns.count) }
        return .none
    }

    /// Whether the bound driver is a VFIO driver (vfio-pci or a vendor variant such as mlx5_vfio_pci).
    public var isBoundToVFIO: Bool {
        guard let driver else { return false }
        return driver == "vfio-pci" || driver.hasSuffix("_vfio_pci") || driver.hasSuffix("-vfio-pci")
    }

    /// `8086:1515`
    public var vendorDevice: String {
        "\(PCIAddress.hex(UInt32(vendorID), width: 4)):\(PCIAddress.hex(UInt32(deviceID), width: 4))"
    }

    /// A short name for the base class and subclass (`ethernet`, `nvme`, `vga`, ...).
    public var className: String { PCIClassName.name(for: classCode) }
}

/// Where a PCI function sits in SR-IOV.
public enum SRIOVRole: Sendable, Equatable {
    case none
    case physicalFunction(enabledVFs: Int, totalVFs: Int)
    case virtualFunction(of: PCIAddress)

    /// `PF 2/8`, `VF of 0000:06:00.0`, or `-`.
    public var summary: String {
        switch self {
        case .none: return "-"
        case .physicalFunction(let enabled, let total): return "PF \(enabled)/\(total)"
        case .virtualFunction(let pf): return "VF of \(pf)"
        }
    }
}

/// Short names for the PCI class codes one meets on VFIO hosts.
enum PCIClassName {
    static func name(for classCode: UInt32) -> String {
        let base = (classCode >> 16) & 0xff
        let sub = (classCode >> 8) & 0xff
        switch (base, sub) {
        case (0x01, 0x06): return "sata"
        case (0x01, 0x07): return "sas"
        case (0x01, 0x08): return "nvme"
        case (0x01, _): return "storage"
        case (0x02, 0x00): return "ethernet"
        case (0x02, 0x07): return "infiniband"
        case (0x02, _): return "network"
        case (0x03, 0x00): return "vga"
        case (0x03, 0x02): return "3d"
        case (0x03, _): return "display"
        case (0x04, _): return "multimedia"
        case (0x05, _): return "memory"
        case (0x06, 0x00): return "host-bridge"
        case (0x06, 0x01): return "isa-bridge"
        case (0x06, 0x04): return "pci-bridge"
        case (0x06, _): return "bridge"
        case (0x07, _): return "communication"
        case (0x08, _): return "system"
        case (0x0c, 0x03): return "usb"
        case (0x0c, _): return "serial-bus"
        case (0x10, _): return "crypto"
        case (0x12, _): return "accelerator"
        case (0x00, _): return "unclassified"
        case (0xff, _): return "unassigned"
        default: return "class-" + PCIAddress.hex(base, width: 2)
        }
    }
}
