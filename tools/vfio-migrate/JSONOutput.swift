// JSON on standard output: every document carries `schemaVersion` and follows the schema
// under docs/schemas/ named for its command. Keys are sorted, so output diffs cleanly.
import Foundation

enum JSONOutput {
    /// Bumped when a schema changes incompatibly (a key removed, renamed or retyped).
    static let schemaVersion = 1

    static func encode(_ value: some Encodable) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return escapingC1(try encoder.encode(Document(body: value)))
    }

    static func print(_ value: some Encodable) throws {
        var data = try encode(value)
        data.append(0x0A)
        Console.raw(data)
    }

    /// JSON escapes C0 controls itself; C1 controls (U+0080...U+009F, which some terminals
    /// take as CSI and friends) can only appear inside strings, so `\u0080` is safe there.
    static func escapingC1(_ data: Data) -> Data {
        guard data.contains(0xC2) else { return data }
        var out = Data(capacity: data.count)
        var i = data.startIndex
        while i < data.endIndex {
            let byte = data[i]
            if byte == 0xC2, i + 1 < data.endIndex, (0x80...0x9F).contains(data[i + 1]) {
                out.append(contentsOf: Array(String(format: "\\u%04x", Int(data[i + 1])).utf8))
                i += 2
            } else {
                out.append(byte)
                i += 1
            }
        }
        return out
    }

    /// The body's keys with `schemaVersion` beside them.
    struct Document<Body: Encodable>: Encodable {
        enum Key: String, CodingKey { case schemaVersion }
        let body: Body

        func encode(to encoder: any Encoder) throws {
            try body.encode(to: encoder)
            var c = encoder.container(keyedBy: Key.self)
            try c.encode(JSONOutput.schemaVersion, forKey: .schemaVersion)
        }
    }
}
