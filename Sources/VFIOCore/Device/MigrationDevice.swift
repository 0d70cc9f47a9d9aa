// What the engine needs from a device and from a migration data fd. VFIOKernel implements
// both over the kernel boundary (the real kernel, or VFIOMock's emulator behind it).
import VFIOBuffers

/// A device that speaks the v2 migration protocol, one ioctl per call: no policy here.
public protocol MigrationDevice: AnyObject, Sendable {
    /// How people name the device: a PCI address, an mdev UUID, `mock:NAME`.
    var name: String { get }
    /// VFIO_DEVICE_FEATURE_MIGRATION (GET). Throws `.notSupported` when the device has no migration.
    func migrationFlags() throws(VFIOError) -> MigrationFlags
    /// VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE (GET).
    func currentState() throws(VFIOError) -> MigrationState
    /// VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE (SET): the kernel walks the whole path. Returns the
    /// new data channel when the final arc opened a session.
    func setState(_ state: MigrationState) throws(VFIOError) -> (any MigrationDataChannel)?
    /// VFIO_DEVICE_RESET: back to RUNNING, every session ended.
    func reset() throws(VFIOError)
    /// VFIO_DEVICE_FEATURE_MIG_DATA_SIZE: the STOP_COPY size estimate, nil when unsupported.
    func stopCopySizeEstimate() throws(VFIOError) -> UInt64?
}

/// What one read of a save data fd produced.
public enum DataReadResult: Sendable, Equatable {
    /// Bytes were read into the buffer.
    case bytes(Int)
    /// STOP_COPY: read returned 0, the device state is complete.
    case endOfStream
    /// PRE_COPY: nothing more for now (ENOMSG, or 0 from drivers that use it so).
    case noDataNow
    /// The fd is non-blocking and nothing is queued yet (EAGAIN).
    case wouldBlock
}

/// Initial and dirty bytes a device reports in PRE_COPY (VFIO_MIG_GET_PRECOPY_INFO).
public struct PreCopyInfo: Sendable, Equatable, Codable {
    public var initialBytes: UInt64
    public var dirtyBytes: UInt64
    public init(initialBytes: UInt64, dirtyBytes: UInt64) {
        self.initialBytes = initialBytes
        self.dirtyBytes = dirtyBytes
    }
    public var pendingBytes: UInt64 { initialBytes &+ dirtyBytes }
}

/// The fd of one migration data session. Not seekable; may not be pollable, so the engine
/// reads it with blocking calls on its own thread.
public protocol MigrationDataChannel: AnyObject, Sendable {
    var deviceName: String { get }
    /// True for a save session (read side), false for a resume session (write side).
    var isSaving: Bool { get }
    /// One read into `buffer[range]`. `phase` says how 0 is interpreted (end vs nothing now).
    func read(into buffer: IOBuffer, range: Range<Int>, phase: MigrationState) throws(VFIOError) -> DataReadResult
    /// One write from `buffer[range]`; returns bytes accepted (may be short), or 0 when the
    /// fd is non-blocking and the device takes nothing now (EAGAIN).
    func write(from buffer: IOBuffer, range: Range<Int>) throws(VFIOError) -> Int
    /// VFIO_MIG_GET_PRECOPY_INFO on the fd.
    func preCopyInfo() throws(VFIOError) -> PreCopyInfo
    /// Puts the fd in or out of O_NONBLOCK.
    func setNonBlocking(_ enabled: Bool) throws(VFIOError)
    /// Closes the fd. Called exactly once by the engine; a second call is a programmer error.
    func close()
}
