// Reads the peer's side of a control connection. Pull form, as the stream decoder: the caller
// reads 16 bytes for the prefix, then 16 for each message header, then exactly the payload
// length the header gave (checked against the limit before anything is read for it).

/// A message header that passed its checks: the payload to read next.
public struct ControlMessageHeader: Sendable, Equatable {
    public let rawType: UInt16
    public let flags: UInt16
    public let payloadLength: Int
    public let crc: UInt32
    public let sequence: UInt32
    /// Where the message starts in the connection's bytes.
    public let offset: UInt64
    /// The header bytes, for the CRC over header and payload.
    let bytes: [UInt8]
}

public struct ControlDecoder: Sendable {
    /// This end's role: messages are expected from the other one.
    public let role: ControlRole
    /// Bytes consumed so far.
    public private(set) var position: UInt64 = 0
    private var sequence: UInt32 = 0
    private var prefixSeen = false

    public init(role: ControlRole) {
        self.role = role
    }

    /// Checks the peer's 16-byte prefix.
    public mutating func decodePrefix(_ bytes: [UInt8]) throws(ControlError) {
        precondition(!prefixSeen, "decodePrefix called twice")
        guard bytes.count == ControlFormat.prefixSize else {
            throw ControlError(offset: 0, kind: .truncated(needed: ControlFormat.prefixSize, available: bytes.count))
        }
        guard Array(bytes[0..<8]) == ControlFormat.magic else { throw ControlError(offset: 0, kind: .badMagic) }
        let major = bytes.u16(8)
        guard major == ControlFormat.major else { throw ControlError(offset: 0, kind: .unsupportedMajor(major)) }
        // Any minor of our major is read: later minors only add skippable messages.
        let peer = bytes.u16(12)
        guard peer == role.peer.rawValue else { throw ControlError(offset: 0, kind: .wrongRole(expected: role.peer, found: peer)) }
        guard bytes.u16(14) == 0 else { throw ControlError(offset: 0, kind: .reservedNotZero) }
        prefixSeen = true
        position = UInt64(ControlFormat.prefixSize)
    }

    /// Checks a 16-byte message header; the payload length is within the limit.
    public func decodeMessageHeader(_ bytes: [UInt8]) throws(ControlError) -> ControlMessageHeader {
        precondition(prefixSeen, "a message header before the prefix")
        guard bytes.count == ControlFormat.messageHeaderSize else {
            throw ControlError(offset: position, kind: .truncated(needed: ControlFormat.messageHeaderSize, available: bytes.count))
        }
        let length = bytes.u32(4)
        guard length <= ControlFormat.maxPayload else {
            throw ControlError(offset: position, kind: .payloadTooLarge(length: length, limit: ControlFormat.maxPayload))
        }
        return ControlMessageHeader(
            rawType: bytes.u16(0), flags: bytes.u16(2), payloadLength: Int(length), crc: bytes.u32(8), sequence: bytes.u32(12),
            offset: position, bytes: bytes)
    }

    /// Checks and decodes the message; nil for a skippable message of a type this end does
    /// not know (it still counts in the sequence).
    public mutating func decodeMessage(_ header: ControlMessageHeader, payload: [UInt8]) throws(ControlError) -> ControlMessage? {
        let at = header.offset
        guard payload.count == header.payloadLength else {
            throw ControlError(offset: at, kind: .truncated(needed: ControlFormat.messageHeaderSize + header.payloadLength,
                                                            available: ControlFormat.messageHeaderSize + payload.count))
        }
        var sealed = header.bytes
        sealed.storeLittleEndian(UInt32(0), at: 8)
        let computed = CRC32C.checksum(sealed + payload)
        guard computed == header.crc else { throw ControlError(offset: at, kind: .checksumMismatch(stored: header.crc, computed: computed)) }
        guard header.rawType != 0 else { throw ControlError(offset: at, kind: .zeroType) }
        guard header.flags & ~ControlFormat.skippable == 0 else { throw ControlError(offset: at, kind: .unknownFlags(header.flags)) }
        guard header.sequence == sequence else { throw ControlError(offset: at, kind: .sequenceMismatch(expected: sequence, found: header.sequence)) }
        sequence &+= 1
        position = at + UInt64(ControlFormat.messageHeaderSize + payload.count)
        guard let type = ControlMessageType(rawValue: header.rawType) else {
            if header.flags & ControlFormat.skippable != 0 { return nil }
            throw ControlError(offset: at, kind: .unsupportedType(header.rawType))
        }
        guard type.sender == role.peer else { throw ControlError(offset: at, kind: .wrongSender(type)) }
        return try Self.message(type, payload, at: at)
    }

    /// The error for input that ended with `available` of the `needed` bytes of the next piece.
    public func truncated(needed: Int, available: Int) -> ControlError {
        ControlError(offset: position, kind: .truncated(needed: needed, available: available))
    }

    static func message(_ type: ControlMessageType, _ payload: [UInt8], at offset: UInt64) throws(ControlError) -> ControlMessage {
        func length(_ expected: Int) throws(ControlError) {
            guard payload.count == expected else {
                throw ControlError(offset: offset, kind: .invalidPayloadLength(type, length: payload.count, expected: "\(expected)"))
            }
        }
        func text(from start: Int) throws(ControlError) -> String {
            guard payload.count - start <= ControlFormat.maxReasonLength else {
                throw ControlError(offset: offset, kind: .invalidPayloadLength(
                    type, length: payload.count, expected: "at most \(start + ControlFormat.maxReasonLength)"))
            }
            guard let string = payload[start...].withUnsafeBytes({ decodeUTF8($0) }) else { throw ControlError(offset: offset, kind: .invalidUTF8(type)) }
            return string
        }
        switch type {
        case .propose, .accept:
            let header = try embeddedHeader(type, payload, at: offset)
            return type == .propose ? .propose(header) : .accept(header)
        case .refuse:
            guard payload.count >= 4 else {
                throw ControlError(offset: offset, kind: .invalidPayloadLength(type, length: payload.count, expected: "at least 4"))
            }
            let raw = payload.u32(0)
            guard let code = RefusalCode(rawValue: raw) else { throw ControlError(offset: offset, kind: .unknownCode(type, raw)) }
            return .refuse(code, reason: try text(from: 4))
        case .switchoverAck:
            try length(16)
            guard payload.u16(2) == 0 else { throw ControlError(offset: offset, kind: .reservedNotZero) }
            return .switchoverAck(device: payload.u16(0), epoch: payload.u32(4), offset: payload.u64(8))
        case .loaded:
            try length(24)
            guard payload.u32(4) == 0 else { throw ControlError(offset: offset, kind: .reservedNotZero) }
            return .loaded(deviceCount: payload.u32(0), totalStateBytes: payload.u64(8), validationNanoseconds: payload.u64(16))
        case .failed:
            return .failed(reason: try text(from: 0))
        case .commit:
            try length(0)
            return .commit
        case .committed:
            try length(16)
            guard payload.u32(4) == 0 else { throw ControlError(offset: offset, kind: .reservedNotZero) }
            let raw = payload.u32(0)
            guard let state = CommittedState(rawValue: raw) else { throw ControlError(offset: offset, kind: .unknownCode(type, raw)) }
            return .committed(state, resumeNanoseconds: payload.u64(8))
        }
    }

    /// A whole stream header, exactly the payload, checked by the stream codec at its hard caps
    /// (the engine applies its own policy to what it says).
    static func embeddedHeader(_ type: ControlMessageType, _ payload: [UInt8], at offset: UInt64) throws(ControlError) -> StreamHeader {
        var decoder = StreamDecoder(limits: StreamLimits(maxPayload: StreamFormat.hardMaxPayload, acceptsNoRecordChecksums: true))
        // withUnsafeBytes rethrows untyped errors: the typed result is carried out as a value.
        let result: Result<StreamHeader, StreamError> = payload.withUnsafeBytes { raw in
            Result { () throws(StreamError) -> StreamHeader in
                guard raw.count >= StreamFormat.headerPrefixSize else {
                    throw StreamError(offset: 0, kind: .truncated(needed: StreamFormat.headerPrefixSize, available: raw.count))
                }
                // SAFETY: the first 16 bytes of the payload, checked present above, alive for this closure.
                let length = try decoder.decodeHeaderPrefix(UnsafeRawBufferPointer(rebasing: raw[0..<StreamFormat.headerPrefixSize]))
                guard length <= raw.count else { throw StreamError(offset: 0, kind: .truncated(needed: length, available: raw.count)) }
                guard length == raw.count else { throw StreamError(offset: UInt64(length), kind: .trailingData) }
                return try decoder.decodeHeader(raw)
            }
        }
        do throws(StreamError) {
            return try result.get()
        } catch {
            throw ControlError(offset: offset, kind: .embeddedHeader(type, error))
        }
    }
}

extension Array where Element == UInt8 {
    func u16(_ at: Int) -> UInt16 { UInt16(self[at]) | UInt16(self[at + 1]) << 8 }
    func u32(_ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(self[at + $1]) << (8 * $1) } }
    func u64(_ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(self[at + $1]) << (8 * $1) } }
}
