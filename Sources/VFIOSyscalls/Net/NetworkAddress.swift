// "HOST:PORT" and "[v6]:PORT" as the command line spells them, and their resolution. The
// parsed form never holds a socket address: resolution happens when a socket is made, so a
// name that resolves differently later is looked up again.

/// A host (name or address literal, IPv6 without brackets) and a TCP port.
public struct NetworkAddress: Sendable, Hashable, CustomStringConvertible {
    public let host: String
    public let port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// Parses "HOST:PORT", "[IPV6]:PORT"; port 0 asks a listener for any free port.
    public init(parsing text: String) throws(NetworkAddressError) {
        let hostPart: Substring
        let portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                throw NetworkAddressError(text: text, reason: "'[' without a closing ']'")
            }
            hostPart = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else {
                throw NetworkAddressError(text: text, reason: "expected ':PORT' after ']'")
            }
            portPart = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                throw NetworkAddressError(text: text, reason: "expected HOST:PORT or [IPV6]:PORT")
            }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
            if hostPart.contains(":") {
                throw NetworkAddressError(text: text, reason: "an IPv6 address needs brackets, e.g. [::1]:4444")
            }
        }
        guard !hostPart.isEmpty else { throw NetworkAddressError(text: text, reason: "empty host") }
        guard !hostPart.contains(where: { $0.isWhitespace || $0 == "[" || $0 == "]" || $0 == "/" }) else {
            throw NetworkAddressError(text: text, reason: "host '\(hostPart)' contains a character no host name or address has")
        }
        guard !portPart.isEmpty, portPart.allSatisfy({ $0.isASCII && $0.isNumber }), let port = UInt16(portPart) else {
            throw NetworkAddressError(text: text, reason: "port '\(portPart)' is not a number in 0...65535")
        }
        self.init(host: String(hostPart), port: port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// An address that does not parse or does not resolve.
public struct NetworkAddressError: Error, Sendable, Equatable, CustomStringConvertible {
    public let text: String
    public let reason: String

    public init(text: String, reason: String) {
        self.text = text
        self.reason = reason
    }

    public var description: String { "network address '\(text)': \(reason)" }
}
