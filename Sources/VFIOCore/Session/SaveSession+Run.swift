// The one-call save, built on the steps: setup, pre-copy rounds until the policy says stop,
// the caller's last check while the sources still run, quiesce, stop-copy, complete, finish.

extension SaveSession {
    /// Runs the whole save into `sink`. `beforeStop` runs after pre-copy and before any device
    /// stops (the place to refuse an incompatible target while the sources still run);
    /// `externalPendingBytes` is asked after every round for bytes the embedder still has to
    /// move (its RAM), which the policy counts too. On failure every device is returned to
    /// RUNNING (or reset) and the error says where each one was left.
    @discardableResult
    public func run(
        into sink: any SaveSink,
        policy: any ConvergencePolicy = PendingBytesPolicy(),
        roundByteBudget: Int = .max,
        leaving final: SourceFinalState = .stopped,
        externalPendingBytes: () -> UInt64? = { nil },
        afterRound: (SaveReport.Round) -> Void = { _ in },
        beforeStop: () throws(VFIOError) -> Void = {}
    ) throws(VFIOError) -> SaveReport {
        try setup()
        // Memory rounds run whenever pre-copy is wanted, with or without device pre-copy.
        if usesPreCopy || (memoryState != nil && options.preCopy) {
            while true {
                var round = try iterateRound(byteBudget: roundByteBudget, into: sink, externalPendingBytes: externalPendingBytes())
                var snapshot = RoundSnapshot(
                    round: round.index, pending: pendingEstimate, roundBytes: round.bytes, roundDuration: round.duration,
                    externalPendingBytes: round.externalPendingBytes ?? 0, history: report.rounds)
                snapshot.memoryPendingBytes = round.memoryPendingBytes ?? 0
                snapshot.memoryRoundBytes = round.memoryBytes ?? 0
                round.bandwidth = snapshot.bandwidth
                round.estimatedDowntime = snapshot.bestBandwidth.map { DowntimePolicy.estimate(snapshot.remainingBytes, bandwidth: $0) }
                let decision = policy.decide(after: snapshot)
                report.estimatedDowntime = round.estimatedDowntime
                defer { afterRound(round) }
                switch decision {
                case .iterate:
                    round.decision = "iterate"
                    recordDecision(round)
                    continue
                case .stop(let reason):
                    round.decision = "stop: \(reason)"
                    recordDecision(round, converged: true, reason: reason)
                case .giveUp(let reason):
                    round.decision = "give up: \(reason)"
                    recordDecision(round, converged: false, reason: reason)
                }
                break
            }
        }
        do {
            try beforeStop()
        } catch {
            var failure = error
            failure.outcomes = abort()
            failure.saveReport = report
            throw failure
        }
        try stop()
        try complete(into: sink)
        try finish(leaving: final)
        return report
    }
}
