// Text that came from a device, sysfs or a stream, made safe to put on a terminal: a name or
// a vendor string holding ESC sequences must show as text, never drive the terminal.

public enum DisplayText {
    /// `text` with every control character (C0, DEL, C1) and every bidirectional override or
    /// isolate written as a visible escape (`\e`, `\n`, `\u{9b}`). Backslashes stay as they are,
    /// so text escaped once (an error message quoting sysfs) is not escaped twice.
    public static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: needsEscape) else { return text }
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            guard needsEscape(scalar) else {
                out.append(scalar)
                continue
            }
            let escape: String
            switch scalar {
            case "\n": escape = "\\n"
            case "\r": escape = "\\r"
            case "\t": escape = "\\t"
            case "\u{1B}": escape = "\\e"
            default: escape = "\\u{\(String(scalar.value, radix: 16))}"
            }
            out.append(contentsOf: escape.unicodeScalars)
        }
        return String(out)
    }

    /// `escaped(text)` cut to at most `limit` UTF-8 bytes of the original, saying how many
    /// bytes were left out ("… (1048000 more bytes)").
    public static func bounded(_ text: String, limit: Int) -> String {
        let cut = truncated(text, limit: limit)
        let shown = escaped(cut.text)
        return cut.omittedBytes == 0 ? shown : shown + "… (\(cut.omittedBytes) more bytes)"
    }

    /// The longest prefix of `text` of at most `limit` UTF-8 bytes that ends on a character
    /// boundary, and how many bytes were dropped.
    public static func truncated(_ text: String, limit: Int) -> (text: String, omittedBytes: Int) {
        let total = text.utf8.count
        guard total > limit else { return (text, 0) }
        var end = text.startIndex
        var used = 0
        for index in text.indices {
            let next = text.index(after: index)
            let size = text.utf8.distance(from: index, to: next)
            if used + size > limit { break }
            used += size
            end = next
        }
        return (String(text[..<end]), total - used)
    }

    /// True for what a terminal could act on rather than show.
    static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F: return true
        case 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: return true
        default: return false
        }
    }
}
