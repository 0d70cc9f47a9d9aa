// QEMU's switchover acknowledgement on our channels: the source does not stop its devices
// until the target said it loaded every pre-copy device's initial data (loading it is the
// slow part of a resume for devices such as mlx5, and it then happens while the guest still
// runs). A REINIT report brings new initial data, so a new acknowledgement is needed.
import Foundation
import Synchronization
import VFIOCore

/// The policy the session runs: the caller's, held back while acknowledgements are missing.
struct SwitchoverGate: ConvergencePolicy {
    let base: any ConvergencePolicy
    let transfer: SendSession
    let poll: Duration = .milliseconds(20)

    func decide(after snapshot: RoundSnapshot) -> ConvergenceDecision {
        transfer.noteRound(snapshot)
        if let reason = transfer.cancellation?.reason { return .giveUp(reason: reason) }
        let decision = base.decide(after: snapshot)
        if case .iterate = decision { return decision }
        guard transfer.waitsForAcks else { return decision }
        // What pre-copy produced so far must reach the target before it can acknowledge it.
        transfer.flushOutput()
        switch transfer.awaitAcks(upTo: poll) {
        case .acknowledged, .failed, .timedOut:
            return decision  // beforeStop says why when it was not acknowledged
        case .pending:
            return .iterate
        }
    }
}

/// Per device, where its initial data last became complete (the offset of its data stream at
/// that round's end) and how far the target acknowledged having loaded it.
struct AckLedger: Sendable {
    var preCopy: [Bool]
    var complete: [Bool]
    var required: [UInt64?]
    var acknowledged: [UInt64?]
    var acknowledgements: [Int]
    var firstWait: ContinuousClock.Instant?

    init(preCopy: [Bool]) {
        self.preCopy = preCopy
        complete = Array(repeating: false, count: preCopy.count)
        required = Array(repeating: nil, count: preCopy.count)
        acknowledged = Array(repeating: nil, count: preCopy.count)
        acknowledgements = Array(repeating: 0, count: preCopy.count)
    }

    /// After a round: initial bytes 0 completes the initial data at the device's offset; a
    /// REINIT reported this round completed new initial data, so the requirement moves on.
    mutating func note(_ pending: [PendingState], offsets: [UInt64]) {
        for (i, p) in pending.enumerated() where preCopy[i] && offsets.indices.contains(i) {
            if p.initialBytes == 0 {
                if !complete[i] || p.reinitialized || required[i] == nil {
                    complete[i] = true
                    required[i] = offsets[i]
                }
            } else {
                complete[i] = false
            }
        }
    }

    mutating func acknowledge(device i: Int, offset: UInt64) {
        guard acknowledged.indices.contains(i) else { return }
        acknowledged[i] = max(acknowledged[i] ?? 0, offset)
        acknowledgements[i] += 1
    }

    private func done(_ i: Int) -> Bool {
        guard preCopy[i] else { return true }
        guard complete[i], let required = required[i], let acked = acknowledged[i] else { return false }
        return acked >= required
    }

    var satisfied: Bool { preCopy.indices.allSatisfy(done) }
    var missing: [Int] { preCopy.indices.filter { !done($0) } }
}
