// Writes one role's side of a control connection: the prefix, then numbered, checksummed
// messages. Not the hot path: a migration sends a handful of these.

public struct ControlEncoder: Sendable {
    public let role: ControlRole
    /// Messages encoded so far (the next one's sequence number).
    public private(set) var sequence: UInt32 = 0

    public init(role: ControlRole) {
        self.role = role
    }

    /// The 16 bytes that open this role's direction of a control connection.
    public func encodePrefix() -> [UInt8] {
        var bytes = ControlFormat.magic
        bytes.appendLittleEndian(ControlFormat.major)
        bytes.appendLittleEndian(ControlFormat.minor)
        bytes.appendLittleEndian(role.rawValue)
        bytes.appendLittleEndian(UInt16(0))
        return bytes
    }

    /// One message, header and payload. Throws, changing nothing, for a message this role does
    /// not send or a header the stream codec cannot write.
    public mutating func encode(_ message: ControlMessage) throws(StreamUsageError) -> [UInt8] {
        guard message.type.sender == role else {
            throw StreamUsageError(.parameter(what: "control message", reason: "a \(role) does not send \(message.type) messages"))
        }
        let payload = try Self.payload(of: message)
        guard payload.count <= ControlFormat.maxPayload else {
            throw StreamUsageError(.payloadTooLarge(UInt64(payload.count), maxPayload: UInt32(ControlFormat.maxPayload)))
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ControlFormat.messageHeaderSize + payload.count)
        bytes.appendLittleEndian(message.type.rawValue)
        bytes.appendLittleEndian(UInt16(0))
        bytes.appendLittleEndian(UInt32(payload.count))
        bytes.appendLittleEndian(UInt32(0))
        bytes.appendLittleEndian(sequence)
        bytes.append(contentsOf: payload)
        bytes.storeLittleEndian(CRC32C.checksum(bytes), at: 8)
        sequence &+= 1
        return bytes
    }

    static func payload(of message: ControlMessage) throws(StreamUsageError) -> [UInt8] {
        var bytes: [UInt8] = []
        switch message {
        case .propose(let header), .accept(let header):
            bytes = try StreamEncoder(header: header).encodeHeader()
        case .refuse(let code, let reason):
            bytes.appendLittleEndian(code.rawValue)
            bytes.append(contentsOf: Self.bounded(reason))
        case .switchoverAck(let device, let epoch, let offset):
            bytes.appendLittleEndian(device)
            bytes.appendLittleEndian(UInt16(0))
            bytes.appendLittleEndian(epoch)
            bytes.appendLittleEndian(offset)
        case .loaded(let deviceCount, let totalStateBytes, let validation):
            bytes.appendLittleEndian(deviceCount)
            bytes.appendLittleEndian(UInt32(0))
            bytes.appendLittleEndian(totalStateBytes)
            bytes.appendLittleEndian(validation)
        case .failed(let reason):
            bytes.append(contentsOf: Self.bounded(reason))
        case .commit:
            break
        case .committed(let state, let resume):
            bytes.appendLittleEndian(state.rawValue)
            bytes.appendLittleEndian(UInt32(0))
            bytes.appendLittleEndian(resume)
        }
        return bytes
    }

    /// The reason's UTF-8, cut at a character boundary to the protocol's limit.
    static func bounded(_ reason: String) -> [UInt8] {
        var bytes: [UInt8] = []
        for character in reason {
            let utf8 = Array(String(character).utf8)
            if bytes.count + utf8.count > ControlFormat.maxReasonLength { break }
            bytes.append(contentsOf: utf8)
        }
        return bytes
    }
}
