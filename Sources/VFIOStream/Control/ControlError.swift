// Every way a control connection's bytes can be refused, with the byte offset (from the first
// byte the peer sent on it) of the structure at fault.

public struct ControlError: Error, Sendable, Equatable, CustomStringConvertible {
    public let offset: UInt64
    public let kind: Kind

    public init(offset: UInt64, kind: Kind) {
        self.offset = offset
        self.kind = kind
    }

    public enum Kind: Sendable, Equatable {
        case badMagic
        case unsupportedMajor(UInt16)
        /// The peer says it is a `found`, and this end expected its peer to be the other role.
        case wrongRole(expected: ControlRole, found: UInt16)
        case reservedNotZero
        case payloadTooLarge(length: UInt32, limit: Int)
        case checksumMismatch(stored: UInt32, computed: UInt32)
        case zeroType
        case unknownFlags(UInt16)
        case sequenceMismatch(expected: UInt32, found: UInt32)
        case unsupportedType(UInt16)
        /// A type only the other role sends.
        case wrongSender(ControlMessageType)
        case invalidPayloadLength(ControlMessageType, length: Int, expected: String)
        case invalidUTF8(ControlMessageType)
        case unknownCode(ControlMessageType, UInt32)
        /// The stream header inside a propose or accept was refused by the stream codec.
        case embeddedHeader(ControlMessageType, StreamError)
        /// The input ended inside a structure.
        case truncated(needed: Int, available: Int)
    }

    public var description: String {
        let what: String
        switch kind {
        case .badMagic: what = "not a control connection (bad magic)"
        case .unsupportedMajor(let m): what = "control protocol major \(m) is not supported (this end speaks \(ControlFormat.major))"
        case .wrongRole(let expected, let found):
            let name = ControlRole(rawValue: found)?.description ?? "unknown role \(found)"
            what = "the peer says it is a \(name), expected a \(expected)"
        case .reservedNotZero: what = "reserved bytes are not zero"
        case .payloadTooLarge(let length, let limit): what = "message payload of \(length) bytes is above the limit of \(limit)"
        case .checksumMismatch(let stored, let computed):
            what = "message checksum mismatch (stored 0x\(String(stored, radix: 16)), computed 0x\(String(computed, radix: 16)))"
        case .zeroType: what = "message type 0"
        case .unknownFlags(let f): what = "unknown message flags 0x\(String(f, radix: 16))"
        case .sequenceMismatch(let expected, let found): what = "message sequence \(found), expected \(expected)"
        case .unsupportedType(let t): what = "unsupported message type \(t)"
        case .wrongSender(let t): what = "a \(t) message, which only the \(t.sender) sends"
        case .invalidPayloadLength(let t, let length, let expected): what = "\(t) payload of \(length) bytes (expected \(expected))"
        case .invalidUTF8(let t): what = "\(t) reason is not valid UTF-8"
        case .unknownCode(let t, let code): what = "\(t) with unknown code \(code)"
        case .embeddedHeader(let t, let error): what = "the stream header in the \(t) message: \(error)"
        case .truncated(let needed, let available): what = "input ends after \(available) of \(needed) bytes"
        }
        return "control message at offset \(offset): \(what)"
    }
}
