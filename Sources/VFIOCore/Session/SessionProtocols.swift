// Where saved device state goes and where loaded state comes from. The stream format
// implements these (VFIOMigration's stream writer and reader); tests implement them in memory.
import VFIOBuffers

/// Receives the device state a save produces, chunk by chunk, in stream order.
public protocol SaveSink: AnyObject {
    /// Bytes to leave free in front of each payload, so a record header can be written in
    /// place and the payload never copied.
    var payloadOffset: Int { get }
    /// `buffer[payload]` holds `payload.count` bytes of device `device`'s state starting at
    /// byte `offset` of its stream; `buffer[0..<payloadOffset]` is free for the sink's use.
    func deviceState(device: Int, phase: MigrationState, offset: UInt64, buffer: IOBuffer, payload: Range<Int>) throws(VFIOError)
    func preCopyProgress(device: Int, info: PreCopyInfo) throws(VFIOError)
    func endOfDevice(device: Int, totalBytes: UInt64, chunks: UInt64) throws(VFIOError)
    func endOfStream() throws(VFIOError)
}

/// One step of a stream being loaded.
public enum LoadEvent {
    /// `buffer[payload]` is device `device`'s state at byte `offset` of its stream.
    case deviceState(device: Int, phase: MigrationState, offset: UInt64, buffer: IOBuffer, payload: Range<Int>)
    case preCopyProgress(device: Int, info: PreCopyInfo)
    case endOfDevice(device: Int, totalBytes: UInt64)
    /// The stream is complete and every check passed.
    case endOfStream
}

/// Yields a saved stream's contents in order; throws `.streamCorrupt`/`.streamIncompatible`
/// with the byte offset of the first problem.
public protocol LoadSource: AnyObject {
    /// Number of devices the stream carries.
    var deviceCount: Int { get }
    func next() throws(VFIOError) -> LoadEvent
}
