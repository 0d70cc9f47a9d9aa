// A pass-through MigrationDevice over a mock-backed device that records, in one log shared by
// every device of a test, each state change the engine asks for, where the emulated device
// really was when it asked, and which arcs the emulator walked. The emulator does not record a
// SET it refuses outright (a SET from ERROR moves nothing), so this log is how a test shows no
// such SET was ever issued, and how it orders the arcs of several devices against each other.
import Foundation
import VFIOBuffers
import VFIOCore
import VFIOKernel
import VFIOMigration
import VFIOMockDevices
import VFIOMock

/// Every SET the engine issued across the devices of one test, in issue order.
final class SetLog: @unchecked Sendable {
    struct Entry: CustomStringConvertible {
        var device: String
        var requested: MigrationState
        /// The emulated device's state when the SET was issued.
        var stateBefore: MockDeviceState
        /// The direct arcs the emulator walked for this SET (failed ones carry their errno).
        var arcs: [MockArc]
        var failed: Bool
        var description: String { "\(device): SET \(requested) from \(stateBefore) walked \(arcs)\(failed ? " (failed)" : "")" }
    }

    private let lock = NSLock()
    private var stored: [Entry] = []
    var entries: [Entry] { lock.withLock { stored } }
    func append(_ entry: Entry) { lock.withLock { stored.append(entry) } }

    /// All arcs in the order they were walked, named by device.
    var arcs: [(device: String, arc: MockArc)] { entries.flatMap { e in e.arcs.map { (e.device, $0) } } }
}

final class RecordingMigrationDevice: MigrationDevice, @unchecked Sendable {
    let inner: any MigrationDevice
    let mock: MockDevice
    let log: SetLog
    /// Hand out data fds in O_NONBLOCK mode, as a driver or an inherited fd might.
    let nonBlockingChannels: Bool
    private(set) var channels: [RecordingDataChannel] = []

    init(_ opened: VFIODevice, log: SetLog, nonBlockingChannels: Bool = false) {
        guard let mock = opened.mock else { preconditionFailure("recording needs a mock device") }
        self.inner = opened
        self.mock = mock
        self.log = log
        self.nonBlockingChannels = nonBlockingChannels
    }

    var name: String { inner.name }
    func migrationFlags() throws(VFIOError) -> MigrationFlags { try inner.migrationFlags() }
    func currentState() throws(VFIOError) -> MigrationState { try inner.currentState() }
    func reset() throws(VFIOError) { try inner.reset() }
    func stopCopySizeEstimate() throws(VFIOError) -> UInt64? { try inner.stopCopySizeEstimate() }

    func setState(_ state: MigrationState) throws(VFIOError) -> DataSession? {
        let before = MockDeviceState(rawValue: mock.migrationState)!
        let arcsBefore = mock.arcHistory.count
        var failed = true
        defer {
            let walked = Array(mock.arcHistory.dropFirst(arcsBefore))
            log.append(.init(device: name, requested: state, stateBefore: before, arcs: walked, failed: failed))
        }
        let opened = try inner.setState(state)
        failed = false
        guard let opened else { return nil }
        if nonBlockingChannels { try opened.io.setMode(.nonBlocking) }
        let channel = RecordingDataChannel(opened)
        channels.append(channel)
        return DataSession(channel)
    }
}

/// Counts what the engine saw on a data fd: EAGAIN results and switches of O_NONBLOCK.
final class RecordingDataChannel: DataSessionIO, @unchecked Sendable {
    let inner: any DataSessionIO
    private var held: DataSession?
    private let lock = NSLock()
    private var wouldBlockCount = 0
    private var modes: [Bool] = []

    init(_ session: consuming DataSession) {
        self.inner = session.io
        self.held = consume session
    }

    var wouldBlockResults: Int { lock.withLock { wouldBlockCount } }
    /// Every O_NONBLOCK switch the engine issued, in order (true: non-blocking).
    var nonBlockingChanges: [Bool] { lock.withLock { modes } }

    var deviceName: String { inner.deviceName }
    var isSaving: Bool { inner.isSaving }

    func read(into buffer: IOBuffer, range: Range<Int>, phase: MigrationState) throws(VFIOError) -> DataReadResult {
        let result = try inner.read(into: buffer, range: range, phase: phase)
        if result == .wouldBlock { lock.withLock { wouldBlockCount += 1 } }
        return result
    }

    func write(from buffer: IOBuffer, range: Range<Int>) throws(VFIOError) -> Int {
        let n = try inner.write(from: buffer, range: range)
        if n == 0 { lock.withLock { wouldBlockCount += 1 } }
        return n
    }

    func preCopyInfo() throws(VFIOError) -> PreCopyInfo { try inner.preCopyInfo() }

    func setMode(_ mode: IOMode) throws(VFIOError) {
        lock.withLock { modes.append(mode == .nonBlocking) }
        try inner.setMode(mode)
    }

    func close() { held = nil }
}
