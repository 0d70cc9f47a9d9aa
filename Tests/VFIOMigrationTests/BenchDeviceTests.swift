// `bench --device` through the library with mock devices: percentiles over the runs, every
// device RUNNING after each run, and after a fault that fails a run part-way.
import Foundation
import Testing
import VFIOMigration
import VFIOMock
import VFIOMockDevices

@Suite struct BenchDeviceTests {
    @Test func runsGivePercentilesAndLeaveEveryDeviceRunning() throws {
        let env = DeviceEnvironment.withMockDevices()
        let a = try env.open("mock:a?state=1MiB&flags=stop-copy,p2p,pre-copy&dirty-rate=4/1MiB")
        let b = try env.open("mock:b?state=512KiB&flags=stop-copy,p2p,pre-copy")
        let bench = try DeviceBenchmark(sources: [a, b], options: DeviceBenchOptions(sink: .memory, chunkSize: 256 << 10))
        let report = try bench.run(count: 4)
        #expect(report.runs.count == 4)
        #expect(report.runs.allSatisfy { $0.stateBytes >= (3 << 19) && $0.loadRate != nil })
        for (name, p) in report.percentiles {
            #expect(p.p25 <= p.p50 && p.p50 <= p.p90, "\(name)")
            let values = report.runs.compactMap { $0.phases[name] }
            #expect(p.p50 == BenchStatistics.median(values), "\(name)")
        }
        #expect(report.percentiles["downtime"] != nil && report.percentiles["load.writing"] != nil)
        #expect(report.finalStates == ["mock:a": "RUNNING", "mock:b": "RUNNING"])
        #expect(report.buffers?.bufferCount ?? 0 > 0)
    }

    @Test func theStateLoadsIntoSiblingTargets() throws {
        let env = DeviceEnvironment.withMockDevices()
        let a = try env.open("mock:a?state=1MiB&seed=4")
        let b = try env.open("mock:b?state=1MiB&seed=9")
        let bench = try DeviceBenchmark(sources: [a], targets: [b])
        try bench.runOnce()
        #expect(a.mock!.stateDigest == b.mock!.stateDigest, "the target holds the source's state")
        #expect(try b.currentState() == .running)
    }

    @Test func aFaultPartWayThroughTheRunsLeavesEveryDeviceRunning() throws {
        let env = DeviceEnvironment.withMockDevices()
        let a = try env.open("mock:a?state=1MiB&flags=stop-copy,p2p,pre-copy")
        let t = try env.open("mock:t?state=1MiB&flags=stop-copy,p2p,pre-copy")
        let bench = try DeviceBenchmark(sources: [a], targets: [t])
        try bench.runOnce()
        // The second run's save dies in STOP_COPY, the third's load in its validation.
        a.mock!.faults.noDeviceAfterBytes = 600 << 10
        do {
            try bench.runOnce()
            Issue.record("a run whose device died counted as a run")
        } catch {
            #expect(error.outcomes.map(\.device).sorted() == ["mock:a", "mock:t"], "\(error)")
        }
        #expect(try a.currentState() == .running)
        #expect(try t.currentState() == .running)
        a.mock!.faults.noDeviceAfterBytes = nil
        t.mock!.faults.arcFailures = [MockFaults.ArcFailure(from: .resuming, to: .stop, errno: .ioError, remaining: 1)]
        #expect(throws: VFIOError.self) { try bench.runOnce() }
        #expect(try a.currentState() == .running)
        #expect(try t.currentState() == .running)
        let report = bench.finish()
        #expect(report.runs.count == 1)
        #expect(report.failure != nil)
        #expect(report.finalStates == ["mock:a": "RUNNING", "mock:t": "RUNNING"])
        try bench.runOnce()
        #expect(bench.finish().runs.count == 2, "the devices are usable after the failures")
    }

    @Test func aTargetCountOtherThanTheDevicesIsRefused() throws {
        let env = DeviceEnvironment.withMockDevices()
        let a = try env.open("mock:a?state=64KiB")
        #expect(throws: VFIOError.self) { try DeviceBenchmark(sources: [a], targets: []) }
        #expect(throws: VFIOError.self) { try DeviceBenchmark(sources: []) }
    }
}
