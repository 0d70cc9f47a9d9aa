// Whole migrations with guest memory on the mock: devices doing DMA into the memory while
// pre-copy runs (the workload advances with the mock's clock after every round), the memory
// and device rounds together under the downtime policy, a migration that cannot converge and
// says so with its numbers, a REINIT in the middle of pre-copy, one and several devices. The
// target's memory must end equal to the source's, and every target's state to its source's.
import Testing
import VFIOBuffers
import VFIOCore
import VFIOKernel
import VFIOMigration
import VFIOMock
import VFIOMockDevices

struct MemoryRig {
    let env: DeviceEnvironment
    let kernel: MockKernel
    let sources: [VFIODevice]
    let targets: [VFIODevice]
    let memory: GuestMemory
    let targetMemory: GuestMemory

    init(devices options: [String], pages: Int = 1024, workload: MockDMAWorkload?) throws {
        env = DeviceEnvironment.withMockDevices()
        kernel = env.mockKernel!
        var sources: [VFIODevice] = [], targets: [VFIODevice] = []
        for (i, o) in options.enumerated() {
            sources.append(try env.open("mock:src\(i)?\(o)&seed=\(11 + i)"))
            targets.append(try env.open("mock:dst\(i)?\(o)&seed=\(31 + i)"))
        }
        self.sources = sources
        self.targets = targets
        memory = try GuestMemory([try patterned(0x4000_0000, pages: pages, seed: 4, zeroPages: [2, 3, 500], name: "guest ram", writable: true)])
        targetMemory = try target(like: memory, fill: 0)
        for (i, device) in sources.enumerated() {
            try device.container.map(memory.regions[0])
            if var w = workload {
                w = MockDMAWorkload(rate: w.rate, hotSet: w.hotSet, pattern: w.pattern, seed: UInt64(7 + i))
                device.mock!.dmaWorkload = w
            }
        }
    }

    /// Saves with memory into bytes, the clock advancing `step` after every round, and loads
    /// the bytes into the targets and the target memory.
    func migrate(policy: any ConvergencePolicy, step: Duration = .milliseconds(50), budget: Int = 1 << 20,
                 pipeline: PipelineOptions? = PipelineOptions(bufferSize: 4 << 20, bufferCount: 3, lockMemory: false)) throws -> (Migration.SaveResult, Migration.LoadResult) {
        let sink = BytesSink()
        let session = try SaveSessionRun(rig: self, policy: policy, step: step, budget: budget, pipeline: pipeline, sink: sink)
        let saved = session.result
        let loaded = try Migration.load(targets, from: BytesSource(sink.bytes), memory: targetMemory)
        return (saved, loaded)
    }

    var memoryMatches: Bool { contents(memory) == contents(targetMemory) }
    var statesMatch: Bool { zip(sources, targets).allSatisfy { $0.mock!.stateDigest == $1.mock!.stateDigest } }
}

/// Migration.save with the clock stepped after every round.
struct SaveSessionRun {
    let result: Migration.SaveResult
    init(rig: MemoryRig, policy: any ConvergencePolicy, step: Duration, budget: Int, pipeline: PipelineOptions?, sink: BytesSink) throws {
        let kernel = rig.kernel
        result = try Migration.save(
            rig.sources, to: sink, options: SaveOptions(chunkSize: 256 << 10), policy: policy, pipeline: pipeline,
            memory: rig.memory, roundByteBudget: budget, afterRound: { _ in kernel.clock.advance(by: step) })
    }
}

@Suite(.serialized) struct MemoryMigrationTests {
    /// A small hot set: after the first pass over memory only it is dirty each round, which
    /// fits the downtime limit; the policy stops and says why, with numbers.
    @Test(arguments: [1, 2])
    func preCopyConvergesUnderADMAWorkload(devices: Int) throws {
        let rig = try MemoryRig(devices: Array(repeating: "state=512KiB", count: devices),
                                workload: MockDMAWorkload(rate: 64 << 20, hotSet: 64 << 10, pattern: .random))
        let (saved, loaded) = try rig.migrate(policy: DowntimePolicy(downtimeLimit: .milliseconds(2), switchoverBandwidth: 100e6))
        let report = saved.report
        #expect(report.converged == true, "\(report.convergenceReason ?? "")")
        #expect(report.convergenceReason?.contains("estimated downtime") == true && report.convergenceReason?.contains("within the limit 2.0 ms") == true, "\(report.convergenceReason ?? "")")
        #expect(report.rounds.count >= 4, "1 MiB a round over 4 MiB of memory")
        #expect(report.rounds.contains { ($0.memoryDirtyBytes ?? 0) > 0 }, "the workload dirtied pages between rounds")
        #expect(report.rounds.allSatisfy { $0.bandwidth != nil })
        #expect(report.estimatedDowntime != nil)
        let memory = try #require(report.memory)
        #expect(memory.preCopyBytes >= 4 << 20)
        #expect(memory.tracker.kind == .deviceDMALogging)
        #expect(rig.sources.allSatisfy { $0.mock!.dmaWrites > 0 })
        #expect(loaded.report.memory?.bytes ?? 0 >= 4 << 20)
        #expect(rig.memoryMatches)
        #expect(rig.statesMatch)
    }

    /// Every page written every round, faster than any link could move it: the remaining
    /// bytes stop falling and the policy gives up, saying so with the numbers; the final phase
    /// still carries every page.
    @Test func aWorkloadThatOutrunsTheLinkGivesUpWithTheNumbers() throws {
        let rig = try MemoryRig(devices: ["state=256KiB"], workload: MockDMAWorkload(rate: 1 << 30, pattern: .sequential))
        let (saved, _) = try rig.migrate(policy: DowntimePolicy(downtimeLimit: .milliseconds(2), maxRounds: 30, stallRounds: 3, switchoverBandwidth: 100e6), step: .milliseconds(20), pipeline: nil)
        let report = saved.report
        #expect(report.converged == false)
        let reason = try #require(report.convergenceReason)
        #expect(reason.contains("stopped falling"), "\(reason)")
        #expect(reason.contains("bytes remain") && reason.contains("memory") && reason.contains("estimated downtime"), "\(reason)")
        #expect(report.rounds.count < 30, "the stall ends it before the round cap")
        #expect((report.memory?.finalBytes ?? 0) > 0)
        #expect(rig.memoryMatches)
        #expect(rig.statesMatch)
    }

    /// A REINIT during pre-copy brings new initial data: not convergence, not a stall. The
    /// policy goes on until the new initial data is sent; the target gets the new state.
    @Test func aReinitDuringPreCopyIsNotTakenForConvergence() throws {
        let rig = try MemoryRig(devices: ["state=1MiB&reinit-after=256KiB"], pages: 256,
                                workload: MockDMAWorkload(rate: 16 << 20, hotSet: 16 << 10))
        let (saved, _) = try rig.migrate(policy: DowntimePolicy(downtimeLimit: .milliseconds(2), stallRounds: 2, switchoverBandwidth: 100e6), budget: 128 << 10)
        let report = saved.report
        #expect(report.devices[0].reinitCount >= 1)
        let reinit = try #require(report.rounds.firstIndex { $0.reinitialized })
        #expect(report.rounds[reinit].decision == "iterate", "\(report.rounds[reinit])")
        #expect(report.converged == true, "\(report.convergenceReason ?? "")")
        #expect(rig.statesMatch)
        #expect(rig.memoryMatches)
    }

    /// A device without PRE_COPY (a 6.1 kernel's test mdev): memory still pre-copies in rounds
    /// while the device only has stop-copy data, and no progress record is written for it.
    @Test func memoryRoundsWithADeviceThatHasNoPreCopy() throws {
        let rig = try MemoryRig(devices: ["state=256KiB&flags=stop-copy,p2p"], pages: 512,
                                workload: MockDMAWorkload(rate: 16 << 20, hotSet: 16 << 10))
        let (saved, _) = try rig.migrate(policy: DowntimePolicy(downtimeLimit: .milliseconds(2), switchoverBandwidth: 100e6))
        #expect(!saved.report.rounds.isEmpty, "memory rounds ran")
        #expect(saved.report.devices[0].preCopyBytes == 0)
        #expect(rig.memoryMatches)
        #expect(rig.statesMatch)
    }

    /// Without pre-copy every page goes after the stop, straight from memory.
    @Test func withoutPreCopyAllMemoryGoesAfterTheStop() throws {
        let rig = try MemoryRig(devices: ["state=256KiB"], workload: nil)
        let sink = BytesSink()
        let saved = try Migration.save(rig.sources, to: sink, options: SaveOptions(chunkSize: 256 << 10, preCopy: false), memory: rig.memory)
        #expect(saved.report.rounds.isEmpty)
        #expect(saved.report.memory?.finalBytes == 4 << 20)
        _ = try Migration.load(rig.targets, from: BytesSource(sink.bytes), memory: rig.targetMemory)
        #expect(rig.memoryMatches)
    }

    /// A save with memory into a sink that does not carry it fails at setup and rolls back.
    @Test func aSinkWithoutMemoryIsRefused() throws {
        let rig = try MemoryRig(devices: ["state=64KiB"], workload: nil)
        let tracker = try DirtyTrackerChoice.choose(for: rig.sources, memory: rig.memory)
        let session = try SaveSession(devices: rig.sources, memory: SaveMemory(memory: rig.memory, tracker: tracker))
        try session.setup()
        let capture = MemoryCapture(deviceCount: 1)
        #expect(throws: VFIOError.self) { try session.iterateMemory(into: capture) }
        #expect(rig.sources[0].mock!.migrationState == 2, "rolled back to RUNNING (2)")
    }

    /// An embedder's tracker that hands back bitmaps of the wrong shape gets an error naming
    /// it, not a crash, and the source goes back to RUNNING.
    @Test func aTrackerThatReshapesItsBitmapsIsAnErrorNotACrash() throws {
        final class Reshaping: DirtyPageTracker {
            var report = DirtyTrackerReport(kind: .type1Container, reason: "the embedder's own", precise: true)
            func start() throws(VFIOError) {}
            func collect(into bitmaps: inout [DirtyBitmap]) throws(VFIOError) { bitmaps.append(bitmaps[0]) }
            func stop() throws(VFIOError) {}
        }
        let rig = try MemoryRig(devices: ["state=64KiB"], workload: nil)
        let error = #expect(throws: VFIOError.self) {
            try Migration.save(rig.sources, to: BytesSink(), memory: rig.memory, memoryOptions: Migration.MemoryOptions(tracker: Reshaping()))
        }
        #expect(error?.code == .invalidArgument && error?.description.contains("2 bitmap(s) for 1 region(s)") == true, "\(String(describing: error))")
        #expect(rig.sources[0].mock!.migrationState == 2, "rolled back to RUNNING (2)")
    }
}
