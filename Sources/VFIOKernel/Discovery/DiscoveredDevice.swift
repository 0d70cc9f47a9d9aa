// A device named on the command line, resolved to what sysfs knows about it.
import Foundation

/// A PCI function or an mdev instance, with the facts opening it through VFIO needs.
public enum DiscoveredDevice: Sendable, Equatable, Codable {
    case pci(PCIDeviceInfo)
    case mdev(MdevDeviceInfo)

    /// The name `VFIO_GROUP_GET_DEVICE_FD` takes: the PCI address or the mdev UUID.
    public var vfioName: String {
        switch self {
        case .pci(let info): return info.address.description
        case .mdev(let info): return info.uuid
        }
    }

    public var iommuGroup: Int? {
        switch self {
        case .pci(let info): return info.iommuGroup
        case .mdev(let info): return info.iommuGroup
        }
    }

    public var numaNode: Int? {
        switch self {
        case .pci(let info): return info.numaNode
        case .mdev(let info): return info.numaNode
        }
    }

    public var driver: String? {
        switch self {
        case .pci(let info): return info.driver
        case .mdev(let info): return info.driver
        }
    }

    public var vfioCdev: String? {
        switch self {
        case .pci(let info): return info.vfioCdev
        case .mdev(let info): return info.vfioCdev
        }
    }

    public var sysfsPath: String {
        switch self {
        case .pci(let info): return info.sysfsPath
        case .mdev(let info): return info.sysfsPath
        }
    }

    // {"kind": "pci", "pci": {...}} or {"kind": "mdev", "mdev": {...}}
    enum CodingKeys: String, CodingKey { case kind, pci, mdev }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        switch try container.decode(String.self, forKey: .kind) {
        case "pci": self = .pci(try container.decode(PCIDeviceInfo.self, forKey: .pci))
        case "mdev": self = .mdev(try container.decode(MdevDeviceInfo.self, forKey: .mdev))
        case let other:
            throw DecodingError.dataCorruptedError(
                forKey: .kind, in: container, debugDescription: "unknown device kind \(other)")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .pci(let info):
            try container.encode("pci", forKey: .kind)
            try container.encode(info, forKey: .pci)
        case .mdev(let info):
            try container.encode("mdev", forKey: .kind)
            try container.encode(info, forKey: .mdev)
        }
    }
}

extension SysfsDiscovery {
    /// Resolves a device spec: a PCI address (`0000:06:0d.0`, `06:0d.0`), an mdev UUID, or a
    /// sysfs path of either (any path whose canonical form ends in the device's directory).
    public func resolve(_ spec: String) throws -> DiscoveredDevice {
        if spec.contains("/") { return try resolvePath(spec) }
        if UUID(uuidString: spec) != nil { return .mdev(try mdevDevice(uuid: spec)) }
        if let address = PCIAddress(spec) { return .pci(try pciDevice(address)) }

        // Say what looked wrong about a near miss rather than a generic "not recognised".
        if Self.looksLikeUUID(spec) { throw DiscoveryError.badUUID(spec) }
        if spec.contains(":") { _ = try PCIAddress(parsing: spec) }
        throw DiscoveryError.unrecognizedDeviceSpec(spec)
    }

    private func resolvePath(_ spec: String) throws -> DiscoveredDevice {
        let path = try deviceDirectory(spec, name: spec)
        let name = SysfsReader.basename(path)
        if let address = PCIAddress(name) { return .pci(try pciDevice(at: path, address: address)) }
        if UUID(uuidString: name) != nil { return .mdev(try mdevDevice(at: path, uuid: name.lowercased())) }
        throw DiscoveryError.unrecognizedDeviceSpec(spec)
    }

    private static func looksLikeUUID(_ text: String) -> Bool {
        text.count == 36 && text.filter { $0 == "-" }.count == 4
    }
}
