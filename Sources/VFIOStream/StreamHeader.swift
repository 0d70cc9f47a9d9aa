// The stream header: version, limits, source host and one descriptor per device.

/// Everything before the first record. Field-by-field layout: docs/stream-format.md.
public struct StreamHeader: Sendable, Hashable, Codable {
    /// Written as given; decoded as found. `.current` for new streams.
    public var version: FormatVersion
    /// Header flags (none defined in v1.0).
    public var flags: UInt32
    /// Creation time, nanoseconds since the Unix epoch (UTC).
    public var creationTimeNanoseconds: Int64
    /// Largest record payload the writer will emit; readers refuse a larger one up front.
    public var maxPayload: UInt32
    public var host: HostIdentity
    /// Writer software identity, e.g. "vfio-migration 0.1 (uapi 6.8)".
    public var writer: String
    /// One per device; a record's device index points into this array.
    public var devices: [DeviceDescriptor]

    public init(
        version: FormatVersion = .current, flags: UInt32 = 0, creationTimeNanoseconds: Int64,
        maxPayload: UInt32 = 16 << 20, host: HostIdentity = HostIdentity(), writer: String = "",
        devices: [DeviceDescriptor]
    ) {
        self.version = version
        self.flags = flags
        self.creationTimeNanoseconds = creationTimeNanoseconds
        self.maxPayload = maxPayload
        self.host = host
        self.writer = writer
        self.devices = devices
    }
}

/// Field tags of the header's fields area and of a device descriptor.
public enum HeaderFieldTag {
    // Top level.
    public static let hostName: UInt16 = 1
    public static let machineID: UInt16 = 2
    public static let kernelRelease: UInt16 = 3
    public static let writer: UInt16 = 4
    public static let device: UInt16 = 5
}

/// Field tags inside a device descriptor (tag 5).
public enum DescriptorFieldTag {
    public static let name: UInt16 = 1
    public static let deviceAPI: UInt16 = 2
    public static let driverName: UInt16 = 3
    public static let driverVersion: UInt16 = 4
    public static let pci: UInt16 = 5
    public static let mdevType: UInt16 = 6
    public static let mdevAttribute: UInt16 = 7
    public static let migrationFlags: UInt16 = 8
    public static let expectedStateSize: UInt16 = 9
    public static let vendorCompatibility: UInt16 = 10
}

/// Flags of a header field.
public struct FieldFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    /// A reader that does not know the tag skips the field instead of refusing the stream.
    public static let skippable = FieldFlags(rawValue: 1 << 0)
}

/// Size of a field's own header: tag u16, flags u16, length u32.
let fieldHeaderSize = 8
/// Size of the PCI identity field value.
let pciFieldSize = 12
