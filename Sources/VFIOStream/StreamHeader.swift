// The stream header: version, limits, source host and one descriptor per device.

/// Everything before the first record. Field-by-field layout: docs/stream-format.md.
public struct StreamHeader: Sendable, Hashable, Codable {
    /// Written as given; decoded as found. The initializer picks the oldest version that
    /// expresses the content (`FormatVersion.current`, readerMinor raised when needed).
    public var version: FormatVersion
    /// Header flags (`HeaderFlags`); optional bits 16-31 are carried as found.
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
    /// The migration this stream belongs to (all channels carry the same id).
    public var migrationID: MigrationID?
    /// Which of several parallel streams this is; nil is a single stream.
    public var channel: StreamChannel?
    /// Guest memory regions; a pages record's region index points into this array.
    public var regions: [MemoryRegionDescriptor]

    public init(
        version: FormatVersion? = nil, flags: UInt32 = 0, creationTimeNanoseconds: Int64,
        maxPayload: UInt32 = 16 << 20, host: HostIdentity = HostIdentity(), writer: String = "",
        devices: [DeviceDescriptor], migrationID: MigrationID? = nil, channel: StreamChannel? = nil,
        regions: [MemoryRegionDescriptor] = []
    ) {
        self.version = .current
        self.flags = flags
        self.creationTimeNanoseconds = creationTimeNanoseconds
        self.maxPayload = maxPayload
        self.host = host
        self.writer = writer
        self.devices = devices
        self.migrationID = migrationID
        self.channel = channel
        self.regions = regions
        self.version = version ?? FormatVersion(major: StreamFormat.major, minor: StreamFormat.minor, readerMinor: requiredReaderMinor)
    }

    /// The lowest reader minor that may read this content: 1 when it has a channel field,
    /// memory regions (and so pages) or NO_RECORD_CHECKSUMS, which a 1.0 reader must not skip.
    public var requiredReaderMinor: UInt16 {
        channel != nil || !regions.isEmpty || flags & HeaderFlags.noRecordChecksums.rawValue != 0 ? 1 : 0
    }

    /// False when the header sets NO_RECORD_CHECKSUMS.
    public var hasRecordChecksums: Bool { flags & HeaderFlags.noRecordChecksums.rawValue == 0 }

    /// Whether this stream's version makes a deviceDigest record before each endOfDevice
    /// compulsory (minor >= 1, on channel 0).
    var requiresDeviceDigests: Bool { version.minor >= 1 && (channel?.isPrimary ?? true) }
    /// Channel 0 of several: chunk offsets are per channel, data CRCs for the reassembler.
    var isParallel: Bool { channel?.isParallel ?? false }
    var isPrimaryChannel: Bool { channel?.isPrimary ?? true }
}

/// Field tags of the header's fields area and of a device descriptor.
public enum HeaderFieldTag {
    // Top level.
    public static let hostName: UInt16 = 1
    public static let machineID: UInt16 = 2
    public static let kernelRelease: UInt16 = 3
    public static let writer: UInt16 = 4
    public static let device: UInt16 = 5
    public static let migrationID: UInt16 = 6
    public static let channel: UInt16 = 7
    public static let memoryRegion: UInt16 = 8
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

extension StreamHeader {
    enum CodingKeys: String, CodingKey {
        case version, flags, creationTimeNanoseconds, maxPayload, host, writer, devices, migrationID, channel, regions
    }

    /// JSON leaves out what a 1.0 header cannot have when it is absent (id, channel, regions),
    /// so a 1.0 stream's JSON is unchanged.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            version: try c.decode(FormatVersion.self, forKey: .version), flags: try c.decode(UInt32.self, forKey: .flags),
            creationTimeNanoseconds: try c.decode(Int64.self, forKey: .creationTimeNanoseconds),
            maxPayload: try c.decode(UInt32.self, forKey: .maxPayload), host: try c.decode(HostIdentity.self, forKey: .host),
            writer: try c.decode(String.self, forKey: .writer), devices: try c.decode([DeviceDescriptor].self, forKey: .devices),
            migrationID: try c.decodeIfPresent(MigrationID.self, forKey: .migrationID),
            channel: try c.decodeIfPresent(StreamChannel.self, forKey: .channel),
            regions: try c.decodeIfPresent([MemoryRegionDescriptor].self, forKey: .regions) ?? [])
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(version, forKey: .version)
        try c.encode(flags, forKey: .flags)
        try c.encode(creationTimeNanoseconds, forKey: .creationTimeNanoseconds)
        try c.encode(maxPayload, forKey: .maxPayload)
        try c.encode(host, forKey: .host)
        try c.encode(writer, forKey: .writer)
        try c.encode(devices, forKey: .devices)
        try c.encodeIfPresent(migrationID, forKey: .migrationID)
        try c.encodeIfPresent(channel, forKey: .channel)
        if !regions.isEmpty { try c.encode(regions, forKey: .regions) }
    }
}
