// Replay for test authors: feed a captured stream into a device in RESUMING and prove that
// exactly the captured bytes arrived, in order, with the right transitions around them.
// Two decorators watch the two ends: one over the stream (what was captured), one over the
// device (what the device was given and which states it was asked for).
import VFIOBuffers
import VFIOCore
import VFIOMock
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
    /// Loads the stream at `path` into `device` (the stream's first and only device) and
    /// reports what arrived. Throws what a load would throw (a corrupt stream, a refusal).
    public static func replay(_ path: String, into device: OpenedDevice, finalState: MigrationState = .running) throws(VFIOError) -> ReplayReport {
        let reader = try StreamFileReader(path: path)
        guard reader.deviceCount == 1 else {
            throw VFIOError(.invalidArgument, "replay takes a stream of one device; this one carries \(reader.deviceCount)", device: path)
        }
        try requireCompatible(reader.header.devices, [try device.descriptor()])
        let watchedSource = WatchedSource(reader)
        let watchedDevice = WatchedDevice(device.migration)
        let driver = try MigrationDriver(device: watchedDevice)
        try LoadSession(drivers: [driver], source: watchedSource, options: LoadOptions(finalState: finalState)).run()
        return ReplayReport(
            capturedBytes: watchedSource.bytes, capturedCRC32C: watchedSource.crc,
            deliveredBytes: watchedDevice.bytes, deliveredCRC32C: watchedDevice.crc,
            requestedStates: watchedDevice.requested, finalState: try driver.refreshState(),
            expectedStates: finalState == .running ? [.resuming, .stop, .running] : [.resuming, .stop])
    }
}

extension Migration {
    /// A mock device spec shaped like the device a stream was saved from, when that device
    /// was itself a mock (its descriptor names its spec): same size, blocks, flags and
    /// compatibility id, no faults. Nil for streams of real devices.
    public static func replayTargetSpec(for descriptor: DeviceDescriptor) -> String? {
        guard descriptor.name.hasPrefix("mock:"), var configuration = try? MockDeviceConfiguration(spec: descriptor.name) else {
            return nil
        }
        configuration.name = "replay"
        configuration.faults = MockFaults()
        configuration.seed &+= 1
        return configuration.spec
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
        if case .deviceState(_, _, _, let buffer, let payload) = event {
            crc = CRC32C.update(crc, buffer, payload)
            bytes += UInt64(payload.count)
        }
        return event
    }
}

final class WatchedDevice: MigrationDevice, @unchecked Sendable {
    let inner: any MigrationDevice
    var requested: [MigrationState] = []
    var bytes: UInt64 = 0
    var crc: UInt32 = 0
    init(_ inner: any MigrationDevice) { self.inner = inner }
    var name: String { inner.name }
    func migrationFlags() throws(VFIOError) -> MigrationFlags { try inner.migrationFlags() }
    func currentState() throws(VFIOError) -> MigrationState { try inner.currentState() }
    func reset() throws(VFIOError) { try inner.reset() }
    func stopCopySizeEstimate() throws(VFIOError) -> UInt64? { try inner.stopCopySizeEstimate() }
    func setState(_ state: MigrationState) throws(VFIOError) -> (any MigrationDataChannel)? {
        requested.append(state)
        guard let channel = try inner.setState(state) else { return nil }
        return WatchedChannel(channel, owner: self)
    }

    final class WatchedChannel: MigrationDataChannel, @unchecked Sendable {
        let inner: any MigrationDataChannel
        unowned let owner: WatchedDevice
        init(_ inner: any MigrationDataChannel, owner: WatchedDevice) {
            self.inner = inner
            self.owner = owner
        }
        var deviceName: String { inner.deviceName }
        var isSaving: Bool { inner.isSaving }
        func read(into buffer: IOBuffer, range: Range<Int>, phase: MigrationState) throws(VFIOError) -> DataReadResult {
            try inner.read(into: buffer, range: range, phase: phase)
        }
        func write(from buffer: IOBuffer, range: Range<Int>) throws(VFIOError) -> Int {
            let n = try inner.write(from: buffer, range: range)
            owner.crc = CRC32C.update(owner.crc, buffer, range.lowerBound..<range.lowerBound + n)
            owner.bytes += UInt64(n)
            return n
        }
        func preCopyInfo() throws(VFIOError) -> PreCopyInfo { try inner.preCopyInfo() }
        func setNonBlocking(_ enabled: Bool) throws(VFIOError) { try inner.setNonBlocking(enabled) }
        func close() { inner.close() }
    }
}
