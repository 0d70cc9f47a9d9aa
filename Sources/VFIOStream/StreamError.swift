// Every way a stream can be refused, as data: a byte offset and a typed kind.

/// A stream was refused. `offset` is the absolute byte offset (from the first magic byte)
/// of the structure at fault: the header (0), a header field, or a record's first byte.
/// For end-of-input problems it is the start of the structure that was cut short.
public struct StreamError: Error, Sendable, Equatable, CustomStringConvertible {
    public let offset: UInt64
    public let kind: Kind

    public init(offset: UInt64, kind: Kind) {
        self.offset = offset
        self.kind = kind
    }

    /// What was wrong. Tags are the numeric field/record types from docs/stream-format.md.
    public enum Kind: Sendable, Equatable {
        // Input ended.
        /// The structure at `offset` needs `needed` bytes; only `available` arrived.
        case truncated(needed: Int, available: Int)
        /// Input ended on a record boundary before the end-of-stream record.
        case missingEndOfStream
        /// Bytes follow the end-of-stream record.
        case trailingData

        // Stream header.
        case badMagic
        case unsupportedMajor(UInt16)
        /// The stream needs a reader of at least this minor.
        case unsupportedMinor(readerMinor: UInt16)
        /// readerMinor above the writer's own minor.
        case inconsistentVersion(minor: UInt16, readerMinor: UInt16)
        case invalidHeaderLength(UInt32)
        case headerTooLarge(length: UInt32, limit: Int)
        case invalidFieldsOffset(UInt32)
        case headerChecksumMismatch(stored: UInt32, computed: UInt32)
        /// Required flag bits this reader does not know.
        case unsupportedHeaderFlags(UInt32)
        /// NO_RECORD_CHECKSUMS is set and the reader's limits do not accept such streams.
        case recordChecksumsNotAccepted
        /// The header uses something a reader below `required` must not skip (channel,
        /// memory regions, NO_RECORD_CHECKSUMS) but declares a lower readerMinor.
        case readerMinorTooLow(required: UInt16, declared: UInt16)
        /// The header's maxPayload is below the format minimum or above the hard cap.
        case invalidMaxPayload(UInt32)
        /// The header's maxPayload is above this reader's limit.
        case maxPayloadAboveLimit(declared: UInt32, limit: Int)
        case deviceCountMismatch(declared: Int, found: Int)

        // Header fields (TLV).
        case zeroFieldTag
        /// A field's length runs past the end of the area that contains it.
        case fieldOverrun(tag: UInt16, length: UInt32, available: Int)
        case unknownField(tag: UInt16)
        case unknownFieldFlags(tag: UInt16, flags: UInt16)
        case duplicateField(tag: UInt16)
        case missingField(tag: UInt16)
        case invalidFieldLength(tag: UInt16, expected: Int, found: Int)
        case invalidUTF8(tag: UInt16)
        /// A field is well framed but its content breaks a rule (see the kind's description).
        case malformedField(tag: UInt16, reason: String)

        // Record framing.
        case payloadTooLarge(length: UInt32, limit: Int)
        case checksumMismatch(stored: UInt32, computed: UInt32)
        case zeroRecordType
        case unknownRecordFlags(UInt16)
        /// Unknown to this reader and not marked skippable.
        case unsupportedRecordType(UInt16)
        /// A field with one allowed value (reserved bytes, unused device/phase/offset) holds another.
        case unexpectedFieldValue(field: String, expected: UInt64, found: UInt64)
        case invalidPayloadLength(type: UInt16, expected: Int, found: Int)

        // Record order and content.
        /// Records are numbered 0, 1, 2...: a duplicate, reordered or lost record shows here.
        case sequenceMismatch(expected: UInt64, found: UInt64)
        case deviceIndexOutOfRange(UInt16, deviceCount: Int)
        case invalidPhase(UInt8)
        case emptyChunk(device: Int)
        /// A device's chunks must cover its byte stream contiguously from 0.
        case offsetMismatch(device: Int, expected: UInt64, found: UInt64)
        case offsetOverflow(device: Int)
        /// Pre-copy data or progress after the device's stop-copy data began.
        case phaseRegression(device: Int)
        /// Pre-copy records for a device whose descriptor lacks the PRE_COPY flag.
        case preCopyNotAdvertised(device: Int)
        case recordAfterEndOfDevice(device: Int)
        case duplicateEndOfDevice(device: Int)
        case deviceTotalsMismatch(device: Int, declared: DeviceTotals, counted: DeviceTotals)
        case missingEndOfDevice(device: Int)
        case streamTotalsMismatch(declared: StreamTotals, counted: StreamTotals)

        // Parallel channels.
        /// On one of several channels a device's chunks ascend without overlap: this one
        /// starts below the end of the channel's previous chunk of the device.
        case offsetBelowChannelEnd(device: Int, channelEnd: UInt64, found: UInt64)
        /// preCopyProgress and deviceDigest travel on channel 0 only.
        case notPrimaryChannel(recordType: UInt16, channel: UInt16)

        // Device digests.
        case recordAfterDeviceDigest(device: Int)
        case duplicateDeviceDigest(device: Int)
        /// End of a device without its digest in a stream of minor >= 1 (on channel 0).
        case missingDeviceDigest(device: Int)
        case deviceDigestMismatch(device: Int, part: DigestPart, declared: UInt32, computed: UInt32)

        // Pages.
        case invalidPageTable(PageTableProblem)
        /// Page round numbers never decrease within a stream.
        case pageRoundRegression(previous: UInt64, found: UInt64)
        /// A phase-1 (running) pages record after a phase-2 (final) one.
        case pagePhaseRegression
    }

    /// Which CRC of a device digest disagrees.
    public enum DigestPart: String, Sendable, Equatable, Codable {
        /// The descriptor field in the header is not the one the data were written for.
        case descriptor
        /// The data received for the device are not the data written for it.
        case data
    }

    public var description: String {
        // Offset 0 is the header's; every record starts after it.
        if case let .truncated(needed, available) = kind {
            let what = offset == 0 ? "stream header" : "record at offset \(offset)"
            return "\(what) needs \(needed) bytes, input ends after \(available) (truncated stream)"
        }
        return "stream offset \(offset): \(kind)"
    }
}

extension StreamError.Kind: CustomStringConvertible {
    public var description: String {
        switch self {
        case let .truncated(needed, available):
            return "structure needs \(needed) bytes, input ends after \(available) (truncated stream)"
        case .missingEndOfStream:
            return "input ends without an end-of-stream record (truncated stream)"
        case .trailingData:
            return "bytes follow the end-of-stream record"
        case .badMagic:
            return "not a vfio-migration stream (magic bytes differ)"
        case let .unsupportedMajor(major):
            return "format major version \(major) is not supported (this reader reads \(StreamFormat.major))"
        case let .unsupportedMinor(readerMinor):
            return "stream needs a reader of format \(StreamFormat.major).\(readerMinor) or newer; this reader is \(StreamFormat.major).\(StreamFormat.minor)"
        case let .inconsistentVersion(minor, readerMinor):
            return "header reader minor \(readerMinor) is above its writer minor \(minor)"
        case let .invalidHeaderLength(length):
            return "header length \(length) is below the minimum \(StreamFormat.minimumHeaderLength)"
        case let .headerTooLarge(length, limit):
            return "header length \(length) exceeds the limit \(limit)"
        case let .invalidFieldsOffset(offset):
            return "fields offset \(offset) is outside the header"
        case let .headerChecksumMismatch(stored, computed):
            return "header CRC32C mismatch (stored \(hex(stored)), computed \(hex(computed))): header corrupted"
        case let .unsupportedHeaderFlags(flags):
            return "header sets required flags \(hex(flags)) this reader does not know"
        case .recordChecksumsNotAccepted:
            return "stream was written without record checksums (NO_RECORD_CHECKSUMS), which this reader accepts only over an authenticated transport"
        case let .readerMinorTooLow(required, declared):
            return "header content needs a reader of minor \(required) but declares readerMinor \(declared)"
        case let .invalidMaxPayload(value):
            return "header maxPayload \(value) is outside \(StreamFormat.minimumMaxPayload)...\(StreamFormat.hardMaxPayload)"
        case let .maxPayloadAboveLimit(declared, limit):
            return "header maxPayload \(declared) exceeds this reader's limit \(limit)"
        case let .deviceCountMismatch(declared, found):
            return "header declares \(declared) devices but carries \(found) descriptors"
        case .zeroFieldTag:
            return "field tag 0 is never valid"
        case let .fieldOverrun(tag, length, available):
            return "field \(tag) claims \(length) bytes but only \(available) remain in its area"
        case let .unknownField(tag):
            return "unknown field \(tag) is not marked skippable"
        case let .unknownFieldFlags(tag, flags):
            return "field \(tag) has unknown flags \(hex(UInt32(flags)))"
        case let .duplicateField(tag):
            return "field \(tag) appears more than once"
        case let .missingField(tag):
            return "required field \(tag) is missing"
        case let .invalidFieldLength(tag, expected, found):
            return "field \(tag) has length \(found), expected \(expected)"
        case let .invalidUTF8(tag):
            return "field \(tag) is not valid UTF-8"
        case let .malformedField(tag, reason):
            return "field \(tag) is malformed: \(reason)"
        case let .payloadTooLarge(length, limit):
            return "record payload length \(length) exceeds the limit \(limit) (refused before reading it)"
        case let .checksumMismatch(stored, computed):
            return "record CRC32C mismatch (stored \(hex(stored)), computed \(hex(computed))): record corrupted"
        case .zeroRecordType:
            return "record type 0 is never valid"
        case let .unknownRecordFlags(flags):
            return "record has unknown flags \(hex(UInt32(flags)))"
        case let .unsupportedRecordType(type):
            return "record type \(type) is not supported by this reader and not marked skippable"
        case let .unexpectedFieldValue(field, expected, found):
            return "field '\(field)' is \(found), must be \(expected)"
        case let .invalidPayloadLength(type, expected, found):
            return "record type \(type) has payload length \(found), expected \(expected)"
        case let .sequenceMismatch(expected, found):
            return "record sequence \(found) where \(expected) was expected (record duplicated, reordered or lost)"
        case let .deviceIndexOutOfRange(index, count):
            return "device index \(index) is outside the \(count) devices of this stream"
        case let .invalidPhase(phase):
            return "invalid phase \(phase) (1 = pre-copy, 2 = stop-copy)"
        case let .emptyChunk(device):
            return "device \(device): empty state chunk"
        case let .offsetMismatch(device, expected, found):
            let what = found < expected ? "overlaps bytes already received (duplicate or reordered chunk)" : "leaves a gap (missing chunk)"
            return "device \(device): chunk at state offset \(found) \(what); expected offset \(expected)"
        case let .offsetOverflow(device):
            return "device \(device): state offset plus length overflows 64 bits"
        case let .phaseRegression(device):
            return "device \(device): pre-copy record after stop-copy data began"
        case let .preCopyNotAdvertised(device):
            return "device \(device): pre-copy record but the device descriptor lacks PRE_COPY"
        case let .recordAfterEndOfDevice(device):
            return "device \(device): record after its end-of-device record"
        case let .duplicateEndOfDevice(device):
            return "device \(device): second end-of-device record"
        case let .deviceTotalsMismatch(device, declared, counted):
            return "device \(device): end-of-device totals \(declared) differ from the records received \(counted)"
        case let .missingEndOfDevice(device):
            return "end of stream before device \(device) ended"
        case let .streamTotalsMismatch(declared, counted):
            return "end-of-stream totals \(declared) differ from the records received \(counted)"
        case let .offsetBelowChannelEnd(device, channelEnd, found):
            return "device \(device): chunk at state offset \(found) overlaps this channel's previous chunk, which ends at \(channelEnd)"
        case let .notPrimaryChannel(type, channel):
            return "record type \(type) (\(RecordType(rawValue: type))) on channel \(channel); it travels on channel 0 only"
        case let .recordAfterDeviceDigest(device):
            return "device \(device): state or progress record after its device digest"
        case let .duplicateDeviceDigest(device):
            return "device \(device): second device digest"
        case let .missingDeviceDigest(device):
            return "device \(device): end of device without a device digest (required from format minor 1)"
        case let .deviceDigestMismatch(device, part, declared, computed):
            let what = part == .descriptor
                ? "descriptor CRC \(hex(declared)) differs from its header descriptor's \(hex(computed)): the records belong to another device or stream"
                : "data CRC \(hex(declared)) differs from the data received, \(hex(computed)): the data belong to another device or stream"
            return "device \(device): digest \(what)"
        case let .invalidPageTable(problem):
            return "pages record: \(problem)"
        case let .pageRoundRegression(previous, found):
            return "pages record of round \(found) after round \(previous) (rounds never decrease)"
        case .pagePhaseRegression:
            return "pages record of phase 1 (guest running) after phase 2 (final) pages"
        }
    }
}

func hex<T: FixedWidthInteger>(_ value: T) -> String {
    "0x" + String(value, radix: 16, uppercase: false)
}
