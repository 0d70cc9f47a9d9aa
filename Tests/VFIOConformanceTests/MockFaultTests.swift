// The engine against every fault the emulator can inject (docs/mock.md, Faults): each test
// ends with the devices in a reported, recoverable state, and with every descriptor and
// helper thread of the emulator released once the device objects are gone.
import Foundation
import Testing
import VFIOBuffers
import VFIOCore
import VFIOKernel
import VFIOMigration
import VFIOMockDevices
import VFIOMock

// MARK: helpers

/// Runs `scenario` in a fresh environment; once it returned (and with it every device,
/// driver and data fd object it made), the emulator must hold no descriptor and no thread.
/// Producer and consumer threads finish on their own schedule, so the counts get up to 2 s.
func withLeakCheck(
    sourceLocation: SourceLocation = #_sourceLocation, _ scenario: (DeviceEnvironment) throws -> Void
) throws {
    let env = DeviceEnvironment.withMockDevices()
    try scenario(env)
    let kernel = env.mockKernel!
    let deadline = Date().addingTimeInterval(2)
    func counts() -> [Int] { [kernel.openDescriptorCount, kernel.emulatorDescriptorCount, kernel.liveThreadCount] }
    while counts() != [0, 0, 0] && Date() < deadline { usleep(2_000) }
    #expect(kernel.openDescriptorCount == 0, "descriptors handed out and never closed", sourceLocation: sourceLocation)
    #expect(kernel.emulatorDescriptorCount == 0, "descriptors the emulator still holds", sourceLocation: sourceLocation)
    #expect(kernel.liveThreadCount == 0, "emulator threads still running", sourceLocation: sourceLocation)
}

/// Runs `body`, which must fail, and returns its error.
func expectFailure<T>(sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws(VFIOError) -> T) -> VFIOError? {
    do {
        _ = try body()
        Issue.record("expected a VFIOError", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error
    }
}

extension MockDevice {
    var state: MockDeviceState { MockDeviceState(rawValue: migrationState)! }
}

private let stateSet = "VFIO_DEVICE_FEATURE[MIG_DEVICE_STATE|SET]"

/// A save into memory that leaves the devices where `finalState` says.
@discardableResult
private func save(
    _ drivers: [MigrationDriver], preCopy: Bool = true, finalState: SourceFinalState = .stopped, chunkSize: Int = 64 << 10
) throws(VFIOError) -> MemoryCapture {
    let memory = MemoryCapture(deviceCount: drivers.count)
    let session = try SaveSession(drivers: drivers, options: SaveOptions(chunkSize: chunkSize, preCopy: preCopy))
    try session.run(into: memory, policy: PendingBytesPolicy(maxRounds: 4), leaving: finalState)
    return memory
}

/// A load from memory that leaves the targets RUNNING.
private func load(_ drivers: [MigrationDriver], from capture: MemoryCapture) throws(VFIOError) {
    try LoadSession(drivers: drivers).run(from: capture, leaving: .running)
}

/// The device is usable again: with its faults cleared, a complete save succeeds and leaves it RUNNING.
private func expectRecoverable(_ driver: MigrationDriver, _ mock: MockDevice, sourceLocation: SourceLocation = #_sourceLocation) {
    mock.faults = MockFaults()
    do {
        let memory = try save([driver], finalState: .running)
        #expect(memory.isComplete, sourceLocation: sourceLocation)
        #expect(mock.state == .running, sourceLocation: sourceLocation)
    } catch {
        Issue.record("the device did not recover: \(error)", sourceLocation: sourceLocation)
    }
}

// MARK: tests

@Suite(.timeLimit(.minutes(1))) struct MockFaultTests {
    /// A source arc fails: the error names the arc's request, where the device really is and
    /// the errno; every source device (the healthy one first in line too) is back in RUNNING.
    struct SourceArc: Sendable, CustomStringConvertible {
        var arc: String
        var errno: ErrorNumber
        var flags: String
        var preCopy: Bool
        var requested: MigrationState
        var observed: MigrationState
        /// What recovery did to the failing device: a SET back to RUNNING, nothing, or (when
        /// the way back needs the failing arc again) a reset.
        var recovery: String
        var description: String { "\(arc):\(errno.rawValue) flags=\(flags)" }
    }

    static let sourceArcs: [SourceArc] = [
        SourceArc(arc: "PRE_COPY>PRE_COPY_P2P", errno: .ioError, flags: "stop-copy,p2p,pre-copy", preCopy: true,
                  requested: .preCopyP2P, observed: .preCopy, recovery: "returned to RUNNING"),
        SourceArc(arc: "RUNNING_P2P>STOP", errno: .noMemory, flags: "stop-copy,p2p", preCopy: false,
                  requested: .stopCopy, observed: .runningP2P, recovery: "returned to RUNNING"),
        SourceArc(arc: "RUNNING>PRE_COPY", errno: .busy, flags: "stop-copy,p2p,pre-copy", preCopy: true,
                  requested: .preCopy, observed: .running, recovery: "left in RUNNING"),
        SourceArc(arc: "STOP_COPY>STOP", errno: .ioError, flags: "stop-copy,p2p", preCopy: false,
                  requested: .stop, observed: .stopCopy, recovery: "reset to RUNNING"),
    ]

    @Test(arguments: sourceArcs)
    func failedSourceArcReturnsEverySourceToRunning(_ c: SourceArc) throws {
        try withLeakCheck { env in
            let good = try env.open("mock:good?state=256KiB&flags=\(c.flags)")
            let bad = try env.open("mock:bad?state=256KiB&flags=\(c.flags)&fail-arc=\(c.arc):\(c.errno.rawValue)")
            let drivers = [try MigrationDriver(device: good), try MigrationDriver(device: bad)]
            guard let error = expectFailure({ () throws(VFIOError) in try save(drivers, preCopy: c.preCopy) }) else { return }
            #expect(error.code == .deviceError)
            #expect(error.device == "mock:bad")
            #expect(error.errno == c.errno)
            #expect(error.operation == stateSet)
            #expect(error.state?.requested == c.requested)
            #expect(error.state?.observed == c.observed)
            #expect(error.failingDeviceOutcome?.recoveryDescription == c.recovery)
            let text = error.description
            #expect(text.contains("failed to enter \(c.requested) from "), "\(text)")
            #expect(text.contains("on mock:bad"), "\(text)")
            #expect(text.contains(stateSet + " " + c.errno.description), "\(text)")
            #expect(text.contains("device is in \(c.observed)"), "\(text)")
            #expect(text.contains("mock:good returned to RUNNING"), "\(text)")
            #expect(text.contains("mock:bad \(c.recovery)"), "\(text)")
            for (driver, mock) in zip(drivers, [good.mock!, bad.mock!]) {
                #expect(mock.state == .running, "\(mock.name)")
                #expect(driver.knownState == .running, "\(mock.name)")
                #expect(!driver.hasSession, "\(mock.name): data fd still open")
            }
            let failedArc = bad.mock!.arcHistory.first { $0.errno != nil }
            #expect(failedArc?.description.hasPrefix(c.arc + " (") == true, "\(String(describing: failedArc))")
            #expect(failedArc?.errno?.rawValue == c.errno.rawValue)
            expectRecoverable(drivers[1], bad.mock!)
        }
    }

    /// RESUMING -> STOP refused: every target is reset (the uAPI's way to abandon a resume),
    /// keeps the state it had, and the error says so, also when the refusal lands in ERROR.
    @Test(arguments: ["", ":error"])
    func refusedResumeResetsEveryTarget(landing: String) throws {
        try withLeakCheck { env in
            let source0 = try env.open("mock:s0?state=300KiB&seed=1")
            let source1 = try env.open("mock:s1?state=300KiB&seed=2")
            let t0 = try env.open("mock:t0?state=300KiB&seed=3")
            let t1 = try env.open("mock:t1?state=300KiB&seed=4&fail-arc=RESUMING>STOP:EINVAL\(landing)")
            let saved = try save([try MigrationDriver(device: source0), try MigrationDriver(device: source1)])
            let before = [t0.mock!.stateDigest, t1.mock!.stateDigest]
            let targets = [try MigrationDriver(device: t0), try MigrationDriver(device: t1)]
            guard let error = expectFailure({ () throws(VFIOError) in
                try load(targets, from: saved)
            }) else { return }
            #expect(error.code == .deviceError)
            #expect(error.device == "mock:t1")
            #expect(error.errno == .invalidArgument)
            #expect(error.operation == stateSet)
            #expect(error.state?.requested == .stop)
            #expect(error.state?.observed == (landing.isEmpty ? .resuming : .error))
            #expect(error.failingDeviceOutcome?.recoveryDescription == "reset to RUNNING, loaded state discarded")
            let text = error.description
            #expect(text.contains("failed to enter STOP from RESUMING on mock:t1"), "\(text)")
            #expect(text.contains("mock:t0 reset to RUNNING, loaded state discarded"), "\(text)")
            #expect(text.contains("mock:t1 reset to RUNNING, loaded state discarded"), "\(text)")
            for (driver, mock) in zip(targets, [t0.mock!, t1.mock!]) {
                #expect(mock.state == .running, "\(mock.name)")
                #expect(driver.knownState == .running, "\(mock.name)")
                #expect(!driver.hasSession, "\(mock.name)")
            }
            // The refused target keeps what it had (mock:t0 adopted its state before the refusal).
            #expect(t1.mock!.stateDigest == before[1])
            // Retried without the fault, the same stream loads.
            t1.mock!.faults = MockFaults()
            saved.rewind()
            try load(targets, from: saved)
            #expect(t0.mock!.stateDigest == source0.mock!.stateDigest)
            #expect(t1.mock!.stateDigest == source1.mock!.stateDigest)
        }
    }

    /// An arc that lands in ERROR: the engine never SETs from ERROR; recovery is a reset.
    @Test func errorStateIsLeftOnlyByAReset() throws {
        try withLeakCheck { env in
            let log = SetLog()
            let opened = try env.open("mock:err?state=256KiB&fail-arc=PRE_COPY_P2P>STOP_COPY:EIO:error")
            let device = RecordingMigrationDevice(opened, log: log)
            let driver = try MigrationDriver(device: device)
            guard let error = expectFailure({ () throws(VFIOError) in try save([driver]) }) else { return }
            #expect(error.code == .deviceError)
            #expect(error.device == "mock:err")
            #expect(error.errno == .ioError)
            #expect(error.state?.requested == .stopCopy)
            #expect(error.state?.observed == .error)
            #expect(error.failingDeviceOutcome?.recoveryDescription == "reset to RUNNING")
            #expect(error.description.contains("failed to enter STOP_COPY from PRE_COPY_P2P on mock:err"), "\(error)")
            #expect(error.description.contains("device is in ERROR"), "\(error)")
            #expect(opened.mock!.state == .running)
            #expect(driver.knownState == .running)

            // Straight at the driver: in ERROR every request is refused before any ioctl.
            opened.mock!.faults.arcFailures = [MockFaults.ArcFailure(from: .stop, to: .stopCopy, errno: .ioError, landInError: true)]
            #expect(expectFailure({ () throws(VFIOError) in try driver.transition(to: .stopCopy) })?.state?.observed == .error)
            for target in [MigrationState.running, .stop, .stopCopy] {
                let refusal = expectFailure { () throws(VFIOError) in try driver.transition(to: target) }
                #expect(refusal?.code == .invalidTransition, "\(target)")
                #expect(refusal?.errno == nil, "\(target): refused before any ioctl")
                #expect(refusal?.description.contains("only a reset leaves it") == true, "\(String(describing: refusal))")
            }
            #expect(driver.recover().recovery == .reset)
            #expect(opened.mock!.state == .running)

            // Both failed SETs are in the log, and none was issued while the device was in ERROR.
            #expect(log.entries.filter(\.failed).map(\.requested) == [.stopCopy, .stopCopy], "\(log.entries)")
            let fromError = log.entries.filter { $0.stateBefore == .error }
            #expect(fromError.isEmpty, "SETs issued while in ERROR: \(fromError)")
            #expect(!opened.mock!.arcHistory.contains { $0.from == .error })
            expectRecoverable(driver, opened.mock!)
        }
    }

    /// Reads and writes that move fewer bytes than asked: the stream still arrives whole, and
    /// every chunk but the last of each phase is full.
    @Test(arguments: [("1000", "777"), ("8", "4093"), ("65535", "13")])
    func shortReadsAndWritesRoundTrip(read: String, write: String) throws {
        try withLeakCheck { env in
            let source = try env.open("mock:sr?state=320KiB&short-read=\(read)")
            let target = try env.open("mock:sw?state=320KiB&seed=9&short-write=\(write)")
            source.mock!.mutateState(blocks: 5)
            let saved = try save([try MigrationDriver(device: source)], chunkSize: 64 << 10)
            for phase in [StatePhase.preCopy, .stopCopy] {
                let sizes = saved.chunks.filter { $0.phase == phase }.map(\.bytes.count)
                #expect(sizes.dropLast().allSatisfy { $0 == 64 << 10 }, "\(phase): \(sizes)")
            }
            try load([try MigrationDriver(device: target)], from: saved)
            #expect(target.mock!.stateDigest == source.mock!.stateDigest)
            #expect(target.mock!.state == .running)
        }
    }

    /// EINTR every Nth read, write or ioctl: retried where it happens, invisible to the engine.
    @Test(arguments: [2, 3, 7])
    func interruptedCallsAreRetried(every: Int) throws {
        try withLeakCheck { env in
            let source = try env.open("mock:ir?state=512KiB&eintr=\(every)")
            let target = try env.open("mock:iw?state=512KiB&seed=5&eintr=\(every)")
            source.mock!.mutateState(blocks: 3)
            let saved = try save([try MigrationDriver(device: source)])
            try load([try MigrationDriver(device: target)], from: saved)
            #expect(target.mock!.stateDigest == source.mock!.stateDigest)
            #expect(target.mock!.state == .running)
            #expect(source.mock!.state == .stop)
        }
    }

    /// Data fds handed out non-blocking with EAGAIN every 2nd call: the engine puts each back
    /// in blocking mode and completes, on the save and on the load side.
    @Test func wouldBlockPutsTheFdBackInBlockingMode() throws {
        try withLeakCheck { env in
            let log = SetLog()
            let source = try env.open("mock:ar?state=512KiB&eagain=2")
            let target = try env.open("mock:aw?state=512KiB&seed=6&eagain=2")
            let from = RecordingMigrationDevice(source, log: log, nonBlockingChannels: true)
            let into = RecordingMigrationDevice(target, log: log, nonBlockingChannels: true)
            let saved = try save([try MigrationDriver(device: from)])
            try load([try MigrationDriver(device: into)], from: saved)
            #expect(target.mock!.stateDigest == source.mock!.stateDigest)
            for channel in from.channels + into.channels {
                #expect(channel.wouldBlockResults == 1, "\(channel.deviceName) saving=\(channel.isSaving)")
                #expect(channel.nonBlockingChanges == [false], "\(channel.deviceName) saving=\(channel.isSaving)")
            }
            #expect(from.channels.count == 1)
            #expect(into.channels.count == 1)
        }
    }

    /// The save session dies (ENODEV) part way: the error says the session ended, on which
    /// device and in which phase; the source is back in RUNNING.
    @Test(arguments: [(false, MigrationState.stopCopy), (true, .preCopy)])
    func sessionEndingMidStreamReturnsTheSourceToRunning(preCopy: Bool, phase: MigrationState) throws {
        try withLeakCheck { env in
            let source = try env.open("mock:nd?state=1MiB&enodev-after=300KiB")
            let driver = try MigrationDriver(device: source)
            guard let error = expectFailure({ () throws(VFIOError) in try save([driver], preCopy: preCopy) }) else { return }
            #expect(error.code == .sessionEnded)
            #expect(error.device == "mock:nd")
            #expect(error.errno == .noDevice)
            #expect(error.state?.observed == phase)
            #expect(error.failingDeviceOutcome?.recoveryDescription == "returned to RUNNING")
            let text = error.description
            #expect(text.contains("failed to read device state in \(phase)"), "\(text)")
            #expect(text.contains("the migration session ended"), "\(text)")
            #expect(text.contains("on mock:nd"), "\(text)")
            #expect(text.contains("ENODEV"), "\(text)")
            #expect(source.mock!.state == .running)
            #expect(!driver.hasSession)
            expectRecoverable(driver, source.mock!)
        }
    }

    /// The resume session dies part way: the load fails naming the target, which is reset.
    @Test func sessionEndingMidLoadResetsTheTarget() throws {
        try withLeakCheck { env in
            let source = try env.open("mock:ls?state=1MiB&seed=1")
            let target = try env.open("mock:lt?state=1MiB&seed=2&enodev-after=200KiB")
            let saved = try save([try MigrationDriver(device: source)])
            let before = target.mock!.stateDigest
            let driver = try MigrationDriver(device: target)
            guard let error = expectFailure({ () throws(VFIOError) in try load([driver], from: saved) })
            else { return }
            #expect(error.code == .sessionEnded)
            #expect(error.device == "mock:lt")
            #expect(error.errno == .noDevice)
            #expect(error.failingDeviceOutcome?.recoveryDescription == "reset to RUNNING, loaded state discarded")
            #expect(error.description.contains("the device refused resume data"), "\(error)")
            #expect(target.mock!.state == .running)
            #expect(target.mock!.stateDigest == before)
        }
    }

    /// Another thread resets the device while it streams: the save fails cleanly, the device
    /// is RUNNING, and the error says the session ended because of a reset or state change.
    @Test func resetRacingATransferFailsTheSaveCleanly() throws {
        try withLeakCheck { env in
            let source = try env.open("mock:rr?state=64MiB&flags=stop-copy,p2p&reset-after=1MiB")
            let driver = try MigrationDriver(device: source)
            guard let error = expectFailure({ () throws(VFIOError) in try save([driver], preCopy: false) }) else { return }
            #expect(error.code == .sessionEnded)
            #expect(error.device == "mock:rr")
            #expect(error.errno == .noDevice)
            #expect(error.state?.observed == .running)
            #expect(error.failingDeviceOutcome?.recoveryDescription == "left in RUNNING")
            let text = error.description
            #expect(text.contains("the migration session ended (the device changed state or was reset)"), "\(text)")
            #expect(text.contains("device is in RUNNING"), "\(text)")
            #expect(text.contains("on mock:rr"), "\(text)")
            #expect(source.mock!.state == .running)
            #expect(driver.knownState == .running)
            #expect(!driver.hasSession)
            expectRecoverable(driver, source.mock!)
        }
    }

    /// A device that disappears mid-save: a clear error, nothing hangs, nothing leaks.
    @Test func disappearingSourceFailsClearly() throws {
        try withLeakCheck { env in
            let source = try env.open("mock:gone?state=4MiB&flags=stop-copy,p2p&disappear-after=256KiB")
            let driver = try MigrationDriver(device: source)
            guard let error = expectFailure({ () throws(VFIOError) in try save([driver], preCopy: false) }) else { return }
            #expect(error.code == .sessionEnded)
            #expect(error.device == "mock:gone")
            #expect(error.errno == .noDevice)
            #expect(error.state?.observed == nil, "a device that is gone has no state to read")
            let recovery = error.failingDeviceOutcome?.recoveryDescription ?? ""
            #expect(recovery.hasPrefix("could not be recovered: VFIO_DEVICE_RESET failed on mock:gone"), "\(error)")
            #expect(error.failingDeviceOutcome?.isRunning == false)
            #expect(recovery.contains("ENODEV"), "\(error)")
            let text = error.description
            #expect(text.hasPrefix("failed to read device state in STOP_COPY: the migration session ended"), "\(text)")
            #expect(text.contains("on mock:gone: read ENODEV"), "\(text)")
            #expect(text.contains("device state unknown"), "\(text)")
            #expect(source.mock!.hasDisappeared)
            #expect(!driver.hasSession)
        }
    }

    /// A target that disappears mid-load: a clear error naming it, nothing hangs or leaks.
    @Test func disappearingTargetFailsClearly() throws {
        try withLeakCheck { env in
            let source = try env.open("mock:ds?state=4MiB&seed=1")
            let target = try env.open("mock:dt?state=4MiB&seed=2&disappear-after=1MiB")
            let saved = try save([try MigrationDriver(device: source)])
            let driver = try MigrationDriver(device: target)
            guard let error = expectFailure({ () throws(VFIOError) in try load([driver], from: saved) })
            else { return }
            #expect(error.device == "mock:dt")
            #expect(error.code == .sessionEnded)
            #expect(error.errno == .noDevice)
            let recovery = error.failingDeviceOutcome?.recoveryDescription ?? ""
            #expect(recovery.hasPrefix("could not be recovered: VFIO_DEVICE_RESET failed on mock:dt"), "\(error)")
            #expect(recovery.contains("ENODEV"), "\(error)")
            let text = error.description
            #expect(text.hasPrefix("the device refused resume data: the migration session ended"), "\(text)")
            #expect(text.contains("on mock:dt: write ENODEV"), "\(text)")
            #expect(target.mock!.hasDisappeared)
            #expect(!driver.hasSession)
        }
    }

    /// The stream side fails (a full disk): the error is the sink's, and still says where the
    /// source device was left.
    @Test func sinkFailureStillReportsWhereTheSourceWasLeft() throws {
        try withLeakCheck { env in
            let source = try env.open("mock:sk?state=1MiB")
            let driver = try MigrationDriver(device: source)
            let sink = FailingSink(failAtChunk: 3)
            guard let error = expectFailure({ () throws(VFIOError) in
                try SaveSession(drivers: [driver], options: SaveOptions(chunkSize: 64 << 10, preCopy: false)).run(into: sink)
            }) else { return }
            #expect(error.code == .resourceExhausted)
            #expect(error.device == "/tmp/stream")
            #expect(error.errno == .noSpace)
            #expect(error.outcomes == [DeviceOutcome(device: "mock:sk", role: .source, finalState: .inState(.running), recovery: .moved(to: .running))])
            #expect(error.saveReport?.devices.first?.chunks == 2, "the partial report counts what the sink took")
            #expect(error.description.hasSuffix("; source devices: mock:sk returned to RUNNING"), "\(error)")
            #expect(source.mock!.state == .running)
            #expect(!driver.hasSession)
        }
    }

    /// Two P2P devices saved together: both quiesce peer DMA before either stops.
    @Test(arguments: [false, true])
    func p2pDevicesAllQuiesceBeforeAnyStops(preCopy: Bool) throws {
        try withLeakCheck { env in
            let log = SetLog()
            let a = RecordingMigrationDevice(try env.open("mock:pa?state=256KiB"), log: log)
            let b = RecordingMigrationDevice(try env.open("mock:pb?state=256KiB"), log: log)
            try save([try MigrationDriver(device: a), try MigrationDriver(device: b)], preCopy: preCopy)
            let arcs = log.arcs
            let quiesced = arcs.lastIndex { $0.arc.to == .runningP2P || $0.arc.to == .preCopyP2P }
            let stopped = arcs.firstIndex { $0.arc.to == .stop || $0.arc.to == .stopCopy }
            let q = try #require(quiesced, "\(arcs)")
            let s = try #require(stopped, "\(arcs)")
            #expect(q < s, "\(arcs)")
            for device in ["mock:pa", "mock:pb"] {
                let own = arcs.filter { $0.device == device }.map(\.arc.to)
                #expect(own.contains(preCopy ? .preCopyP2P : .runningP2P), "\(device): \(own)")
                #expect(own.last == .stop, "\(device): \(own)")
            }
            #expect(a.mock.state == .stop && b.mock.state == .stop)
        }
    }

    /// A set where one device lacks P2P is refused before any state change, naming it.
    @Test func mixedP2PSetIsRefusedBeforeAnyStateChange() throws {
        try withLeakCheck { env in
            let log = SetLog()
            let a = RecordingMigrationDevice(try env.open("mock:ma?state=64KiB"), log: log)
            let b = RecordingMigrationDevice(try env.open("mock:mb?state=64KiB&flags=stop-copy,pre-copy"), log: log)
            let drivers = [try MigrationDriver(device: a), try MigrationDriver(device: b)]
            guard let error = expectFailure({ () throws(VFIOError) in try save(drivers) }) else { return }
            #expect(error.code == .notSupported)
            #expect(error.message.contains("mock:mb cannot quiesce peer-to-peer DMA"), "\(error)")
            #expect(!error.message.contains("mock:ma"), "\(error)")
            #expect(log.entries.isEmpty, "SETs before the refusal: \(log.entries)")
            #expect(a.mock.arcHistory.isEmpty && b.mock.arcHistory.isEmpty)
            #expect(a.mock.state == .running && b.mock.state == .running)
            let memory = try save([drivers[0]]) // the P2P device alone is fine
            #expect(memory.isComplete)
            // The load side refuses the same set the same way.
            let sources = [try MigrationDriver(device: try env.open("mock:ms0?state=64KiB")), try MigrationDriver(device: try env.open("mock:ms1?state=64KiB"))]
            let both = try save(sources)
            let before = log.entries.count
            let refusal = expectFailure { () throws(VFIOError) in try load(drivers, from: both) }
            #expect(refusal?.code == .notSupported)
            #expect(refusal?.message.contains("mock:mb") == true, "\(String(describing: refusal))")
            #expect(log.entries.count == before, "no SET after the refusal")
            #expect(b.mock.arcHistory.isEmpty)
        }
    }
}

/// A sink that fails like a full disk at its Nth chunk.
final class FailingSink: SaveSink {
    let payloadOffset = 0
    private let failAtChunk: Int
    private var chunks = 0
    init(failAtChunk: Int) { self.failAtChunk = failAtChunk }

    func writeState(_ chunk: StateChunk, from buffer: IOBuffer) throws(VFIOError) {
        chunks += 1
        if chunks == failAtChunk {
            throw VFIOError(.resourceExhausted, "failed to write the stream", device: "/tmp/stream", operation: "write", errno: .noSpace)
        }
    }
    func writeProgress(device: Int, info: PreCopyInfo) throws(VFIOError) {}
    func endDevice(_ device: Int) throws(VFIOError) {}
    func endStream() throws(VFIOError) {}
}
