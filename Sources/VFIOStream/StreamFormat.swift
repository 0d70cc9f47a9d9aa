// Numbers that define stream format v1.1. docs/stream-format.md is the normative text;
// every constant here appears there with its reason.

/// Constants of the stream format.
public enum StreamFormat {
    /// First eight bytes of every stream: 0x89 "VFIOM" CR LF. The high byte catches 7-bit
    /// channels, CR LF catches newline translation, and neither is plausible text.
    public static let magic: [UInt8] = [0x89, 0x56, 0x46, 0x49, 0x4F, 0x4D, 0x0D, 0x0A]

    /// The major version this codec reads and writes. A different major is refused.
    public static let major: UInt16 = 1
    /// The newest minor this codec understands, and the one it writes.
    public static let minor: UInt16 = 1

    /// Bytes a reader needs to learn the header length: magic, major, minor, headerLength.
    public static let headerPrefixSize = 16
    /// Fixed part of a v1.0 header, before the fields (TLV) area.
    public static let fixedHeaderSize = 40
    /// The trailing header CRC.
    public static let headerChecksumSize = 4
    /// Smallest valid header: fixed part, no fields, CRC.
    public static let minimumHeaderLength = fixedHeaderSize + headerChecksumSize
    /// No header may be longer than this, whatever a reader is configured to allow.
    public static let hardMaxHeaderLength = 1 << 20

    /// Every record starts with a header of exactly this size.
    public static let recordHeaderSize = 32
    /// No record payload may be longer than this, whatever the limits say.
    public static let hardMaxPayload = 64 << 20
    /// A stream must allow at least this payload size (room for every fixed payload).
    public static let minimumMaxPayload = 4096

    /// Device index of records that concern the whole stream.
    public static let noDevice: UInt16 = 0xFFFF
    /// Most devices one stream can describe (indices 0...0xFFFE).
    public static let maxDevices = 0xFFFF

    /// Header flag bits 0-15 must be understood by a reader; 16-31 may be ignored.
    public static let requiredHeaderFlagsMask: UInt32 = 0x0000_FFFF
    /// Header flags defined by this version.
    public static let knownHeaderFlags: UInt32 = HeaderFlags.noRecordChecksums.rawValue

    /// Smallest and largest page size of a memory region (powers of two in between).
    public static let minimumPageSize = 4096
    public static let maximumPageSize = 1 << 30
}

/// Header flags (the u32 at offset 20).
public struct HeaderFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Required bit 0: every record's `crc` is written as 0 and not checked (a transport
    /// whose authentication covers integrity already); the header CRC is still checked.
    public static let noRecordChecksums = HeaderFlags(rawValue: 1 << 0)
}

/// Version triple stored in a stream header.
public struct FormatVersion: Sendable, Equatable, Hashable, Codable, CustomStringConvertible {
    /// Incompatible layout changes bump this.
    public var major: UInt16
    /// The minor the writer speaks (informational for readers).
    public var minor: UInt16
    /// The lowest reader minor that can read this stream correctly (<= minor). A writer
    /// raises it only when it uses something an older reader must not skip.
    public var readerMinor: UInt16

    public init(major: UInt16, minor: UInt16, readerMinor: UInt16) {
        self.major = major
        self.minor = minor
        self.readerMinor = readerMinor
    }

    /// This codec's minor for content every 1.0 reader can read or skip (readerMinor 0).
    public static let current = FormatVersion(major: StreamFormat.major, minor: StreamFormat.minor, readerMinor: 0)
    /// What a 1.0 writer wrote (no device digests).
    public static let v1_0 = FormatVersion(major: 1, minor: 0, readerMinor: 0)

    public var description: String { "\(major).\(minor) (readers >= \(major).\(readerMinor))" }
}

/// Reader-side bounds, checked before any allocation or read of the bounded thing.
public struct StreamLimits: Sendable, Equatable {
    /// Largest record payload accepted; also the largest `maxPayload` a header may declare.
    public var maxPayload: Int
    /// Largest stream header accepted.
    public var maxHeaderLength: Int
    /// Whether streams with NO_RECORD_CHECKSUMS are accepted at all. Only a reader behind an
    /// authenticated transport should say yes: without record CRCs, nothing else catches a
    /// flipped bit in a record.
    public var acceptsNoRecordChecksums: Bool

    /// Limits may only be lowered from the hard caps, never raised above them: a value outside
    /// a limit's range is taken as the nearest end of it (`maxPayload` in 4 KiB...64 MiB,
    /// `maxHeaderLength` from the smallest header to 1 MiB).
    public init(
        maxPayload: Int = 16 << 20, maxHeaderLength: Int = StreamFormat.hardMaxHeaderLength,
        acceptsNoRecordChecksums: Bool = false
    ) {
        self.maxPayload = min(max(maxPayload, StreamFormat.minimumMaxPayload), StreamFormat.hardMaxPayload)
        self.maxHeaderLength = min(max(maxHeaderLength, StreamFormat.minimumHeaderLength), StreamFormat.hardMaxHeaderLength)
        self.acceptsNoRecordChecksums = acceptsNoRecordChecksums
    }

    /// 16 MiB payloads, 1 MiB header, record checksums required.
    public static let `default` = StreamLimits()
    /// The default bounds, and streams without record checksums taken: for readers that
    /// write nothing anywhere (verify, inspect, compat), which report what they could check.
    public static let readOnly = StreamLimits(acceptsNoRecordChecksums: true)
}
