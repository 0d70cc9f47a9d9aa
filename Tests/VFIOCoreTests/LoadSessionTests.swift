// The push-based load against scripted devices: begin, write bytes as they arrive, finish
// leaves the targets stopped until an explicit resume; misuse throws; failures reset every
// target and say so as values.
import Dispatch
import Synchronization
import Testing
import VFIOBuffers
@testable import VFIOCore
import VFIOStream

@Suite struct LoadSessionTests {
    let all: MigrationFlags = [.stopCopy, .p2p, .preCopy]

    private func buffer(_ bytes: [UInt8]) -> IOBuffer {
        let b = IOBuffer(capacity: max(bytes.count, 1))
        b.write(bytes, at: 0)
        return b
    }

    @Test func pushedBytesArriveInOrderAndTheTargetsWaitForResume() throws {
        let a = ScriptedDevice(name: "a", flags: all), b = ScriptedDevice(name: "b", flags: all)
        let session = try LoadSession(devices: [a, b])
        try session.begin()
        #expect(a.state == .resuming && b.state == .resuming)
        let one = pattern(10_000, seed: 1), two = pattern(7_000, seed: 2)
        try session.write(device: 0, from: buffer(one), range: 0..<4_000)
        try session.write(device: 1, from: buffer(two), range: 0..<two.count)
        try session.write(device: 0, from: buffer(one), range: 4_000..<one.count)
        try session.endDevice(0, totalBytes: 10_000)
        try session.endDevice(1)
        let report = try session.finish()
        #expect(report.devices.map(\.bytes) == [10_000, 7_000])
        #expect(a.channels[0].written == one && b.channels[0].written == two)
        #expect(a.state == .stop && b.state == .stop, "the VMM resumes them after its last RAM")
        try session.resume()
        #expect(a.state == .running && b.state == .running)
        #expect(a.calls.contains("SET RUNNING_P2P"), "several P2P devices resume through RUNNING_P2P")
    }

    @Test func misuseThrowsWithoutTouchingTheDevices() throws {
        let a = ScriptedDevice(name: "a", flags: all)
        let session = try LoadSession(devices: [a])
        let data = buffer(pattern(100, seed: 3))
        #expect(throws: VFIOError.self) { try session.write(device: 0, from: data, range: 0..<100) }
        #expect(throws: VFIOError.self) { try session.resume() }
        #expect(a.state == .running)
        try session.begin()
        #expect(throws: VFIOError.self) { try session.write(device: 1, from: data, range: 0..<100) }
        #expect(throws: VFIOError.self) { try session.write(device: 0, from: data, range: 50..<200) }
        try session.endDevice(0)
        #expect(throws: VFIOError.self) { try session.write(device: 0, from: data, range: 0..<100) }
        #expect(a.state == .resuming, "misuse aborts nothing")
    }

    @Test func finishBeforeEveryDeviceEndedIsMisuse() throws {
        let a = ScriptedDevice(name: "a", flags: all), b = ScriptedDevice(name: "b", flags: all)
        let session = try LoadSession(devices: [a, b])
        try session.begin()
        try session.endDevice(0)
        let error = #expect(throws: VFIOError.self) { try session.finish() }
        #expect(error?.code == .invalidUse && error?.description.contains("device(s) 1") == true, "\(String(describing: error))")
        #expect(a.state == .resuming && b.state == .resuming, "misuse aborts nothing")
        try session.endDevice(1)
        try session.finish()
        #expect(a.state == .stop && b.state == .stop)
    }

    @Test func concurrentAbortsResetEachTargetOnce() throws {
        let a = ScriptedDevice(name: "a", flags: all), b = ScriptedDevice(name: "b", flags: all)
        let session = try LoadSession(devices: [a, b])
        try session.begin()
        let results = Mutex<[[DeviceOutcome]]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            let outcomes = session.abort()
            results.withLock { $0.append(outcomes) }
        }
        #expect(a.calls.filter { $0 == "RESET" }.count == 1 && b.calls.filter { $0 == "RESET" }.count == 1, "\(a.calls) \(b.calls)")
        let all = results.withLock { $0 }
        #expect(all.count == 8 && all.allSatisfy { $0 == all[0] && $0.count == 2 }, "every caller gets the one reset's outcomes")
    }

    @Test func aShortDeviceStreamResetsEveryTarget() throws {
        let a = ScriptedDevice(name: "a", flags: all), b = ScriptedDevice(name: "b", flags: all)
        let session = try LoadSession(devices: [a, b])
        try session.begin()
        try session.write(device: 0, from: buffer(pattern(1_000, seed: 4)), range: 0..<1_000)
        do {
            try session.endDevice(0, totalBytes: 2_000)
            Issue.record("a short device stream was accepted")
        } catch {
            #expect(error.code == .streamCorrupt)
            #expect(error.device == "a")
            #expect(error.outcomes.map(\.recovery) == [.reset, .reset])
            #expect(error.outcomes.allSatisfy { $0.role == .target && $0.finalState == .reset })
            #expect(error.loadReport?.devices[0].bytes == 1_000)
            #expect(error.description.contains("target devices: a reset to RUNNING, loaded state discarded"), "\(error)")
        }
        #expect(a.state == .running && b.state == .running)
        #expect(session.phase == .aborted)
    }

    @Test func aRefusedValidationResetsTheTargets() throws {
        let a = ScriptedDevice(name: "a", flags: [.stopCopy])
        a.failArc = (MigrationArc(.resuming, .stop), .invalidArgument, false)
        let session = try LoadSession(devices: [a])
        try session.begin()
        try session.endDevice(0)
        #expect(throws: VFIOError.self) { _ = try session.finish() }
        #expect(a.calls.suffix(2) == ["GET state", "RESET"])
        #expect(a.state == .running)
    }
}
