// Durations in reports encode as seconds (a JSON number), not as Swift's [seconds, attoseconds]
// pair: the reports are read by people and by management tools. Package access: every module of
// the project encodes its reports so, and an embedder's own Codable types are left alone.

extension KeyedEncodingContainer {
    package mutating func encode(_ value: Duration, forKey key: Key) throws {
        try encode(value.seconds, forKey: key)
    }
}

extension KeyedEncodingContainer {
    package mutating func encodeIfPresent(_ value: Duration?, forKey key: Key) throws {
        guard let value else { return }
        try encode(value.seconds, forKey: key)
    }
}

extension KeyedDecodingContainer {
    package func decodeIfPresent(_ type: Duration.Type, forKey key: Key) throws -> Duration? {
        try decodeIfPresent(Double.self, forKey: key).map { .nanoseconds(Int64(($0 * 1e9).rounded())) }
    }

    package func decode(_ type: Duration.Type, forKey key: Key) throws -> Duration {
        .nanoseconds(Int64((try decode(Double.self, forKey: key) * 1e9).rounded()))
    }
}

extension Duration {
    /// The duration in seconds, as a Double.
    public var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }
}
