// Where saved device state goes and where loaded state comes from. The stream format
// implements these (VFIOMigration's stream writer and reader); a VMM implements them to carry
// device state inside its own migration stream; tests implement them in memory.
import VFIOBuffers
import VFIOStream

/// A piece of one device's migration data, lying in a buffer the engine owns.
public struct StateChunk: Sendable, Hashable {
    /// Index of the device in the session's device list (the stream's device index).
    public var device: Int
    public var phase: StatePhase
    /// Position of the first byte in the device's data stream.
    public var offset: UInt64
    /// Where the bytes are in the buffer handed over with the chunk.
    public var payload: Range<Int>

    public init(device: Int, phase: StatePhase, offset: UInt64, payload: Range<Int>) {
        self.device = device
        self.phase = phase
        self.offset = offset
        self.payload = payload
    }
}

/// Receives the device state a save produces, chunk by chunk, in stream order.
public protocol SaveSink: AnyObject {
    /// Bytes to leave free in front of each payload, so a record header can be written in
    /// place and the payload never copied.
    var payloadOffset: Int { get }
    /// Where the next chunk of `device` is to be read: `payloadOffset` bytes of room, then up
    /// to `maxPayload` bytes of payload, inside the slice's range. Nil (the default) means the
    /// session's own buffer. A sink that hands chunks to another thread lends space in its own
    /// buffers here, so a chunk is read straight into the memory it is written from; the
    /// space is the sink's again once `writeState` took the chunk (or the next call asks).
    func chunkSpace(for device: Int, maxPayload: Int) throws(VFIOError) -> BufferSlice?
    /// `buffer[chunk.payload]` holds the chunk; `buffer[chunk.payload.lowerBound -
    /// payloadOffset ..< chunk.payload.lowerBound]` is free for the sink's use. The buffer is
    /// reused for the next chunk once this returns.
    func writeState(_ chunk: StateChunk, from buffer: IOBuffer) throws(VFIOError)
    /// PRECOPY_INFO as read after a pre-copy iteration (observability).
    func writeProgress(device: Int, info: PreCopyInfo) throws(VFIOError)
    /// Device `device`'s data stream is complete.
    func endDevice(_ device: Int) throws(VFIOError)
    /// Every device ended; nothing follows.
    func endStream() throws(VFIOError)
    /// Whether `writePages` carries guest memory (false by default).
    var carriesMemory: Bool { get }
    /// Sends `runs` (ascending, inside the region) of region `region` of `memory` as pages
    /// records: phase 1 while the guest runs, 2 after the stop; `round` is the memory round.
    /// The sink reads the pages' bytes from guest memory, now or later: their dirty bits were
    /// cleared before this call, so a write after it is sent again. The default throws: the
    /// sink does not carry memory.
    func writePages(region: Int, runs: [DirtyRun], phase: StatePhase, round: UInt64, of memory: GuestMemory) throws(VFIOError)
}

extension SaveSink {
    public func chunkSpace(for device: Int, maxPayload: Int) throws(VFIOError) -> BufferSlice? { nil }
}

extension SaveSink {
    /// The default: this sink carries no guest memory.
    public var carriesMemory: Bool { false }

    public func writePages(region: Int, runs: [DirtyRun], phase: StatePhase, round: UInt64, of memory: GuestMemory) throws(VFIOError) {
        throw VFIOError(.notSupported, "the save has guest memory but its sink (\(type(of: self))) does not carry memory")
    }
}

/// One step of a stream being loaded.
public enum LoadEvent {
    /// `buffer[chunk.payload]` is device `chunk.device`'s state at byte `chunk.offset`.
    case state(StateChunk, IOBuffer)
    case progress(device: Int, info: PreCopyInfo)
    case endOfDevice(device: Int, totalBytes: UInt64)
    /// The stream is complete and every check passed.
    case endOfStream
}

/// Yields a saved stream's contents in order (the pull form of a load); throws
/// `.streamCorrupt`/`.streamIncompatible` with the byte offset of the first problem.
public protocol LoadSource: AnyObject {
    /// Number of devices the stream carries.
    var deviceCount: Int { get }
    func next() throws(VFIOError) -> LoadEvent
}
