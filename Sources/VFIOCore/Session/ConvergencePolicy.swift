// When pre-copy stops. The session measures; a policy decides. The embedder can supply its
// own (its RAM counts too: it passes its pending bytes with every round).

/// What a policy sees after a pre-copy round.
public struct RoundSnapshot: Sendable {
    /// 1 for the first round.
    public var round: Int
    /// Every device's pending state, read after the round (PRECOPY_INFO and MIG_DATA_SIZE).
    public var pending: [PendingState]
    /// Device bytes read this round and the time it took.
    public var roundBytes: UInt64
    public var roundDuration: Duration
    /// Bytes the embedder still has to move itself (its RAM), when it said.
    public var externalPendingBytes: UInt64
    /// The rounds so far, this one last.
    public var history: [SaveReport.Round]
    /// Guest memory the session sends: page bytes still dirty after the round's sync, and
    /// page bytes sent this round (0 without memory).
    public var memoryPendingBytes: UInt64 = 0
    public var memoryRoundBytes: UInt64 = 0

    /// Device, memory and embedder bytes a stop now would still have to move.
    public var remainingBytes: UInt64 { pending.reduce(externalPendingBytes.saturatingAdd(memoryPendingBytes)) { $0.saturatingAdd($1.remainingBytes) } }

    /// Bytes per second moved this round, devices and memory (nil for an empty or instant round).
    public var bandwidth: Double? {
        let seconds = roundDuration.seconds
        let bytes = roundBytes.saturatingAdd(memoryRoundBytes)
        return bytes > 0 && seconds > 0 ? Double(bytes) / seconds : nil
    }

    /// The best bandwidth of the rounds so far: a round that found little to move measures
    /// its own size, not the link.
    public var bestBandwidth: Double? {
        (history.compactMap { r in r.duration.seconds > 0 && r.totalBytes > 0 ? Double(r.totalBytes) / r.duration.seconds : nil } + [bandwidth].compactMap { $0 }).max()
    }
}

public enum ConvergenceDecision: Sendable, Equatable {
    /// Run another round.
    case iterate
    /// Stop: the remaining state fits; the reason says why, with numbers.
    case stop(reason: String)
    /// Stop although the state did not converge (round cap, no progress); say so.
    case giveUp(reason: String)
}

/// Decides after each pre-copy round whether to stop.
public protocol ConvergencePolicy {
    func decide(after snapshot: RoundSnapshot) -> ConvergenceDecision
}

/// Stop once every device has sent its initial data and what it reports dirty is at most
/// `convergedBelow` (and the embedder's own pending bytes too); give up after `maxRounds`.
public struct PendingBytesPolicy: ConvergencePolicy, Sendable {
    public var convergedBelow: UInt64
    public var maxRounds: Int

    public init(convergedBelow: UInt64 = 1 << 20, maxRounds: Int = 16) {
        self.convergedBelow = convergedBelow
        self.maxRounds = max(1, maxRounds)
    }

    public func decide(after snapshot: RoundSnapshot) -> ConvergenceDecision {
        // Saturating: the embedder's own count may be anything.
        let initial = snapshot.pending.reduce(UInt64(0)) { $0.saturatingAdd($1.initialBytes) }
        let dirty = snapshot.pending.reduce(snapshot.externalPendingBytes.saturatingAdd(snapshot.memoryPendingBytes)) { $0.saturatingAdd($1.dirtyBytes) }
        if initial == 0 && dirty <= convergedBelow {
            return .stop(reason: "converged after round \(snapshot.round): \(dirty) dirty bytes pending (limit \(convergedBelow))")
        }
        if snapshot.round >= maxRounds {
            return .giveUp(reason: "round limit \(maxRounds) reached with \(initial) initial and \(dirty) dirty bytes pending")
        }
        return .iterate
    }
}

/// Stops when what a stop would still move (every device's initial and dirty bytes from
/// PRECOPY_INFO and its MIG_DATA_SIZE, the dirty guest memory, the embedder's own bytes)
/// fits the downtime limit at the bandwidth measured; gives up at the round cap, or when the
/// remaining bytes stopped falling for `stallRounds` rounds. Never stops while a device still
/// has initial data, and a REINIT restarts the count of rounds without progress (new initial
/// data is not the guest outrunning the link). Every decision says its numbers.
public struct DowntimePolicy: ConvergencePolicy, Sendable {
    public var downtimeLimit: Duration
    public var maxRounds: Int
    public var stallRounds: Int
    /// Bytes per second the switchover can count on, when the operator knows it better than
    /// a round measures it (QEMU's avail-switchover-bandwidth); nil: the best round's.
    public var switchoverBandwidth: Double?

    public init(downtimeLimit: Duration = .milliseconds(300), maxRounds: Int = 30, stallRounds: Int = 5, switchoverBandwidth: Double? = nil) {
        self.downtimeLimit = downtimeLimit
        self.maxRounds = max(1, maxRounds)
        self.stallRounds = max(1, stallRounds)
        self.switchoverBandwidth = switchoverBandwidth.flatMap { $0 > 0 ? $0 : nil }
    }

    /// Remaining bytes over bandwidth, as a duration.
    public static func estimate(_ bytes: UInt64, bandwidth: Double) -> Duration {
        // Double(Int64.max) rounds up to 2^63, which no Int64 holds: compare before converting.
        let nanoseconds = (Double(bytes) / bandwidth * 1e9).rounded(.up)
        return nanoseconds.isFinite && nanoseconds < 0x1p63 ? .nanoseconds(Int64(nanoseconds)) : .nanoseconds(Int64.max)
    }

    public func decide(after snapshot: RoundSnapshot) -> ConvergenceDecision {
        let initial = snapshot.pending.reduce(UInt64(0)) { $0.saturatingAdd($1.initialBytes) }
        let remaining = snapshot.remainingBytes
        let numbers = Self.describe(snapshot, bandwidth: switchoverBandwidth)
        if initial == 0, let bandwidth = switchoverBandwidth ?? snapshot.bestBandwidth {
            let estimate = Self.estimate(remaining, bandwidth: bandwidth)
            if estimate <= downtimeLimit {
                return .stop(reason: "converged after round \(snapshot.round): \(numbers), within the limit \(Self.ms(downtimeLimit))")
            }
        }
        if snapshot.round >= maxRounds {
            return .giveUp(reason: "round limit \(maxRounds) reached without converging: \(numbers)")
        }
        // Rounds since the last REINIT; the remaining bytes must reach a new low within
        // stallRounds rounds.
        let since = snapshot.history.lastIndex(where: \.reinitialized).map { snapshot.history[($0 + 1)...] } ?? snapshot.history[...]
        if since.count > stallRounds {
            let recent = since.suffix(stallRounds).map(\.remainingBytes)
            let before = since.dropLast(stallRounds).map(\.remainingBytes).min() ?? .max
            if let low = recent.min(), low >= before {
                return .giveUp(reason: "the remaining bytes stopped falling: no round of the last \(stallRounds) went below \(before) bytes; \(numbers)")
            }
        }
        return .iterate
    }

    static func describe(_ s: RoundSnapshot, bandwidth given: Double? = nil) -> String {
        let initial = s.pending.reduce(UInt64(0)) { $0.saturatingAdd($1.initialBytes) }
        let dirty = s.pending.reduce(UInt64(0)) { $0.saturatingAdd($1.dirtyBytes) }
        let stopCopy = s.pending.reduce(UInt64(0)) { $0.saturatingAdd($1.stopCopyEstimate ?? 0) }
        let unknown = s.pending.filter { $0.stopCopyEstimate == nil }.map(\.device)
        var text = "\(s.remainingBytes) bytes remain (devices: \(initial) initial + \(dirty) dirty + \(stopCopy) stop-copy"
        if !unknown.isEmpty { text += ", no MIG_DATA_SIZE from \(unknown.joined(separator: ", "))" }
        text += "; memory \(s.memoryPendingBytes) dirty; embedder \(s.externalPendingBytes))"
        if let rate = s.history.last?.dirtyRate { text += ", memory dirtied at \(mb(rate))" }
        text += (given ?? s.bestBandwidth).map { " at \(mb($0))\(given == nil ? "" : " (given)"), estimated downtime \(ms(estimate(s.remainingBytes, bandwidth: $0)))" } ?? ", bandwidth not measured yet"
        return text
    }

    static func mb(_ rate: Double) -> String { "\(Int((rate / 1e6).rounded())) MB/s" }
    static func ms(_ d: Duration) -> String {
        let v = d.seconds * 1000
        return v < 10 ? "\((v * 100).rounded() / 100) ms" : "\(Int(v.rounded())) ms"
    }
}

extension UInt64 {
    /// The sum, or UInt64.max where it would overflow.
    func saturatingAdd(_ other: UInt64) -> UInt64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? .max : sum
    }
}
