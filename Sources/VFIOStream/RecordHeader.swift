// The fixed 32-byte header in front of every record, and its CRC.

/// Record type numbers. 0 is never valid.
public struct RecordType: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// A piece of one device's migration data stream.
    public static let deviceState = RecordType(rawValue: 1)
    /// VFIO_MIG_GET_PRECOPY_INFO values at a point of the pre-copy phase.
    public static let preCopyProgress = RecordType(rawValue: 2)
    /// Guest memory pages of one region (v1.1; reserved as `dirtyPages` in v1.0).
    public static let pages = RecordType(rawValue: 3)
    @available(*, deprecated, renamed: "pages")
    public static let dirtyPages = pages
    /// A device's data stream is complete; carries its totals.
    public static let endOfDevice = RecordType(rawValue: 4)
    /// The stream is complete; carries its totals. Nothing may follow.
    public static let endOfStream = RecordType(rawValue: 5)
    /// CRCs tying a device's data to its descriptor (v1.1; writers set SKIPPABLE).
    public static let deviceDigest = RecordType(rawValue: 6)

    public var description: String {
        switch self {
        case .deviceState: "deviceState"
        case .preCopyProgress: "preCopyProgress"
        case .pages: "pages"
        case .endOfDevice: "endOfDevice"
        case .endOfStream: "endOfStream"
        case .deviceDigest: "deviceDigest"
        default: "type\(rawValue)"
        }
    }
}

/// Record flags.
public struct RecordFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    /// A reader that does not support the record's type skips it instead of refusing.
    public static let skippable = RecordFlags(rawValue: 1 << 0)
    /// Flags this version defines; any other bit is refused.
    public static let known: RecordFlags = [.skippable]
}

/// Which part of the device's data stream a state chunk came from.
public enum StatePhase: UInt8, Sendable, Hashable, Codable, CustomStringConvertible {
    /// Read while the device ran (PRE_COPY or PRE_COPY_P2P).
    case preCopy = 1
    /// Read after the device stopped (STOP_COPY).
    case stopCopy = 2

    public var description: String { self == .preCopy ? "preCopy" : "stopCopy" }
}

/// The 32 bytes in front of every record, as found (nothing normalised, so the CRC can be
/// recomputed from this value alone). Layout in docs/stream-format.md, "Record header".
public struct RecordHeader: Sendable, Hashable {
    public var type: RecordType
    public var flags: RecordFlags
    /// Index into the header's devices, or `StreamFormat.noDevice`.
    public var device: UInt16
    /// Raw phase byte: StatePhase for deviceState, 0 otherwise.
    public var phase: UInt8
    /// Must be zero.
    public var reserved: UInt8
    public var payloadLength: UInt32
    /// CRC32C over these 32 bytes (this field as zero) followed by the payload.
    public var checksum: UInt32
    /// 0 for the first record, one more for each following record.
    public var sequence: UInt64
    /// Position in the device's data stream (meaning per type).
    public var offset: UInt64

    public init(
        type: RecordType, flags: RecordFlags = [], device: UInt16, phase: UInt8 = 0, reserved: UInt8 = 0,
        payloadLength: UInt32, checksum: UInt32 = 0, sequence: UInt64, offset: UInt64
    ) {
        self.type = type
        self.flags = flags
        self.device = device
        self.phase = phase
        self.reserved = reserved
        self.payloadLength = payloadLength
        self.checksum = checksum
        self.sequence = sequence
        self.offset = offset
    }

    /// Header plus payload.
    public var recordLength: Int { StreamFormat.recordHeaderSize + Int(payloadLength) }

    /// Writes the 32 bytes (with `checksum` as it is) at the start of `bytes`.
    public func store(into bytes: UnsafeMutableRawBufferPointer) {
        precondition(bytes.count >= StreamFormat.recordHeaderSize, "record header needs 32 bytes")
        var writer = LittleEndianWriter(bytes)
        writer.write(type.rawValue)
        writer.write(flags.rawValue)
        writer.write(device)
        writer.write(phase)
        writer.write(reserved)
        writer.write(payloadLength)
        writer.write(checksum)
        writer.write(sequence)
        writer.write(offset)
    }

    /// Reads 32 bytes; no validation at all (that is the decoder's job).
    public static func load(from bytes: UnsafeRawBufferPointer) -> RecordHeader {
        precondition(bytes.count >= StreamFormat.recordHeaderSize, "record header needs 32 bytes")
        var reader = LittleEndianReader(bytes)
        return RecordHeader(
            type: RecordType(rawValue: reader.read(UInt16.self)), flags: RecordFlags(rawValue: reader.read(UInt16.self)),
            device: reader.read(UInt16.self), phase: reader.read(UInt8.self), reserved: reader.read(UInt8.self),
            payloadLength: reader.read(UInt32.self), checksum: reader.read(UInt32.self),
            sequence: reader.read(UInt64.self), offset: reader.read(UInt64.self))
    }

    /// The CRC this header and `payload` should carry (the stored checksum is ignored).
    public func computeChecksum(payload: UnsafeRawBufferPointer) -> UInt32 {
        precondition(payload.count == Int(payloadLength), "payload of \(payload.count) bytes for length \(payloadLength)")
        return CRC32C.update(headerChecksum(), payload)
    }

    /// CRC32C of the 32 header bytes with the checksum field as zero: the start of the
    /// record's CRC, which the payload's bytes (or its CRC, through combine) continue.
    public func headerChecksum() -> UInt32 {
        var copy = self
        copy.checksum = 0
        // A stack tuple keeps this allocation-free on the hot path.
        var scratch: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        // SAFETY: the tuple is exactly 32 bytes and lives for the whole closure.
        return withUnsafeMutableBytes(of: &scratch) { raw in
            copy.store(into: raw)
            return CRC32C.update(0, UnsafeRawBufferPointer(raw))
        }
    }
}
