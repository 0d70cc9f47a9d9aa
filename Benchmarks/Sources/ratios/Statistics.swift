// Medians, run order, timing and the report's number formats.
import Foundation

func median(_ values: [Double]) -> Double {
    precondition(!values.isEmpty, "median of nothing")
    let sorted = values.sorted()
    let mid = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
}

/// Time of `body` run `count` times, per run.
func timePerRun(_ count: Int, _ body: () -> Void) -> Double {
    let clock = ContinuousClock()
    let start = clock.now
    for _ in 0..<count { body() }
    return seconds(clock.now - start) / Double(count)
}

/// Rotates `items` by the repetition number, reversed in every other round of rotations:
/// every variant runs first, last and in between about equally often, so a slow spell of
/// the shared machine does not always land on the same one.
func order<T>(_ items: [T], repetition: Int) -> [T] {
    let shift = repetition % items.count
    let rotated = Array(items[shift...] + items[..<shift])
    return (repetition / items.count) % 2 == 1 ? rotated.reversed() : rotated
}

func format(_ value: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", value) }

extension String {
    func leftPad(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
    func rightPad(_ width: Int) -> String { padding(toLength: max(width, count), withPad: " ", startingAt: 0) }
}

/// One line of the closing table.
struct Verdict {
    var name: String
    var measured: String
    var target: String
    var pass: Bool
}

/// What else ran on the machine: the load average, read before and after.
func loadAverage() -> String {
    let text = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?"
    return text.split(separator: " ").prefix(3).joined(separator: " ")
}

func machineLine() -> String {
    let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
        .split(separator: "\n").first(where: { $0.hasPrefix("model name") })?
        .split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown CPU"
    let release = (try? String(contentsOfFile: "/proc/sys/kernel/osrelease", encoding: .utf8))?
        .trimmingCharacters(in: .whitespacesAndNewlines) ?? "unknown"
    return "\(cpu), \(ProcessInfo.processInfo.activeProcessorCount) CPUs, Linux \(release)"
}
