// The fault matrix (docs/security.md, "Fault matrix"): each phase of a migration (setup,
// pre-copy, stop-copy, transfer, target write, commit) against each fault (I/O error, EINTR,
// short read, ENOSPC on a file sink, peer reset, target validation failure, device to ERROR,
// authentication failure). Every cell asserts its outcome as values: which side reported
// it, the error code and errno, and where every device was left (DeviceOutcome and the
// device's own state). Small states, short timeouts: part of the default run.
import Foundation
import Testing
import VFIOMigration
import VFIOMockDevices
import VFIOMock

@Suite(.serialized) struct FaultMatrixTests {
    private let env = DeviceEnvironment.withMockDevices()
    private let receive = ReceiveOptions(handshakeTimeout: .seconds(3), idleTimeout: .seconds(5), authenticationTimeout: .seconds(2))

    private struct Run {
        let source: VFIODevice
        let target: VFIODevice
        let targetBefore: UInt64
        let sent: Result<Migration.SendResult, VFIOError>
        let received: Result<ReceiveResult, VFIOError>
    }

    private func run(
        _ sourceSpec: String, _ targetSpec: String, security: (source: TransportSecurity, target: TransportSecurity) = (.insecure, .insecure),
        connector: ((TCPConnector) -> any TransferConnecting)? = nil, acceptor: (TCPAcceptor) -> any TransferAccepting = { $0 },
        options: TransferOptions = .test(), receive: ReceiveOptions? = nil, during: ((MatrixTarget) -> Void)? = nil
    ) throws -> Run {
        let source = try env.open("mock:s?\(sourceSpec)")
        let target = try env.open("mock:t?\(targetSpec)")
        let before = target.mock!.stateDigest
        let listening = try MatrixTarget([target], security: security.target, options: receive ?? self.receive, wrap: acceptor)
        let plain = TCPConnector(to: listening.address, security: security.source)
        let path = connector?(plain) ?? plain
        let sent = Result { () throws(VFIOError) in try Migration.send([source], to: path, options: options, save: .test) }
        during?(listening)
        return Run(source: source, target: target, targetBefore: before, sent: sent, received: listening.finish())
    }

    /// Both ends succeeded: the target runs the source's state, the source is stopped.
    private func succeeded(_ run: Run, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let sent = try run.sent.get()
        _ = try run.received.get()
        #expect(sent.confirmation.committed == .running, sourceLocation: sourceLocation)
        #expect(run.source.mock!.stateDigest == run.target.mock!.stateDigest, "the data arrived identical", sourceLocation: sourceLocation)
        #expect(try run.target.currentState() == .running, sourceLocation: sourceLocation)
        #expect(try run.source.currentState() == .stop, sourceLocation: sourceLocation)
    }

    /// Both ends failed before the commit: the source runs again and the target was reset with
    /// nothing of the migration kept. Returns (source error, target error).
    @discardableResult
    private func rolledBack(_ run: Run, sourceRecovery: Recovery? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws -> (VFIOError, VFIOError) {
        guard case .failure(let source) = run.sent else { throw TestFailure("the source reported success") }
        guard case .failure(let target) = run.received else { throw TestFailure("the target reported success; the source: \(source)") }
        #expect(source.outcomes.map(\.isRunning) == [true], "\(source)", sourceLocation: sourceLocation)
        if let sourceRecovery { #expect(source.outcomes.map(\.recovery) == [sourceRecovery], "\(source)", sourceLocation: sourceLocation) }
        #expect(try run.source.currentState() == .running, sourceLocation: sourceLocation)
        #expect(target.outcomes.map(\.recovery) == [.reset], "\(target)", sourceLocation: sourceLocation)
        #expect(try run.target.currentState() == .running, sourceLocation: sourceLocation)
        #expect(run.target.mock!.stateDigest == run.targetBefore, "the target kept nothing of the migration", sourceLocation: sourceLocation)
        return (source, target)
    }

    /// A file save onto a disk with `room` bytes free: it must fail with ENOSPC and leave the
    /// source RUNNING. Returns the error and the source for the cell's own checks.
    private func savedToAFullDisk(_ spec: String, room: Int, sourceLocation: SourceLocation = #_sourceLocation) throws -> (VFIOError, VFIODevice) {
        let source = try env.open("mock:s?\(spec)")
        source.mock!.clearArcHistory()
        let sink = try FillingSink(room: room)
        do throws(VFIOError) {
            try Migration.save([source], to: sink, options: .test, pipeline: nil)
        } catch {
            #expect(error.errno == .noSpace, "\(error)", sourceLocation: sourceLocation)
            #expect(error.outcomes.map(\.isRunning) == [true], "\(error)", sourceLocation: sourceLocation)
            #expect(try source.currentState() == .running, sourceLocation: sourceLocation)
            return (error, source)
        }
        throw TestFailure("a save to a full disk succeeded")
    }

    private let preCopy = "flags=stop-copy,pre-copy&state=2MiB&dirty-rate=1/1MiB"
    private let stopCopyOnly = "flags=stop-copy&state=2MiB"

    // MARK: setup

    @Test("setup × I/O error, source: RUNNING -> PRE_COPY fails with EIO")
    func setupIOErrorOnTheSource() throws {
        let (source, target) = try rolledBack(try run("\(preCopy)&fail-arc=RUNNING>PRE_COPY:EIO", preCopy), sourceRecovery: Recovery.none)
        #expect(source.errno == .ioError && source.code == .deviceError, "\(source)")
        #expect(target.code == .streamCorrupt || target.code == .ioFailure, "the target saw the stream end early: \(target)")
    }

    @Test("setup × I/O error, target: STOP -> RESUMING fails with EIO: refused before the source moves")
    func setupIOErrorOnTheTarget() throws {
        let run = try run(preCopy, "\(preCopy)&fail-arc=STOP>RESUMING:EIO")
        let (source, target) = try rolledBack(run, sourceRecovery: Recovery.none)
        #expect(source.code == .busy && source.message.contains("target unavailable") && source.message.contains("EIO"), "\(source)")
        #expect(run.source.untouched, "\(run.source.mock!.arcHistory)")
        #expect(target.errno == .ioError, "\(target)")
    }

    @Test("setup × ENOSPC on the sink: the stream header does not fit")
    func setupNoSpace() throws {
        let (error, _) = try savedToAFullDisk(preCopy, room: 0)
        #expect(error.code == .resourceExhausted, "\(error)")
    }

    @Test("setup × peer reset: the target resets the control connection after the source's prefix")
    func setupPeerReset() throws {
        let source = try env.open("mock:s?\(preCopy)")
        source.mock!.clearArcHistory()
        let listener = try TCPAcceptor(listeningOn: NetworkAddress(host: "127.0.0.1", port: 0), security: .insecure)
        defer { listener.close() }
        let resetter = Background { () throws(VFIOError) in
            let channel = try listener.accept(timeout: .seconds(10))
            // Its proposal left unread, so the close is a reset.
            _ = try channel.readFully(into: IOBuffer(capacity: 16), 0..<16)
            Thread.sleep(forTimeInterval: 0.1)
            channel.close()
        }
        do {
            try Migration.send([source], to: TCPConnector(to: NetworkAddress(host: "127.0.0.1", port: listener.port), security: .insecure), options: .test(), save: .test)
            Issue.record("a reset control connection was taken for an answer")
        } catch {
            #expect(error.errno == .connectionReset || error.message.contains("closed the control connection"), "\(error)")
            #expect(error.outcomes.map(\.isRunning) == [true])
        }
        _ = resetter.join()
        #expect(source.untouched, "\(source.mock!.arcHistory)")
    }

    @Test("setup × device to ERROR: RUNNING -> PRE_COPY fails into ERROR; the source is reset to RUNNING")
    func setupDeviceError() throws {
        let (source, _) = try rolledBack(try run("\(preCopy)&fail-arc=RUNNING>PRE_COPY:EIO:error", preCopy), sourceRecovery: .reset)
        #expect(source.errno == .ioError, "\(source)")
    }

    @Test("setup × authentication failure: the data channels carry other credentials than the control connection")
    func setupAuthenticationFailure() throws {
        let server = try TLSFixtures.server()
        let good = try TLSFixtures.client()
        let rogue = try TLSFixtures.client("rogue-client")
        let run = try run(preCopy, preCopy, security: (.tls(good), .tls(server)), connector: {
            var wrapped = WrappingConnector(base: $0)
            wrapped.data = TCPConnector(to: $0.address, security: .tls(rogue))
            return wrapped
        })
        let (source, target) = try rolledBack(run, sourceRecovery: Recovery.none)
        #expect(source.code == .authenticationFailed, "\(source)")
        #expect(run.source.untouched, "the channels open before the source moves: \(run.source.mock!.arcHistory)")
        #expect(target.code == .timedOut && target.message.contains("turned away"), "\(target)")
    }

    // MARK: pre-copy

    @Test("pre-copy × I/O error: the save data session dies (ENODEV) 512 KiB into pre-copy")
    func preCopyIOError() throws {
        let (source, _) = try rolledBack(try run("\(preCopy)&enodev-after=512KiB", preCopy))
        #expect(source.errno == .noDevice, "\(source)")
    }

    @Test("pre-copy × ENOSPC on the sink: the disk fills 64 KiB into pre-copy")
    func preCopyNoSpace() throws {
        let (error, source) = try savedToAFullDisk(preCopy, room: 64 << 10)
        #expect((error.saveReport?.devices.first?.preCopyBytes ?? 0) > 0 || error.saveReport?.devices.first?.stopCopyBytes == 0, "failed in pre-copy: \(error)")
        #expect(source.mock!.arcHistory.contains { $0.to == .preCopy } && !source.mock!.arcHistory.contains { $0.to == .stopCopy })
    }

    @Test("pre-copy × target validation failure: a byte changed in a pre-copy chunk, no record checksums: the target device refuses the write")
    func preCopyValidationFailure() throws {
        let run = try run(
            preCopy, preCopy, connector: { base in
                var wrapped = WrappingConnector(base: base)
                wrapped.channel = { FlippingWrites($0, at: 100 << 10) }
                return wrapped
            }, options: .test(checksums: .off),
            receive: ReceiveOptions(acceptsNoRecordChecksums: true, handshakeTimeout: .seconds(3), idleTimeout: .seconds(5)))
        let (source, target) = try rolledBack(run)
        #expect(target.errno == .invalidArgument, "the mock's vendor check refused it: \(target)")
        #expect(source.message.contains("the target failed"), "\(source)")
    }

    @Test("pre-copy × device reset under the migration (the emulator enters ERROR only on an arc): the session dies")
    func preCopyDeviceReset() throws {
        let (source, _) = try rolledBack(try run("\(preCopy)&reset-after=512KiB", preCopy))
        // Racing the reset: the next read finds the session dead (ENODEV) or the device
        // already RUNNING (EINVAL for pre-copy info outside PRE_COPY); either names it.
        #expect((source.errno == .noDevice || source.errno == .invalidArgument) && source.device == "mock:s", "\(source)")
    }

    // MARK: stop-copy

    @Test("stop-copy × I/O error: PRE_COPY -> STOP_COPY fails with EIO")
    func stopCopyIOError() throws {
        let (source, _) = try rolledBack(try run("\(preCopy)&fail-arc=PRE_COPY>STOP_COPY:EIO", preCopy))
        #expect(source.errno == .ioError, "\(source)")
    }

    @Test("stop-copy × ENOSPC on the sink: the disk fills 64 KiB into the stop-copy data")
    func stopCopyNoSpace() throws {
        let (_, source) = try savedToAFullDisk(stopCopyOnly, room: 64 << 10)
        #expect(source.mock!.arcHistory.contains { $0.to == .stopCopy }, "the failure came in STOP_COPY")
    }

    @Test("stop-copy × device to ERROR: PRE_COPY -> STOP_COPY fails into ERROR; the source is reset to RUNNING")
    func stopCopyDeviceError() throws {
        let (source, _) = try rolledBack(try run("\(preCopy)&fail-arc=PRE_COPY>STOP_COPY:EIO:error", preCopy), sourceRecovery: .reset)
        #expect(source.errno == .ioError, "\(source)")
    }

    // MARK: transfer

    @Test("transfer × I/O error: a data channel's writes fail with EIO 512 KiB in")
    func transferIOError() throws {
        let (source, target) = try rolledBack(try run(stopCopyOnly, stopCopyOnly, connector: { base in
            var wrapped = WrappingConnector(base: base)
            wrapped.channel = { FailingWrites($0, after: 512 << 10, errno: .ioError) }
            return wrapped
        }))
        #expect(source.errno == .ioError, "\(source)")
        #expect(target.code == .streamCorrupt || target.code == .ioFailure, "\(target)")
    }

    @Test("transfer × EINTR: signals at every migration thread, each blocking call interrupted and retried")
    func transferEINTR() throws {
        let source = try env.open("mock:s?flags=stop-copy&state=8MiB")
        let target = try env.open("mock:t?flags=stop-copy&state=8MiB")
        let mask = SignalStorm.unblockOnThisThread()
        defer { SignalStorm.restore(mask) }
        let listening = try MatrixTarget([target], options: receive)
        let session = listening.session
        let storm = SignalStorm(tag: { session.migrationID?.threadTag })
        let sent = Result { () throws(VFIOError) in
            try Migration.send([source], to: TCPConnector(to: listening.address, security: .insecure), options: .test(channels: 2), save: .test)
        }
        let received = listening.finish()
        let (signals, taken) = storm.stop()
        try succeeded(Run(source: source, target: target, targetBefore: 0, sent: sent, received: received))
        #expect(signals > 0 && taken > 0, "the storm reached the migration's threads: \(signals) sent, \(taken) handled")
    }

    @Test("transfer × short read: every read of every connection returns at most 1000 bytes")
    func transferShortReads() throws {
        try succeeded(try run(stopCopyOnly, stopCopyOnly, acceptor: { ShortReadingAcceptor($0, most: 1000) }))
    }

    @Test("transfer × peer reset: the control connection is lost once the last data byte went out, before the target confirms")
    func transferPeerReset() throws {
        let tracker = LosingControlAfterData()
        let run = try run(stopCopyOnly, stopCopyOnly, connector: { base in
            var wrapped = WrappingConnector(base: base)
            wrapped.control = { connection in
                tracker.controlOpened(connection)
                return connection
            }
            wrapped.channel = { EndNotifying($0, tracker: tracker) }
            return wrapped
        })
        guard case .failure(let source) = run.sent else { Issue.record("the source committed without a confirmation"); return }
        guard case .failure(let target) = run.received else { Issue.record("the target committed without a commit"); return }
        #expect(source.message.contains("lost the control connection"), "\(source)")
        #expect(source.outcomes.map(\.isRunning) == [true], "\(source)")
        #expect(try run.source.currentState() == .running)
        // The target had its confirmation out or not: either way it runs nothing it loaded.
        let state = try run.target.currentState()
        if target.outcomes.map(\.recovery) == [.reset] {
            #expect(state == .running && run.target.mock!.stateDigest == run.targetBefore, "\(target)")
        } else {
            #expect(state == .stop && target.message.contains("did not commit"), "left STOPPED with the loaded state: \(target)")
        }
    }

    @Test("transfer × a byte changed in flight with record checksums: the record CRC refuses it before any device sees it")
    func transferCorruptionCaughtByTheCRC() throws {
        let (_, target) = try rolledBack(try run(stopCopyOnly, stopCopyOnly, connector: { base in
            var wrapped = WrappingConnector(base: base)
            wrapped.channel = { FlippingWrites($0, at: 100 << 10) }
            return wrapped
        }, options: .test(checksums: .on)))
        #expect(target.code == .streamCorrupt && target.message.contains("record CRC32C mismatch"), "\(target)")
    }

    @Test("transfer × device to ERROR: STOP_COPY -> STOP fails into ERROR after the last read: the source is reset, the target keeps the state stopped")
    func transferDeviceError() throws {
        let run = try run("\(stopCopyOnly)&fail-arc=STOP_COPY>STOP:EIO:error", stopCopyOnly)
        guard case .failure(let source) = run.sent, case .failure(let target) = run.received else {
            Issue.record("a migration whose source fell into ERROR completed"); return
        }
        #expect(source.errno == .ioError && source.outcomes.map(\.recovery) == [.reset], "\(source)")
        #expect(try run.source.currentState() == .running)
        // Every byte had arrived and passed its checks: the target holds a whole, validated
        // copy, stopped, and the source (reset, its state gone) never committed.
        #expect(target.message.contains("did not commit") && target.outcomes.map(\.finalState) == [.inState(.stop)], "\(target)")
        #expect(try run.target.currentState() == .stop)
        #expect(run.target.mock!.stateDigest != run.targetBefore)
    }

    // MARK: target write

    @Test("target write × I/O error: the target's resume data session dies (ENODEV) 512 KiB in")
    func targetWriteIOError() throws {
        let (source, target) = try rolledBack(try run(stopCopyOnly, "\(stopCopyOnly)&enodev-after=512KiB"))
        #expect(target.errno == .noDevice, "\(target)")
        #expect(source.message.contains("the target failed"), "the source was told: \(source)")
    }

    @Test("target write × short write: every write of the resume data fd takes at most 4 KiB")
    func targetWriteShortWrites() throws {
        try succeeded(try run(stopCopyOnly, "\(stopCopyOnly)&short-write=4KiB"))
    }

    @Test("target write × target validation failure: RESUMING -> STOP refused with EINVAL")
    func targetWriteValidationFailure() throws {
        let (source, target) = try rolledBack(try run(stopCopyOnly, "\(stopCopyOnly)&fail-arc=RESUMING>STOP:EINVAL"))
        #expect(target.errno == .invalidArgument, "\(target)")
        #expect(source.message.contains("the target failed"), "\(source)")
    }

    @Test("target write × validation failure on the second of two devices, after the first finished loading: both targets reset, both sources RUNNING")
    func targetWriteValidationFailureOnTheSecondDevice() throws {
        let spec = "flags=stop-copy,p2p&state=1MiB"
        let sources = [try env.open("mock:s0?\(spec)&seed=5"), try env.open("mock:s1?\(spec)&seed=6")]
        let targets = [try env.open("mock:t0?\(spec)"), try env.open("mock:t1?\(spec)&fail-arc=RESUMING>STOP:EINVAL")]
        let before = targets.map { $0.mock!.stateDigest }
        let listening = try MatrixTarget(targets, options: receive)
        let sent = Result { () throws(VFIOError) in
            try Migration.send(sources, to: TCPConnector(to: listening.address, security: .insecure), options: .test(), save: .test)
        }
        guard case .failure(let source) = sent, case .failure(let target) = listening.finish() else {
            Issue.record("a migration whose second target refused its state completed"); return
        }
        #expect(source.outcomes.map(\.isRunning) == [true, true], "\(source)")
        #expect(try sources.map { try $0.currentState() } == [.running, .running])
        #expect(target.errno == .invalidArgument && target.description.contains("mock:t1"), "\(target)")
        #expect(target.outcomes.map(\.recovery) == [.reset, .reset], "\(target)")
        #expect(try targets.map { try $0.currentState() } == [.running, .running])
        // The refusing device kept nothing. The one that had loaded holds its old state or the
        // source's whole state (the emulator's reset models no wipe of device memory), never
        // a part of it.
        #expect(targets[1].mock!.stateDigest == before[1])
        #expect([before[0], sources[0].mock!.stateDigest].contains(targets[0].mock!.stateDigest))
    }

    @Test("target write × device to ERROR: RESUMING -> STOP fails into ERROR; the target is reset")
    func targetWriteDeviceError() throws {
        let (_, target) = try rolledBack(try run(stopCopyOnly, "\(stopCopyOnly)&fail-arc=RESUMING>STOP:EIO:error"))
        #expect(target.errno == .ioError, "\(target)")
    }

    // MARK: EINTR on every device call

    @Test("setup, pre-copy, stop-copy × EINTR: every 2nd call on the source device's fds is interrupted")
    func sourceEINTR() throws {
        try succeeded(try run("\(preCopy)&eintr=2", preCopy))
    }

    @Test("setup, target write, commit × EINTR: every 2nd call on the target device's fds is interrupted")
    func targetEINTR() throws {
        try succeeded(try run(preCopy, "\(preCopy)&eintr=2"))
    }

    @Test("pre-copy, stop-copy × short read: every read of the save data fd returns at most 4 KiB")
    func sourceShortReads() throws {
        try succeeded(try run("\(preCopy)&short-read=4KiB", preCopy))
    }

    // MARK: commit

    @Test("commit × I/O error: the target's STOP -> RUNNING fails with EIO after the commit")
    func commitIOError() throws {
        let run = try run(stopCopyOnly, "\(stopCopyOnly)&fail-arc=STOP>RUNNING:EIO")
        let sent = try run.sent.get()
        guard case .failure(let target) = run.received else { Issue.record("the target resumed"); return }
        // The source handed over and stays stopped; it learns only that no answer came.
        #expect(sent.confirmation.committed == nil && sent.confirmation.note != nil, "\(sent.confirmation)")
        #expect(try run.source.currentState() == .stop)
        #expect(target.errno == .ioError, "\(target)")
        // The recovery policy resets a target whose resume failed: the loaded state is gone.
        #expect(target.outcomes.map(\.recovery) == [.reset], "\(target)")
        #expect(try run.target.currentState() == .running)
    }

    @Test("commit × peer reset before the commit reaches the target: nobody runs the state")
    func commitLostBeforeTheTarget() throws {
        let run = try run(stopCopyOnly, stopCopyOnly, connector: { base in
            var wrapped = WrappingConnector(base: base)
            wrapped.control = { LosingTheCommit($0, when: .before) }
            return wrapped
        })
        let sent = try run.sent.get()
        guard case .failure(let target) = run.received else { Issue.record("the target ran without a commit"); return }
        // The source cannot know whether the commit arrived: it keeps its devices stopped.
        #expect(sent.confirmation.committed == nil, "\(sent.confirmation)")
        #expect(sent.confirmation.note?.contains("could not be sent") == true, "\(sent.confirmation)")
        #expect(try run.source.currentState() == .stop)
        #expect(target.message.contains("did not commit"), "\(target)")
        #expect(target.outcomes.map(\.finalState) == [.inState(.stop)], "left STOPPED with the loaded state: \(target)")
        #expect(try run.target.currentState() == .stop)
    }

    @Test("commit × peer reset after the commit reached the target: the target runs, the source notes the lost answer")
    func commitAnswerLost() throws {
        let run = try run(stopCopyOnly, stopCopyOnly, connector: { base in
            var wrapped = WrappingConnector(base: base)
            wrapped.control = { LosingTheCommit($0, when: .after) }
            return wrapped
        })
        let sent = try run.sent.get()
        _ = try run.received.get()
        #expect(sent.confirmation.committed == nil && sent.confirmation.note?.contains("answer was lost") == true, "\(sent.confirmation)")
        #expect(try run.target.currentState() == .running)
        #expect(run.source.mock!.stateDigest == run.target.mock!.stateDigest)
        #expect(try run.source.currentState() == .stop)
    }

    @Test("commit × device to ERROR: the target's STOP -> RUNNING fails into ERROR after the commit; the target is reset")
    func commitDeviceError() throws {
        let run = try run(stopCopyOnly, "\(stopCopyOnly)&fail-arc=STOP>RUNNING:EIO:error")
        let sent = try run.sent.get()
        guard case .failure(let target) = run.received else { Issue.record("the target resumed"); return }
        #expect(sent.confirmation.committed == nil, "\(sent.confirmation)")
        #expect(target.errno == .ioError && target.outcomes.map(\.recovery) == [.reset], "\(target)")
        #expect(try run.target.currentState() == .running)
        #expect(try run.source.currentState() == .stop)
    }
}
