// Everything that can go wrong while reading device facts from sysfs, each naming the path.

/// A discovery failure. Every case names the path or text at fault and what was expected.
public enum DiscoveryError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The sysfs root directory does not exist (or is not a directory).
    case sysfsRootMissing(path: String)
    /// No device with this name exists where it was looked for.
    case deviceNotFound(name: String, path: String)
    /// No IOMMU group with this number exists.
    case iommuGroupNotFound(group: Int, path: String)
    /// A required attribute file or link is absent.
    case attributeMissing(path: String)
    /// An attribute exists but its content is not what the kernel writes there.
    case attributeUnparsable(path: String, raw: String, expected: String)
    /// An attribute exists but could not be read.
    case attributeUnreadable(path: String, reason: String)
    /// A symlink points at something that does not exist.
    case brokenSymlink(path: String, target: String)
    /// Text that should be a PCI address is not one.
    case badPCIAddress(String, reason: String)
    /// Text that should be an mdev UUID is not one.
    case badUUID(String)
    /// A device spec is neither a PCI address, an mdev UUID, nor a sysfs device path.
    case unrecognizedDeviceSpec(String)

    public var description: String {
        switch self {
        case .sysfsRootMissing(let path):
            return "sysfs root \(path) does not exist or is not a directory"
        case .deviceNotFound(let name, let path):
            return "device \(name) not found (no \(path))"
        case .iommuGroupNotFound(let group, let path):
            return "IOMMU group \(group) not found (no \(path))"
        case .attributeMissing(let path):
            return "sysfs attribute \(path) is missing"
        case .attributeUnparsable(let path, let raw, let expected):
            return "sysfs attribute \(path) holds \(Self.quoted(raw)), expected \(expected)"
        case .attributeUnreadable(let path, let reason):
            return "sysfs attribute \(path) could not be read: \(reason)"
        case .brokenSymlink(let path, let target):
            return "sysfs link \(path) points to \(target), which does not exist"
        case .badPCIAddress(let text, let reason):
            return "\(Self.quoted(text)) is not a PCI address (\(reason)); expected e.g. 0000:06:0d.0"
        case .badUUID(let text):
            return "\(Self.quoted(text)) is not an mdev UUID; expected e.g. 83b8f4f2-509f-382f-3c1e-e6bfe0fa1001"
        case .unrecognizedDeviceSpec(let text):
            return "\(Self.quoted(text)) is neither a PCI address, an mdev UUID, nor a sysfs device path"
        }
    }

    // Shows control characters (sysfs values end in a newline) so odd content is visible.
    private static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7f {
                    out += "\\u{\(String(scalar.value, radix: 16))}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
