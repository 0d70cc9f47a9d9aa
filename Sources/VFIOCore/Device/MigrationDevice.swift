// What the engine needs from a device and from a migration data session. VFIOKernel
// implements both over the kernel boundary (the real kernel, or VFIOMock's emulator behind it);
// tests implement them with scripted devices.
import VFIOBuffers
import VFIOStream

/// A device that speaks the v2 migration protocol, one ioctl per call: no policy here.
public protocol MigrationDevice: AnyObject, Sendable {
    /// How people name the device: a PCI address, an mdev UUID, `mock:NAME`.
    var name: String { get }
    /// VFIO_DEVICE_FEATURE_MIGRATION (GET). Throws `.notSupported` when the device has no migration.
    func migrationFlags() throws(VFIOError) -> MigrationFlags
    /// VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE (GET).
    func currentState() throws(VFIOError) -> MigrationState
    /// VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE (SET): the kernel walks the whole path. Returns the
    /// new data session when the final arc opened one.
    func setState(_ state: MigrationState) throws(VFIOError) -> DataSession?
    /// VFIO_DEVICE_RESET: back to RUNNING, every session ended.
    func reset() throws(VFIOError)
    /// VFIO_DEVICE_FEATURE_MIG_DATA_SIZE: the STOP_COPY size estimate, nil when unsupported.
    func stopCopySizeEstimate() throws(VFIOError) -> UInt64?
    /// Opts in to PRECOPY_INFO's REINIT flag (VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2) when the
    /// device offers it; false when it does not.
    func enablePreCopyReinitReports() throws(VFIOError) -> Bool
}

extension MigrationDevice {
    /// Devices that predate MIG_PRECOPY_INFOv2 never report REINIT.
    public func enablePreCopyReinitReports() throws(VFIOError) -> Bool { false }
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
public struct PreCopyInfo: Sendable, Hashable, Codable {
    public var initialBytes: UInt64
    public var dirtyBytes: UInt64
    /// REINIT: new initial data appeared (reported only after opting in to MIG_PRECOPY_INFOv2).
    public var reinitialized: Bool

    public init(initialBytes: UInt64, dirtyBytes: UInt64, reinitialized: Bool = false) {
        self.initialBytes = initialBytes
        self.dirtyBytes = dirtyBytes
        self.reinitialized = reinitialized
    }

    public var pendingBytes: UInt64 { initialBytes &+ dirtyBytes }
}

/// Whether reads and writes on a descriptor wait (blocking) or answer EAGAIN (O_NONBLOCK).
public enum IOMode: Sendable, Hashable {
    case blocking, nonBlocking
}

/// The I/O of one migration data session, behind the fd the kernel returned. Not seekable;
/// may not be pollable, so the engine reads it with blocking calls on its own thread.
/// Implementations must be safe to call from one thread while another holds the session.
public protocol DataSessionIO: AnyObject, Sendable {
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
    /// Puts the fd in blocking mode, or in O_NONBLOCK.
    func setMode(_ mode: IOMode) throws(VFIOError)
    /// Releases the fd. Called exactly once, by the `DataSession` that owns this I/O.
    func close()
}

/// One migration data session: the fd a state change returned, owned by value. It closes
/// exactly once, when its owner consumes it with `close()` or drops it: the compiler, not a
/// convention, keeps a second close from happening.
public struct DataSession: ~Copyable, Sendable {
    /// The session's I/O; valid until the session is closed.
    public let io: any DataSessionIO

    public init(_ io: any DataSessionIO) { self.io = io }

    deinit { io.close() }

    /// Ends the session now (the fd is released; the kernel session was ended by the arc).
    public consuming func close() {}
}
