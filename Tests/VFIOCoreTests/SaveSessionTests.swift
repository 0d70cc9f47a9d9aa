// The steppable save against scripted devices: each step does what QEMU's save handlers do,
// out-of-order use throws, a failure rolls every device back and reports typed outcomes with
// the partial report, and the one-call form follows the convergence policy.
import Testing
import VFIOBuffers
@testable import VFIOCore
import VFIOStream

@Suite struct SaveSessionTests {
    let all: MigrationFlags = [.stopCopy, .p2p, .preCopy]

    private func device(_ name: String, preCopy: Int = 300_000, stopCopy: Int = 50_000, flags: MigrationFlags? = nil) -> ScriptedDevice {
        let d = ScriptedDevice(name: name, flags: flags ?? all)
        d.preCopyData = pattern(preCopy, seed: UInt8(name.count))
        d.stopCopyData = pattern(stopCopy, seed: 99)
        d.stopCopyEstimate = 1 << 20
        return d
    }

    @Test func stepsWalkEveryDeviceThroughTheSaveInQEMUsOrder() throws {
        let a = device("a"), b = device("b")
        let session = try SaveSession(devices: [a, b], options: SaveOptions(chunkSize: 64 << 10))
        let sink = RecordingSink()
        try session.setup()
        #expect(a.state == .preCopy && b.state == .preCopy)
        #expect(session.usesPreCopy)

        // One bounded iteration reads at most the budget.
        let first = try session.iterate(device: 0, byteBudget: 100_000, into: sink)
        #expect(first.bytes == 100_000)
        #expect(!first.drained)
        #expect(sink.chunks.allSatisfy { $0.chunk.payload.count <= 64 << 10 })
        #expect(try session.pendingExact()[0].initialBytes == 200_000)
        #expect(session.pendingEstimate[0].initialBytes == 200_000, "the estimate is the last exact answer")

        let round = try session.iterateRound(into: sink)
        #expect(round.bytes == 200_000 + 300_000)
        #expect(session.report.rounds.count == 1)
        #expect(sink.progress.count == 2)

        try session.quiesce()
        #expect(a.state == .preCopyP2P && b.state == .preCopyP2P, "every device quiesces before any stops")
        a.stopCopyEstimate = 50_000
        try session.stop()
        #expect(a.state == .stopCopy && b.state == .stopCopy)
        #expect(session.report.devices[0].stopCopyEstimateAtSetup == 1 << 20)
        #expect(session.report.devices[0].stopCopyEstimateAtSwitchover == 50_000, "read at switchover, not at setup")

        let report = try session.complete(into: sink)
        #expect(sink.ended && sink.endedDevices == [0, 1])
        #expect(sink.bytes(of: 0) == a.preCopyData + a.stopCopyData)
        #expect(sink.bytes(of: 1) == b.preCopyData + b.stopCopyData)
        #expect(report.devices[0].preCopyBytes == 300_000 && report.devices[0].stopCopyBytes == 50_000)
        // Offsets cover each device's stream contiguously.
        var next = [UInt64](repeating: 0, count: 2)
        for (chunk, bytes) in sink.chunks {
            #expect(chunk.offset == next[chunk.device])
            next[chunk.device] += UInt64(bytes.count)
        }
        try session.finish(leaving: .stopped)
        #expect(a.state == .stop && b.state == .stop)
        #expect(a.channels[0].closeCount == 1 && b.channels[0].closeCount == 1)
        #expect(session.report.timings.downtime >= session.report.timings.finalRead)
    }

    @Test func outOfOrderStepsThrowAndTouchNothing() throws {
        let a = device("a")
        let session = try SaveSession(devices: [a])
        let sink = RecordingSink()
        func expectMisuse(_ error: VFIOError?) {
            #expect(error?.code == .invalidUse, "\(String(describing: error))")
            #expect(error?.outcomes.isEmpty == true, "misuse rolls nothing back")
        }
        expectMisuse(#expect(throws: VFIOError.self) { _ = try session.iterate(device: 0, into: sink) })
        expectMisuse(#expect(throws: VFIOError.self) { try session.stop() })
        expectMisuse(#expect(throws: VFIOError.self) { _ = try session.complete(into: sink) })
        expectMisuse(#expect(throws: VFIOError.self) { try session.finish(leaving: .running) })
        #expect(a.state == .running)
        #expect(!a.calls.contains { $0.hasPrefix("SET") })
        try session.setup()
        #expect(throws: VFIOError.self) { _ = try session.iterate(device: 5, into: sink) }
        #expect(throws: VFIOError.self) { _ = try session.iterate(device: 0, byteBudget: 0, into: sink) }
        #expect(throws: VFIOError.self) { try session.setup() }
        #expect(a.state == .preCopy, "misuse leaves the session where it was")
    }

    @Test func aFailedStepReturnsEverySourceToRunningAndSaysSoAsValues() throws {
        let a = device("a"), b = device("b")
        let session = try SaveSession(devices: [a, b], options: SaveOptions(chunkSize: 64 << 10))
        let sink = RecordingSink()
        sink.failAtChunk = 3
        try session.setup()
        do {
            try session.iterateRound(into: sink)
            Issue.record("a failing sink did not fail the round")
        } catch {
            #expect(error.errno == .noSpace)
            #expect(error.outcomes.count == 2)
            for outcome in error.outcomes {
                #expect(outcome.role == .source)
                #expect(outcome.finalState == .inState(.running), "\(outcome)")
                #expect(outcome.recovery == .moved(to: .running))
                #expect(outcome.isRunning)
            }
            #expect(error.saveReport?.devices[0].chunks == 2, "the partial report counts what reached the sink")
            #expect(error.description.contains("source devices: a returned to RUNNING; b returned to RUNNING"), "\(error)")
        }
        #expect(a.state == .running && b.state == .running)
        #expect(session.phase == .aborted)
        #expect(throws: VFIOError.self) { _ = try session.iterate(device: 0, into: sink) }
    }

    @Test func oneCallRunStopsWhenThePolicySaysSo() throws {
        let a = device("a")
        a.dirtyAfterDrain = 10 << 20 // never converges on its own
        let session = try SaveSession(devices: [a])
        let sink = RecordingSink()
        let report = try session.run(into: sink, policy: PendingBytesPolicy(convergedBelow: 1 << 20, maxRounds: 3))
        #expect(report.rounds.count == 3)
        #expect(report.converged == false)
        #expect(report.convergenceReason?.contains("round limit 3") == true, "\(String(describing: report.convergenceReason))")
        #expect(report.rounds.last?.decision?.hasPrefix("give up") == true)
        #expect(a.state == .stop)
    }

    /// The embedder's own pending bytes (its RAM) count in the decision.
    @Test func externalPendingBytesKeepPreCopyGoing() throws {
        struct CountingPolicy: ConvergencePolicy {
            func decide(after snapshot: RoundSnapshot) -> ConvergenceDecision {
                snapshot.externalPendingBytes == 0 ? .stop(reason: "RAM converged") : .iterate
            }
        }
        let a = device("a")
        var ram: [UInt64] = [3 << 20, 1 << 20, 0]
        let report = try SaveSession(devices: [a]).run(
            into: RecordingSink(), policy: CountingPolicy(), externalPendingBytes: { ram.removeFirst() })
        #expect(report.rounds.map(\.externalPendingBytes) == [3 << 20, 1 << 20, 0])
        #expect(report.converged == true)
        #expect(report.convergenceReason == "RAM converged")
    }

    @Test func beforeStopRefusalLeavesSourcesRunning() throws {
        let a = device("a")
        let session = try SaveSession(devices: [a])
        do {
            try session.run(into: RecordingSink(), beforeStop: { () throws(VFIOError) in
                throw VFIOError(.streamIncompatible, "incompatible target")
            })
            Issue.record("the refusal was ignored")
        } catch {
            #expect(error.code == .streamIncompatible)
            #expect(error.outcomes.map(\.finalState) == [.inState(.running)])
        }
        #expect(a.state == .running)
        #expect(!a.calls.contains("SET STOP_COPY"), "the source never stopped")
    }

    @Test func withoutPreCopyTheSaveStopsAtOnce() throws {
        let a = device("a", flags: [.stopCopy])
        let sink = RecordingSink()
        let report = try SaveSession(devices: [a]).run(into: sink, leaving: .running)
        #expect(!report.usedPreCopy)
        #expect(report.rounds.isEmpty)
        #expect(sink.bytes(of: 0) == a.preCopyData + a.stopCopyData)
        #expect(sink.chunks.allSatisfy { $0.chunk.phase == .stopCopy })
        #expect(a.state == .running)
    }

    @Test func reinitReportsAreOptedIntoAndCounted() throws {
        let a = device("a")
        a.offersReinit = true
        let session = try SaveSession(devices: [a])
        try session.setup()
        #expect(a.calls.contains("SET PRECOPY_INFOv2"))
        #expect(session.drivers[0].reportsReinit)
        let off = device("b")
        try SaveSession(devices: [off], options: SaveOptions(reportReinit: false)).setup()
        #expect(!off.calls.contains("SET PRECOPY_INFOv2"))
    }

    @Test func severalDevicesWithoutP2PAreRefusedBeforeAnyStateChange() throws {
        let a = device("a"), b = device("b", flags: [.stopCopy, .preCopy])
        #expect(throws: VFIOError.self) { _ = try SaveSession(devices: [a, b]) }
        #expect(!a.calls.contains { $0.hasPrefix("SET") } && !b.calls.contains { $0.hasPrefix("SET") })
    }
}
