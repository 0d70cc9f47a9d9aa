// JSON on standard output: every document carries `schemaVersion` and follows the schema
// under docs/schemas/ named for its command. Keys are sorted, so output diffs cleanly.
import Foundation
import VFIOMigration

enum JSONOutput {
    /// Bumped when a schema changes incompatibly (a key removed, renamed or retyped).
    static let schemaVersion = 1

    static func encode(_ value: some Encodable) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return escapingControls(try encoder.encode(Document(body: value)))
    }

    static func print(_ value: some Encodable) throws {
        var data = try encode(value)
        data.append(0x0A)
        Console.raw(data)
    }

    /// JSON escapes C0 controls itself, but not DEL, C1 controls (U+0080...U+009F, which
    /// some terminals take as CSI and friends) or bidirectional overrides. Outside strings the
    /// encoder writes only ASCII punctuation, so a `\uXXXX` escape always lands in a string.
    static func escapingControls(_ data: Data) -> Data {
        guard data.contains(where: { $0 == 0x7F || $0 >= 0xC2 }) else { return data }
        var out = String.UnicodeScalarView()
        for scalar in String(decoding: data, as: UTF8.self).unicodeScalars {
            if scalar.value >= 0x7F && DisplayText.escaped(String(scalar)) != String(scalar) {
                out.append(contentsOf: String(format: "\\u%04x", scalar.value).unicodeScalars)
            } else {
                out.append(scalar)
            }
        }
        return Data(String(out).utf8)
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
