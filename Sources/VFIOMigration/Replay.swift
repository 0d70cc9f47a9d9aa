// Replay for test authors: feed a captured stream into a device in RESUMING and prove that
// exactly the captured bytes arrived, in order, with the right transitions around them.
// Two decorators watch the two ends: one over the stream (what was captured), one over the
// device (what the device was given and which states it was asked for).
import Synchronization
import VFIOBuffers
import VFIOCore
import VFIOKernel
import VFIOStream

public struct ReplayReport: Sendable, Equatable, Codable {
    public var capturedBytes: UInt64
    public var capturedCRC32C: UInt32
    public var deliveredBytes: UInt64
    public var deliveredCRC32C: UInt32
    /// The states the device was asked for, in order.
    public var requestedStates: [MigrationState]
    /// The state read back after the load.
    public var finalState: MigrationState
    public var expectedStates: [MigrationState]

    /// True when every captured byte arrived in order and the transitions were as expected.
    public var matches: Bool {
        capturedBytes == deliveredBytes && capturedCRC32C == deliveredCRC32C && requestedStates == expectedStates
            && finalState == expectedStates.last
    }
}

extension Migration {
    /// Loads the stream from `source` into `device` (the stream's first and only device) and
    /// reports what arrived. Throws what a load would throw (a corrupt stream, a refusal).
    public static func replay(_ source: any ByteSource, into device: VFIODevice, leaving final: TargetFinalState = .running) throws(VFIOError) -> ReplayReport {
        let input = try StreamInput(from: source)
        guard input.deviceCount == 1 else {
            throw VFIOError(.invalidArgument, "replay takes a stream of one device; this one carries \(input.deviceCount)", device: source.name)
        }
        try requireCompatible(input.header.devices, [try device.descriptor()])
        let watchedSource = WatchedSource(input)
        let watchedDevice = WatchedDevice(device)
        let driver = try MigrationDriver(device: watchedDevice)
        try LoadSession(drivers: [driver]).run(from: watchedSource, leaving: final)
        let watched = watchedDevice.watched.withLock { $0 }
        return ReplayReport(
            capturedBytes: watchedSource.bytes, capturedCRC32C: watchedSource.crc,
            deliveredBytes: watched.bytes, deliveredCRC32C: watched.crc,
            requestedStates: watched.requested, finalState: try driver.refreshState(),
            expectedStates: final == .running ? [.resuming, .stop, .running] : [.resuming, .stop])
    }

    public static func replay(_ path: String, into device: VFIODevice, leaving final: TargetFinalState = .running) throws(VFIOError) -> ReplayReport {
        try replay(try FileChannel.reading(path), into: device, leaving: final)
    }
}

final class WatchedSource: LoadSource {
    let inner: any LoadSource
    var bytes: UInt64 = 0
    var crc: UInt32 = 0
    init(_ inner: any LoadSource) { self.inner = inner }
    var deviceCount: Int { inner.deviceCount }
    func next() throws(VFIOError) -> LoadEvent {
        let event = try inner.next()
        if case .state(let chunk, let buffer) = event {
            crc = CRC32C.update(crc, buffer, chunk.payload)
            bytes += UInt64(chunk.payload.count)
        }
        return event
    }
}

/// Counts what a device is given and which states it is asked for.
final class WatchedDevice: MigrationDevice {
    struct Watched: Sendable {
        var requested: [MigrationState] = []
        var bytes: UInt64 = 0
        var crc: UInt32 = 0
    }

    let inner: any MigrationDevice
    let watched = Mutex(Watched())
    init(_ inner: any MigrationDevice) { self.inner = inner }
    var name: String { inner.name }
    func migrationFlags() throws(VFIOError) -> MigrationFlags { try inner.migrationFlags() }
    func currentState() throws(VFIOError) -> MigrationState { try inner.currentState() }
    func reset() throws(VFIOError) { try inner.reset() }
    func stopCopySizeEstimate() throws(VFIOError) -> UInt64? { try inner.stopCopySizeEstimate() }
    func setState(_ state: MigrationState) throws(VFIOError) -> DataSession? {
        watched.withLock { $0.requested.append(state) }
        guard let session = try inner.setState(state) else { return nil }
        return DataSession(WatchedIO(session, owner: self))
    }

    /// Holds the inner session (closing it when this one is closed) and counts its writes.
    final class WatchedIO: DataSessionIO {
        let io: any DataSessionIO
        private let inner: Mutex<DataSession?>
        let owner: WatchedDevice
        init(_ session: consuming DataSession, owner: WatchedDevice) {
            self.io = session.io
            self.inner = Mutex(Optional(session))
            self.owner = owner
        }
        var deviceName: String { io.deviceName }
        var isSaving: Bool { io.isSaving }
        func read(into buffer: IOBuffer, range: Range<Int>, phase: MigrationState) throws(VFIOError) -> DataReadResult {
            try io.read(into: buffer, range: range, phase: phase)
        }
        func write(from buffer: IOBuffer, range: Range<Int>) throws(VFIOError) -> Int {
            let n = try io.write(from: buffer, range: range)
            owner.watched.withLock { w in
                w.crc = CRC32C.update(w.crc, buffer, range.lowerBound..<range.lowerBound + n)
                w.bytes += UInt64(n)
            }
            return n
        }
        func preCopyInfo() throws(VFIOError) -> PreCopyInfo { try io.preCopyInfo() }
        func setMode(_ mode: IOMode) throws(VFIOError) { try io.setMode(mode) }
        func close() { inner.withLock { $0 = nil } }
    }
}
