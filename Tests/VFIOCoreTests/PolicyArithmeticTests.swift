// The embedder's pending bytes reach the policies unchecked: sums saturate instead of
// trapping (a crash) or wrapping (a huge backlog taken for convergence).
import Testing
@testable import VFIOCore

@Suite struct PolicyArithmeticTests {
    func snapshot(external: UInt64, memory: UInt64) -> RoundSnapshot {
        RoundSnapshot(round: 1, pending: [], roundBytes: 1 << 20, roundDuration: .milliseconds(10),
                      externalPendingBytes: external, history: [], memoryPendingBytes: memory)
    }

    @Test func aHugeEmbedderBacklogIsNeitherACrashNorConvergence() {
        let s = snapshot(external: .max, memory: 1 << 30)
        #expect(s.remainingBytes == .max)
        if case .stop = PendingBytesPolicy().decide(after: s) { Issue.record("pending-bytes policy stopped on UInt64.max pending") }
        if case .stop = DowntimePolicy().decide(after: s) { Issue.record("downtime policy stopped on UInt64.max pending") }
    }

    @Test func smallBacklogsStillConverge() {
        if case .stop = PendingBytesPolicy().decide(after: snapshot(external: 4096, memory: 0)) {} else {
            Issue.record("4 KiB pending is below the 1 MiB default")
        }
    }
}
