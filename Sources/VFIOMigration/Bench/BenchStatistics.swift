// Medians, percentiles and the run order of a benchmark. Ratios are taken per repetition (the
// two variants ran next to each other) and the median of those is reported, so a slow spell
// of a shared machine lands on both sides of a ratio instead of on one variant.
public enum BenchStatistics {
    /// The median; nil for no values.
    public static func median(_ values: [Double]) -> Double? { percentile(50, of: values) }

    /// The `p`th percentile (0...100), interpolated between the two nearest ranks as numpy's
    /// default does; nil for no values.
    public static func percentile(_ p: Double, of values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        precondition(p >= 0 && p <= 100, "a percentile is between 0 and 100")
        let sorted = values.sorted()
        let rank = p / 100 * Double(sorted.count - 1)
        let low = Int(rank.rounded(.down))
        let high = min(low + 1, sorted.count - 1)
        return sorted[low] + (sorted[high] - sorted[low]) * (rank - Double(low))
    }

    /// `items` rotated by the repetition number and reversed in every other round of
    /// rotations: each variant runs first, last and between about equally often.
    public static func order<T>(_ items: [T], repetition: Int) -> [T] {
        guard !items.isEmpty else { return items }
        let shift = repetition % items.count
        let rotated = Array(items[shift...] + items[..<shift])
        return (repetition / items.count) % 2 == 1 ? rotated.reversed() : rotated
    }
}

/// One timed run: bytes moved and the wall-clock time it took.
public struct BenchTiming: Sendable, Hashable, Codable {
    public var bytes: UInt64
    public var seconds: Double

    public init(bytes: UInt64, seconds: Double) {
        self.bytes = bytes
        self.seconds = seconds
    }

    /// Bytes per second (0 for a run that took no time).
    public var rate: Double { seconds > 0 ? Double(bytes) / seconds : 0 }
}

/// Times `body`, which returns the bytes it moved.
func timed(_ body: () throws(VFIOError) -> UInt64) throws(VFIOError) -> BenchTiming {
    let clock = ContinuousClock()
    let start = clock.now
    let bytes = try body()
    return BenchTiming(bytes: bytes, seconds: (clock.now - start).seconds)
}
