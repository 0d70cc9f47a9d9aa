// Every way a live migration can fail before the target commits ends with the sources RUNNING
// (and the targets reset), says what failed, and leaves no descriptor or thread behind: a
// source read error, a target that refuses its state, a dropped connection, a peer reset, a
// cancel, a stalled peer on either side, a stray or lying peer.
import Foundation
import Testing
import VFIOMigration
import VFIOMockDevices
import VFIOMock

/// A connector whose data connections break after `cutAfter` bytes, as a dropped link does.
private struct CuttingConnector: TransferConnecting {
    let base: TCPConnector
    let cutAfter: Int
    let connections = Counter()
    var description: String { "cutting \(base.description)" }
    var isAuthenticated: Bool { base.isAuthenticated }

    func connect() throws(VFIOError) -> ConnectionChannel {
        let channel = try base.connect()
        // The first connection is the control connection; the others carry data.
        guard connections.next() > 0 else { return channel }
        return ConnectionChannel(CuttingConnection(channel.connection, cutAfter: cutAfter))
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func next() -> Int { lock.withLock { defer { value += 1 }; return value } }
}

private final class CuttingConnection: ByteStreamConnection, @unchecked Sendable {
    let inner: any ByteStreamConnection
    let cutAfter: Int
    private var sent = 0
    init(_ inner: any ByteStreamConnection, cutAfter: Int) {
        self.inner = inner
        self.cutAfter = cutAfter
    }
    var description: String { inner.description }
    var peerAddress: String { inner.peerAddress }
    func read(into buffer: IOBuffer, range: Range<Int>) throws -> Int { try inner.read(into: buffer, range: range) }
    func write(_ buffer: IOBuffer, range: Range<Int>) throws {
        let allowed = max(0, min(range.count, cutAfter - sent))
        if allowed > 0 { try inner.write(buffer, range: range.lowerBound..<range.lowerBound + allowed) }
        sent += allowed
        if allowed < range.count {
            inner.interrupt()
            throw VFIOError(.ioFailure, "link dropped after \(cutAfter) bytes (test)", errno: .connectionReset)
        }
    }
    func write(gather slices: [BufferSlice]) throws { for s in slices { try write(s.buffer, range: s.range) } }
    func shutdownWrite() throws { try inner.shutdownWrite() }
    func close() throws { try inner.close() }
    func interrupt() { inner.interrupt() }
    func setIdleTimeout(_ timeout: Duration?) throws { try inner.setIdleTimeout(timeout) }
}

/// Pre-copy that never converges (each read dirties more than it moves), for tests that need a
/// migration still running when they strike.
private let endless = "flags=stop-copy,pre-copy&state=2MiB&dirty-rate=16/64KiB"
private let forever = PendingBytesPolicy(convergedBelow: 1, maxRounds: 1_000_000)

@Suite(.serialized) struct TransferFailureTests {
    private let env = DeviceEnvironment.withMockDevices()

    /// The previous run's device may still be on its way out (its last reference goes when a
    /// thread has returned, a moment after it signalled): a busy group is retried briefly.
    private func openWhenFree(_ spec: String) throws -> VFIODevice {
        let end = Date().addingTimeInterval(2)
        while true {
            let opened = Result { () throws(VFIOError) -> VFIODevice in try env.open(spec) }
            switch opened {
            case .success(let device):
                return device
            case .failure(let error):
                guard error.errno == .busy && Date() < end else { throw error }
                Thread.sleep(forTimeInterval: 0.01)
            }
        }
    }

    /// Runs a migration expected to fail on both sides; checks the sources RUNNING, the targets
    /// reset, and no leak. Returns both errors.
    private func failing(
        source sourceSpec: String, target targetSpec: String, connector make: (NetworkAddress) -> any TransferConnecting = { TCPConnector(to: $0, security: .insecure) },
        options: TransferOptions = .test(), receive: ReceiveOptions = ReceiveOptions(handshakeTimeout: .seconds(10), idleTimeout: .seconds(10)),
        policy: any ConvergencePolicy = PendingBytesPolicy(), sourceCancel: MigrationCancellation? = nil, targetCancel: MigrationCancellation? = nil,
        during: @escaping @Sendable () -> Void = {}
    ) throws -> (source: VFIOError, target: VFIOError) {
        let source = try openWhenFree(sourceSpec)
        let targetDevice = try openWhenFree(targetSpec)
        let target = try LoopbackTarget([targetDevice], options: receive, cancellation: targetCancel)
        let strike = Background { () throws(VFIOError) in during() }
        let sent = Result { () throws(VFIOError) in
            try Migration.send([source], to: make(target.address), options: options, save: .test, policy: policy, cancellation: sourceCancel)
        }
        let received = target.finish()
        _ = strike.join()
        guard case .failure(let sourceError) = sent else { throw TestFailure("the source reported success") }
        guard case .failure(let targetError) = received else { throw TestFailure("the target reported success: \(sourceError)") }
        #expect(try source.currentState() == .running, "source left in \(String(describing: try? source.currentState())): \(sourceError)")
        #expect(sourceError.outcomes.map(\.isRunning) == [true], "\(sourceError)")
        #expect(try targetDevice.currentState() == .running, "the target is reset")
        #expect(targetError.outcomes.allSatisfy { $0.recovery == .reset } && !targetError.outcomes.isEmpty, "\(targetError)")
        #expect(source.mock!.stateDigest != targetDevice.mock!.stateDigest || targetDevice.mock!.changedBlockCount == 0)
        let left = target.leftBehind()
        #expect(left == MigrationResources(sockets: 0, threads: 0), "left behind: \(left)")
        return (sourceError, targetError)
    }

    @Test func aSourceReadErrorRollsBothSidesBack() throws {
        let (source, target) = try failing(source: "mock:a?state=4MiB&flags=stop-copy&enodev-after=1MiB", target: "mock:b?state=4MiB&flags=stop-copy")
        #expect(source.errno == .noDevice, "\(source)")
        #expect(target.code == .streamCorrupt || target.code == .ioFailure, "the stream ended early: \(target)")
    }

    @Test func aTargetThatRefusesItsStateSendsTheSourceBackToRunning() throws {
        let (source, target) = try failing(source: "mock:a?state=1MiB", target: "mock:b?state=1MiB&fail-arc=RESUMING>STOP:EIO")
        #expect(source.message.contains("the target failed"), "\(source)")
        #expect(source.message.contains("EIO") || source.message.contains("I/O error") || source.description.contains("Input/output"), "\(source)")
        #expect(target.errno == .ioError, "\(target)")
    }

    @Test func aDroppedLinkMidStream() throws {
        let (source, target) = try failing(
            source: "mock:a?state=8MiB&flags=stop-copy", target: "mock:b?state=8MiB&flags=stop-copy",
            connector: { CuttingConnector(base: TCPConnector(to: $0, security: .insecure), cutAfter: 3 << 20) })
        #expect(source.message.contains("link dropped") || source.message.contains("target"), "\(source)")
        #expect(target.code == .streamCorrupt || target.code == .ioFailure, "\(target)")
    }

    @Test func aTargetThatGoesAwayIsAPeerReset() throws {
        let cancel = MigrationCancellation()
        let (source, target) = try failing(
            source: "mock:a?\(endless)", target: "mock:b?\(endless)", policy: forever, targetCancel: cancel,
            during: { Thread.sleep(forTimeInterval: 0.3); cancel.cancel(reason: "target shut down (test)") })
        #expect(target.code == .cancelled, "\(target)")
        #expect(source.code != .cancelled, "the source did not cancel; it lost its peer: \(source)")
    }

    @Test func cancellingTheSourceMidPreCopy() throws {
        let cancel = MigrationCancellation()
        let (source, _) = try failing(
            source: "mock:a?\(endless)", target: "mock:b?\(endless)", policy: forever, sourceCancel: cancel,
            during: { Thread.sleep(forTimeInterval: 0.3); cancel.cancel() })
        #expect(source.code == .cancelled, "\(source)")
        #expect(source.message.contains("cancelled by the caller"), "\(source)")
    }

    @Test func aReceiverWaitingForASourceCanBeCancelled() throws {
        let cancel = MigrationCancellation()
        let targetDevice = try env.open("mock:b?state=1MiB")
        let started = ContinuousClock.now
        let target = try LoopbackTarget([targetDevice], options: ReceiveOptions(handshakeTimeout: .seconds(30)), cancellation: cancel)
        Thread.sleep(forTimeInterval: 0.3)
        cancel.cancel(reason: "operator gave up (test)")
        guard case .failure(let error) = target.finish() else { Issue.record("the receiver finished without a source"); return }
        #expect(error.code == .cancelled, "\(error)")
        #expect(ContinuousClock.now - started < .seconds(5), "the cancel was seen without waiting for the handshake timeout")
        #expect(targetDevice.mock!.arcHistory.isEmpty)
    }

    @Test func aStalledTargetTimesOut() throws {
        let source = try env.open("mock:a?state=32MiB&flags=stop-copy")
        let stalled = try StalledTarget(descriptor: try source.descriptor())
        var options = TransferOptions.test()
        options.idleTimeout = .seconds(1)
        do {
            try Migration.send([source], to: TCPConnector(to: stalled.address, security: .insecure), options: options, save: .test)
            Issue.record("a target that reads nothing took 32 MiB")
        } catch {
            #expect(error.code == .timedOut || error.errno == .timedOut, "\(error)")
            #expect(error.outcomes.map(\.isRunning) == [true])
        }
        #expect(try source.currentState() == .running)
        // The source's own sockets and threads are gone before the fake target lets go of its end.
        let left = MigrationResources.settle(port: stalled.acceptor.port, tag: stalled.nonce?.threadTag)
        #expect(left.threads == 0 && left.sockets <= stalled.heldConnections + 1, "left behind: \(left) (the fake target holds \(stalled.heldConnections) and its listener)")
        stalled.stop()
    }

    @Test func aStalledSourceTimesOutOnTheTarget() throws {
        let targetDevice = try env.open("mock:b?state=1MiB")
        let source = try env.open("mock:a?state=1MiB")
        let target = try LoopbackTarget([targetDevice], options: ReceiveOptions(handshakeTimeout: .seconds(5), idleTimeout: .seconds(1)))
        let fake = try FakeSource(to: target.address, devices: [try source.descriptor()])
        try fake.openChannel()  // the header, then nothing
        guard case .failure(let error) = target.finish() else { Issue.record("the target finished"); return }
        #expect(error.code == .timedOut || error.errno == .timedOut, "\(error)")
        #expect(error.outcomes.map(\.recovery) == [.reset], "\(error)")
        #expect(try fake.nextMessage().type == .failed, "the target told the source")
        fake.close()
        #expect(try targetDevice.currentState() == .running)
        let left = target.leftBehind()
        #expect(left == MigrationResources(sockets: 0, threads: 0), "left behind: \(left)")
    }

    @Test func aSenderThatLiesAboutARecordsSizeGetsAnErrorNotAnAllocation() throws {
        let targetDevice = try env.open("mock:b?state=1MiB")
        let target = try LoopbackTarget([targetDevice], options: ReceiveOptions(maxPayload: 1 << 20, handshakeTimeout: .seconds(5), idleTimeout: .seconds(5)))
        let fake = try FakeSource(to: target.address, devices: [try env.open("mock:a?state=1MiB").descriptor()], maxPayload: 1 << 20)
        let channel = try fake.openChannel()
        // A record header that claims 1 GiB of payload.
        var claim = [UInt8](repeating: 0, count: 32)
        claim[0] = 1; claim[6] = 2
        claim[8] = 0; claim[9] = 0; claim[10] = 0; claim[11] = 0x40
        let buffer = IOBuffer(capacity: 32)
        buffer.write(claim, at: 0)
        try channel.write(buffer, 0..<32)
        guard case .failure(let error) = target.finish() else { Issue.record("the target finished"); return }
        #expect(error.code == .streamCorrupt, "\(error)")
        #expect(error.message.contains("payload"), "\(error)")
        fake.close()
    }

    @Test func aProposalAboveTheTargetsLimitsIsRefused() throws {
        let targetDevice = try env.open("mock:b?state=1MiB")
        let target = try LoopbackTarget([targetDevice], options: ReceiveOptions(maxPayload: 1 << 20))
        let source = try env.open("mock:a?state=1MiB")
        do {
            try Migration.send([source], to: TCPConnector(to: target.address, security: .insecure), options: .test(), save: SaveOptions(chunkSize: 4 << 20))
            Issue.record("a 4 MiB record size was accepted by a 1 MiB receiver")
        } catch {
            #expect(error.message.contains("at most 1048576"), "\(error)")
        }
        #expect(try source.currentState() == .running)
        #expect(targetDevice.mock!.arcHistory.isEmpty)
        _ = target.finish()
    }

    @Test func aStrayConnectionIsTurnedAwayAndTheMigrationGoesOn() throws {
        let source = try env.open("mock:a?state=1MiB")
        let targetDevice = try env.open("mock:b?state=1MiB")
        let target = try LoopbackTarget([targetDevice])
        // Someone else's stream arrives first: not a control connection.
        let stray = try TCPConnector(to: target.address, security: .insecure).connect()
        let bytes = try StreamEncoder(header: StreamHeader(creationTimeNanoseconds: 0, devices: [])).encodeHeader()
        let buffer = IOBuffer(capacity: bytes.count)
        buffer.write(bytes, at: 0)
        try stray.write(buffer, 0..<bytes.count)
        // The target may already have turned it away (and reset it) by now.
        try? stray.finishSending()
        let sent = try Migration.send([source], to: TCPConnector(to: target.address, security: .insecure), options: .test(), save: .test)
        let received = try target.finish().get()
        stray.close()
        #expect(received.rejectedConnections.count == 1, "\(received.rejectedConnections)")
        #expect(received.rejectedConnections.first?.contains("bad magic") == true, "\(received.rejectedConnections)")
        #expect(sent.confirmation.committed == .running)
        #expect(source.mock!.stateDigest == targetDevice.mock!.stateDigest)
    }

    @Test func repeatedFailuresDoNotGrowTheProcess() throws {
        func resident() -> Int {
            let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
            let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
            return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
        }
        _ = try failing(source: "mock:a?state=4MiB&flags=stop-copy", target: "mock:b?state=4MiB&flags=stop-copy&fail-arc=RESUMING>STOP:EIO")
        let before = resident()
        for _ in 0..<8 {
            _ = try failing(source: "mock:a?state=4MiB&flags=stop-copy", target: "mock:b?state=4MiB&flags=stop-copy&fail-arc=RESUMING>STOP:EIO")
        }
        let grown = resident() - before
        #expect(grown < 16 << 10, "resident memory grew \(grown) KiB over 8 failed migrations")
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ text: String) { description = text }
}
