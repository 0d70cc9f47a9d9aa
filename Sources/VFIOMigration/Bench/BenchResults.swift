// What a benchmark run found, as values and as JSON (docs/schemas/bench.schema.json): a row per
// measured variant (every repetition's time), a ratio per comparison (the median of the
// ratios of the repetitions, each taken between two variants that ran next to each other),
// and the target a ratio is held to, where the roadmap sets one.
import Foundation

/// A bound a ratio must keep.
public struct BenchTarget: Sendable, Hashable, Codable, CustomStringConvertible {
    public enum Relation: String, Sendable, Hashable, Codable {
        case atLeast
        case atMost
    }

    public var relation: Relation
    public var value: Double
    /// Where the target comes from ("issue 10"), for the reader.
    public var origin: String

    public init(_ relation: Relation, _ value: Double, origin: String) {
        self.relation = relation
        self.value = value
        self.origin = origin
    }

    public func isMet(by ratio: Double) -> Bool { relation == .atLeast ? ratio >= value : ratio <= value }

    public var description: String { (relation == .atLeast ? "≥ " : "≤ ") + String(format: "%.2f", value) }
}

/// One variant, measured once per repetition.
public struct BenchRow: Sendable, Hashable, Codable {
    public var id: String
    public var section: BenchSection
    public var label: String
    /// Bytes one run moves.
    public var bytes: UInt64
    /// Seconds of each run, in repetition order.
    public var seconds: [Double]
    /// CPU seconds the process used in each run (every thread: both ends of a loopback run).
    public var cpuSeconds: [Double]

    /// Bytes per second of the median run.
    public var rate: Double {
        guard let m = BenchStatistics.median(seconds), m > 0 else { return 0 }
        return Double(bytes) / m
    }
}

/// A comparison of two rows: `of` over `over`, as throughput (or as time, for costs).
public struct BenchRatio: Sendable, Hashable, Codable {
    public var id: String
    public var label: String
    public var of: String
    public var over: String
    /// Per repetition.
    public var values: [Double]
    public var median: Double
    /// The same ratio of the two variants' fastest runs (the ones the machine disturbed least).
    public var best: Double
    /// The ratio of bytes per CPU-second (for costs: of CPU-seconds per byte), median of the
    /// repetitions: what the work costs whatever else ran on the machine.
    public var cpu: Double
    public var target: BenchTarget?
    /// Whether the median keeps the target; nil without one.
    public var met: Bool?
    /// Why a target is known to be out of reach here, or what the ratio means.
    public var note: String?
}

public enum BenchSection: String, Sendable, Hashable, Codable, CaseIterable {
    /// Per chunk: framing, a page-cache read, a memcpy.
    case codec
    /// Guest pages: the fused zero-page scan and pages records against a memcpy.
    case pages
    /// Saves into /dev/null, a file and a pipe.
    case save
    /// Loads from a file.
    case load
    /// send/receive over loopback TCP with 1, 2 and 4 channels.
    case loopback
    /// The same over TLS 1.3.
    case tls
}

public struct EmulatorBenchReport: Sendable, Codable {
    public var host: BenchHost
    public var chunkSize: Int
    public var repetitions: Int
    public var rows: [BenchRow] = []
    public var ratios: [BenchRatio] = []
    /// Things the reader must know (a section skipped, where files were).
    public var notes: [String] = []
    public var loadAverageAtEnd: [Double] = []

    public func row(_ id: String) -> BenchRow? { rows.first { $0.id == id } }

    /// Ratios that missed their targets.
    public var missed: [BenchRatio] { ratios.filter { $0.met == false } }
}

extension BenchTarget {
    /// `ID>=0.95` or `ID<=0.5`: a ratio's id and the bound an operator holds it to; nil for
    /// anything else (no relation, an empty id, a bound that is not a finite number).
    public static func parse(_ text: String) -> (id: String, target: BenchTarget)? {
        for (token, relation) in [(">=", Relation.atLeast), ("<=", Relation.atMost)] {
            guard let range = text.range(of: token) else { continue }
            let id = text[..<range.lowerBound].trimmingCharacters(in: .whitespaces)
            let bound = text[range.upperBound...].trimmingCharacters(in: .whitespaces)
            guard !id.isEmpty, let value = Double(bound), value.isFinite else { return nil }
            return (id, BenchTarget(relation, value, origin: "--expect"))
        }
        return nil
    }
}
