// Sizes, durations and rates for people ("1.50 GiB", "349 µs", "1.20 GiB/s"), and sizes
// from people ("64KiB").
import Foundation

/// Parses sizes like 4096, 0x1000, 64KiB, 1MiB, 16GiB, 1TiB (units case-insensitive).
func parseSize(_ text: String) throws(CLIFailure) -> Int {
    let units: [(String, Int)] = [("kib", 10), ("mib", 20), ("gib", 30), ("tib", 40), ("k", 10), ("m", 20), ("g", 30), ("t", 40), ("b", 0), ("", 0)]
    let lower = text.lowercased()
    if lower.hasPrefix("0x"), let n = Int(lower.dropFirst(2), radix: 16), n >= 0 { return n }
    for (suffix, shift) in units where lower.hasSuffix(suffix) {
        if let n = Int(lower.dropLast(suffix.count)), n >= 0, n <= Int.max >> shift { return n << shift }
    }
    throw CLIFailure(.usage, "bad size '\(shown(text, limit: 40))' (use e.g. 65536, 0x10000, 64KiB, 1MiB, 1TiB)")
}

func formatBytes(_ n: UInt64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
    var value = Double(n)
    var i = 0
    while value >= 1024 && i < units.count - 1 {
        value /= 1024
        i += 1
    }
    return i == 0 ? "\(n) B" : String(format: "%.2f %@", value, units[i])
}

func formatBytes(_ n: Int) -> String { formatBytes(UInt64(max(0, n))) }

/// "349 µs", "12.5 ms", "2.31 s", "4 min 05 s".
func formatDuration(_ d: Duration) -> String {
    let (seconds, attoseconds) = d.components
    let total = Double(seconds) + Double(attoseconds) / 1e18
    return formatSeconds(total)
}

func formatSeconds(_ total: Double) -> String {
    if total < 1e-3 { return String(format: "%.0f µs", total * 1e6) }
    if total < 1 { return String(format: "%.1f ms", total * 1e3) }
    if total < 120 { return String(format: "%.2f s", total) }
    let whole = Int(total.rounded())
    if whole < 7200 { return String(format: "%d min %02d s", whole / 60, whole % 60) }
    return String(format: "%d h %02d min", whole / 3600, (whole % 3600) / 60)
}

/// Bytes per second as "1.20 GiB/s".
func formatRate(bytes: UInt64, seconds: Double) -> String {
    guard seconds > 0 else { return "-" }
    return formatBytes(UInt64(Double(bytes) / seconds)) + "/s"
}
