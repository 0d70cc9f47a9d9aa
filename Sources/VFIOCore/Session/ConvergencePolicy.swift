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

    /// Device and embedder bytes a stop now would still have to move.
    public var remainingBytes: UInt64 { pending.reduce(externalPendingBytes) { $0 &+ $1.remainingBytes } }

    /// Bytes per second moved this round (nil for an empty or instant round).
    public var bandwidth: Double? {
        let seconds = roundDuration.seconds
        return roundBytes > 0 && seconds > 0 ? Double(roundBytes) / seconds : nil
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
        let initial = snapshot.pending.reduce(0) { $0 + $1.initialBytes }
        let dirty = snapshot.pending.reduce(snapshot.externalPendingBytes) { $0 + $1.dirtyBytes }
        if initial == 0 && dirty <= convergedBelow {
            return .stop(reason: "converged after round \(snapshot.round): \(dirty) dirty bytes pending (limit \(convergedBelow))")
        }
        if snapshot.round >= maxRounds {
            return .giveUp(reason: "round limit \(maxRounds) reached with \(initial) initial and \(dirty) dirty bytes pending")
        }
        return .iterate
    }
}
