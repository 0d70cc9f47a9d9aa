// What a stream says about each device so a target can be checked before it resumes.

/// VFIO_MIGRATION_* bits as the kernel reports them (a u64 in the migration feature).
public struct MigrationFlags: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    public static let stopCopy = MigrationFlags(rawValue: 1 << 0)
    public static let p2p = MigrationFlags(rawValue: 1 << 1)
    public static let preCopy = MigrationFlags(rawValue: 1 << 2)

    static let named: [(MigrationFlags, String)] = [(.stopCopy, "STOP_COPY"), (.p2p, "P2P"), (.preCopy, "PRE_COPY")]

    /// Names of the set bits, unknown bits as hex ("0x10"), in bit order.
    public var names: [String] {
        var result: [String] = []
        var rest = rawValue
        for (flag, name) in Self.named where contains(flag) {
            result.append(name)
            rest &= ~flag.rawValue
        }
        var bit: UInt64 = 1
        while rest != 0 {
            if rest & bit != 0 {
                result.append(hex(bit))
                rest &= ~bit
            }
            bit <<= 1
        }
        return result
    }

    public var description: String { names.isEmpty ? "none" : names.joined(separator: "|") }
}

extension MigrationFlags: Codable {
    /// JSON: an array of names, e.g. ["STOP_COPY", "PRE_COPY"]; unknown bits as "0x..".
    public init(from decoder: Decoder) throws {
        var container = try decoder.unkeyedContainer()
        var raw: UInt64 = 0
        while !container.isAtEnd {
            let name = try container.decode(String.self)
            if let (flag, _) = Self.named.first(where: { $0.1 == name }) {
                raw |= flag.rawValue
            } else if let bit = parseHex(name, as: UInt64.self) {
                raw |= bit
            } else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "unknown migration flag \(name)")
            }
        }
        self.init(rawValue: raw)
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.unkeyedContainer()
        for name in names { try container.encode(name) }
    }
}

/// PCI identity of a device (config space 0x00-0x0B and 0x2C-0x2F).
public struct PCIIdentity: Sendable, Hashable {
    public var vendorID: UInt16
    public var deviceID: UInt16
    public var subsystemVendorID: UInt16
    public var subsystemDeviceID: UInt16
    /// Informational: not compared (see docs/stream-format.md, Compatibility).
    public var revision: UInt8
    /// 24 bits: base class << 16 | subclass << 8 | programming interface.
    public var classCode: UInt32

    public init(
        vendorID: UInt16, deviceID: UInt16, subsystemVendorID: UInt16, subsystemDeviceID: UInt16,
        revision: UInt8, classCode: UInt32
    ) {
        precondition(classCode <= 0xFF_FFFF, "PCI class code \(hex(classCode)) wider than 24 bits")
        self.vendorID = vendorID
        self.deviceID = deviceID
        self.subsystemVendorID = subsystemVendorID
        self.subsystemDeviceID = subsystemDeviceID
        self.revision = revision
        self.classCode = classCode
    }
}

extension PCIIdentity: Codable {
    enum CodingKeys: String, CodingKey {
        case vendorID = "vendor", deviceID = "device", subsystemVendorID = "subsystem_vendor"
        case subsystemDeviceID = "subsystem_device", revision, classCode = "class"
    }

    /// JSON uses "0x8086"-style hex strings, as lspci and sysfs print them.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func field<T: FixedWidthInteger>(_ key: CodingKeys, _: T.Type) throws -> T {
            let text = try c.decode(String.self, forKey: key)
            guard let value = parseHex(text, as: T.self) else {
                throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: "not a hex number: \(text)")
            }
            return value
        }
        let classCode = try field(.classCode, UInt32.self)
        guard classCode <= 0xFF_FFFF else {
            throw DecodingError.dataCorruptedError(forKey: .classCode, in: c, debugDescription: "class code wider than 24 bits")
        }
        self.init(
            vendorID: try field(.vendorID, UInt16.self), deviceID: try field(.deviceID, UInt16.self),
            subsystemVendorID: try field(.subsystemVendorID, UInt16.self),
            subsystemDeviceID: try field(.subsystemDeviceID, UInt16.self),
            revision: try field(.revision, UInt8.self), classCode: classCode)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(paddedHex(vendorID, digits: 4), forKey: .vendorID)
        try c.encode(paddedHex(deviceID, digits: 4), forKey: .deviceID)
        try c.encode(paddedHex(subsystemVendorID, digits: 4), forKey: .subsystemVendorID)
        try c.encode(paddedHex(subsystemDeviceID, digits: 4), forKey: .subsystemDeviceID)
        try c.encode(paddedHex(revision, digits: 2), forKey: .revision)
        try c.encode(paddedHex(classCode, digits: 6), forKey: .classCode)
    }
}

/// One mdev attribute; order and repetition matter (vfio-ap assigns several domains).
public struct MdevAttribute: Sendable, Hashable {
    public var name: String
    public var value: String
    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// An mdev's type and attributes, in the JSON shape of an mdevctl device definition:
/// {"mdev_type": "...", "attrs": [{"name": "value"}, ...]}.
public struct MdevDefinition: Sendable, Hashable {
    public var type: String
    public var attributes: [MdevAttribute]
    public init(type: String, attributes: [MdevAttribute] = []) {
        self.type = type
        self.attributes = attributes
    }
}

extension MdevDefinition: Codable {
    enum CodingKeys: String, CodingKey {
        case type = "mdev_type", attributes = "attrs"
    }

    struct AttributeKey: CodingKey {
        let stringValue: String
        init(stringValue: String) { self.stringValue = stringValue }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        type = try c.decode(String.self, forKey: .type)
        attributes = []
        guard c.contains(.attributes) else { return }
        var list = try c.nestedUnkeyedContainer(forKey: .attributes)
        while !list.isAtEnd {
            let entry = try list.nestedContainer(keyedBy: AttributeKey.self)
            guard entry.allKeys.count == 1, let key = entry.allKeys.first else {
                throw DecodingError.dataCorruptedError(
                    in: list, debugDescription: "each mdev attribute is an object with exactly one key")
            }
            attributes.append(MdevAttribute(name: key.stringValue, value: try entry.decode(String.self, forKey: key)))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(type, forKey: .type)
        var list = c.nestedUnkeyedContainer(forKey: .attributes)
        for attribute in attributes {
            var entry = list.nestedContainer(keyedBy: AttributeKey.self)
            try entry.encode(attribute.value, forKey: AttributeKey(stringValue: attribute.name))
        }
    }
}

/// A device's compatibility descriptor, one per device in the stream header.
public struct DeviceDescriptor: Sendable, Hashable, Codable {
    /// Informational (PCI address, mdev UUID, mock name); never compared.
    public var name: String
    /// The VFIO device API, e.g. "vfio-pci", "vfio-ccw", "vfio-ap".
    public var deviceAPI: String
    /// Vendor (variant) driver name, e.g. "mlx5_vfio_pci".
    public var driverName: String
    /// Driver version string; its leading decimal number is the "major" that must match.
    public var driverVersion: String
    /// PCI identity, for PCI devices.
    public var pci: PCIIdentity?
    /// mdev type and attributes, for mediated devices.
    public var mdev: MdevDefinition?
    /// VFIO_MIGRATION_* flags the source device reported.
    public var migrationFlags: MigrationFlags
    /// Device state size expected, when the source knows it (informational).
    public var expectedStateSize: UInt64?
    /// Opaque vendor compatibility string; compared for equality only.
    public var vendorCompatibility: String

    public init(
        name: String = "", deviceAPI: String, driverName: String, driverVersion: String,
        pci: PCIIdentity? = nil, mdev: MdevDefinition? = nil, migrationFlags: MigrationFlags,
        expectedStateSize: UInt64? = nil, vendorCompatibility: String = ""
    ) {
        self.name = name
        self.deviceAPI = deviceAPI
        self.driverName = driverName
        self.driverVersion = driverVersion
        self.pci = pci
        self.mdev = mdev
        self.migrationFlags = migrationFlags
        self.expectedStateSize = expectedStateSize
        self.vendorCompatibility = vendorCompatibility
    }
}

/// Where and when a stream was written (informational).
public struct HostIdentity: Sendable, Hashable, Codable {
    public var hostName: String
    /// /etc/machine-id of the source host, when readable.
    public var machineID: String
    /// `uname -r` of the source host.
    public var kernelRelease: String

    public init(hostName: String = "", machineID: String = "", kernelRelease: String = "") {
        self.hostName = hostName
        self.machineID = machineID
        self.kernelRelease = kernelRelease
    }
}

func paddedHex<T: FixedWidthInteger>(_ value: T, digits: Int) -> String {
    let text = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, digits - text.count)) + text
}

func parseHex<T: FixedWidthInteger>(_ text: String, as _: T.Type) -> T? {
    var digits = Substring(text)
    if digits.hasPrefix("0x") || digits.hasPrefix("0X") { digits = digits.dropFirst(2) }
    guard !digits.isEmpty else { return nil }
    return T(digits, radix: 16)
}
