import Testing
import VFIOBuffers
@testable import VFIOCore
import VFIOStream

@Suite struct MigrationDriverTests {
    let all: MigrationFlags = [.stopCopy, .p2p, .preCopy]

    @Test func refusedRequestsIssueNoIoctl() throws {
        let device = ScriptedDevice(flags: [.stopCopy])
        let driver = try MigrationDriver(device: device)
        let before = device.calls.count
        #expect(throws: VFIOError.self) { try driver.transition(to: .preCopy) }
        #expect(throws: VFIOError.self) { try driver.transition(to: .error) }
        #expect(throws: VFIOError.self) { try driver.transition(to: .runningP2P) }
        #expect(device.calls.count == before)

        let full = ScriptedDevice(flags: all)
        let d2 = try MigrationDriver(device: full)
        try d2.transition(to: .stopCopy)
        let n = full.calls.count
        do {
            try d2.transition(to: .preCopy)
            Issue.record("STOP_COPY -> PRE_COPY must be refused")
        } catch {
            #expect(error.code == .invalidTransition)
            #expect(error.state?.observed == .stopCopy)
        }
        #expect(full.calls.count == n)
    }

    @Test func failedSetIsFollowedByGetAndReportsBothStates() throws {
        let device = ScriptedDevice(flags: [.stopCopy, .p2p])
        let driver = try MigrationDriver(device: device)
        device.failArc = (MigrationArc(.runningP2P, .stop), .ioError, false)
        device.calls.removeAll()
        do {
            try driver.transition(to: .stopCopy)
            Issue.record("expected failure")
        } catch {
            #expect(device.calls == ["SET STOP_COPY", "GET state"])
            #expect(error.state?.requested == .stopCopy)
            #expect(error.state?.observed == .runningP2P)
            #expect(error.errno == .ioError)
            #expect(error.code == .deviceError)
            #expect(error.description.contains("RUNNING_P2P"))
        }
        #expect(driver.knownState == .runningP2P)
    }

    @Test func sessionFdIsClosedExactlyOnceWhenItsSessionEnds() throws {
        let device = ScriptedDevice(flags: all)
        let driver = try MigrationDriver(device: device)
        try driver.transition(to: .preCopy)
        try driver.transition(to: .preCopyP2P)
        try driver.transition(to: .stopCopy)
        #expect(device.channels.count == 1, "the saving group shares one session")
        #expect(device.channels[0].closeCount == 0)
        try driver.transition(to: .stop)
        #expect(device.channels[0].closeCount == 1)
        #expect(!driver.hasSession)
        try driver.transition(to: .resuming)
        #expect(driver.hasSession)
        #expect(!device.channels[1].isSaving)
        try driver.transition(to: .running)
        #expect(device.channels[1].closeCount == 1)
    }

    @Test func recoveryMovesToPreferredStateOrResets() throws {
        let device = ScriptedDevice(flags: [.stopCopy])
        let driver = try MigrationDriver(device: device)
        try driver.transition(to: .stopCopy)
        let moved = driver.recover(preferring: .running)
        #expect(moved.recovery == .moved(to: .running))
        #expect(moved.finalState == .inState(.running))
        #expect(moved.isRunning)
        #expect(device.channels[0].closeCount == 1)

        // A failed arc that lands in ERROR: never SET from ERROR, reset instead.
        device.failArc = (MigrationArc(.running, .stop), .ioError, true)
        #expect(throws: VFIOError.self) { try driver.transition(to: .stop) }
        #expect(driver.knownState == .error)
        device.calls.removeAll()
        let reset = driver.recover(preferring: .running)
        #expect(reset.recovery == .reset)
        #expect(reset.finalState == .reset)
        #expect(device.calls == ["GET state", "RESET"])
        #expect(driver.knownState == .running)

        // Recovery arc itself fails: reset.
        device.failArc = (MigrationArc(.stop, .running), .ioError, false)
        try driver.transition(to: .stopCopy)
        #expect(driver.recover(preferring: .running).recovery == .reset)
    }

    @Test func failedResetIsReported() throws {
        let device = ScriptedDevice(flags: [.stopCopy])
        let driver = try MigrationDriver(device: device)
        device.state = .error
        device.failReset = true
        let outcome = driver.recover()
        guard case .failed(_, let errno) = outcome.recovery else {
            Issue.record("a failed reset must be reported, got \(outcome)")
            return
        }
        #expect(errno == .ioError)
        #expect(outcome.finalState == .inState(.error))
        #expect(!outcome.isRunning)
    }

    /// A reset behind the engine's back ends the session: the next GET shows it, the dead fd
    /// is closed once, and a new session can open.
    @Test func stateReadBackClosesASessionTheDeviceNoLongerHas() throws {
        let device = ScriptedDevice(flags: all)
        let driver = try MigrationDriver(device: device)
        try driver.transition(to: .stopCopy)
        try device.reset() // not through the driver
        #expect(try driver.refreshState() == .running)
        #expect(!driver.hasSession)
        #expect(device.channels[0].closeCount == 1)
        try driver.transition(to: .stopCopy)
        #expect(driver.hasSession)
        #expect(try driver.refreshState() == .stopCopy)
        #expect(driver.hasSession, "a session the state still holds stays open")
    }

    /// A resume fd that takes nothing (EAGAIN on a non-blocking fd) is made blocking and the
    /// write completes; one that still takes nothing in blocking mode is an error, not a spin.
    @Test func fullNonBlockingResumeFdIsMadeBlocking() throws {
        let device = ScriptedDevice(flags: [.stopCopy])
        let driver = try MigrationDriver(device: device)
        try driver.transition(to: .resuming)
        let channel = device.channels[0]
        channel.fullWrites = 1
        let buffer = IOBuffer(capacity: 4096)
        try driver.writeResumeData(from: buffer, range: 0..<4096)
        #expect(channel.written.count == 4096)
        #expect(channel.nonBlockingChanges == [false])

        channel.fullWrites = -1
        do {
            try driver.writeResumeData(from: buffer, range: 0..<4096)
            Issue.record("a fd that never takes bytes must fail the write")
        } catch {
            #expect(error.code == .deviceError)
            #expect(error.description.contains("took no bytes in blocking mode on scripted0"), "\(error)")
        }
    }
}
