// The 16-byte identity of one migration (header field 6), shared by every channel of it.

/// Identifies one migration. The receiving engine compares it with the id both ends agreed
/// on, so a stream (or a channel) of another migration is never mixed into this one.
public struct MigrationID: Sendable, Hashable, CustomStringConvertible {
    /// The 16 bytes as they appear in the stream, first byte in the high byte of `high`.
    public let high: UInt64
    public let low: UInt64

    public static let byteCount = 16

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// From exactly 16 bytes; nil for any other count.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == Self.byteCount else { return nil }
        var high: UInt64 = 0, low: UInt64 = 0
        for (index, byte) in bytes.enumerated() {
            if index < 8 { high = high << 8 | UInt64(byte) } else { low = low << 8 | UInt64(byte) }
        }
        self.init(high: high, low: low)
    }

    /// A fresh random id (the system generator: kernel entropy on Linux).
    public static func random() -> MigrationID {
        var generator = SystemRandomNumberGenerator()
        return MigrationID(high: generator.next(), low: generator.next())
    }

    /// The 16 bytes in stream order.
    public var bytes: [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: high >> (56 - 8 * $0)) }
            + (0..<8).map { UInt8(truncatingIfNeeded: low >> (56 - 8 * $0)) }
    }

    /// UUID text form (8-4-4-4-12 lowercase hex digits), whatever the bytes hold.
    public var description: String {
        let digits = bytes.map { paddedHex($0, digits: 2).dropFirst(2) }.joined()
        var text = ""
        for (index, character) in digits.enumerated() {
            if [8, 12, 16, 20].contains(index) { text.append("-") }
            text.append(character)
        }
        return text
    }

    /// Parses the UUID text form (dashes optional, either case).
    public init?(_ text: String) {
        let digits = text.filter { $0 != "-" }
        guard digits.count == 32, digits.allSatisfy(\.isHexDigit) else { return nil }
        var bytes: [UInt8] = []
        var index = digits.startIndex
        while index < digits.endIndex {
            let next = digits.index(index, offsetBy: 2)
            guard let byte = UInt8(digits[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        self.init(bytes: bytes)
    }
}

extension MigrationID: Codable {
    /// JSON: the UUID text form.
    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let id = MigrationID(text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not a 16-byte id: \(text)")
        }
        self = id
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
