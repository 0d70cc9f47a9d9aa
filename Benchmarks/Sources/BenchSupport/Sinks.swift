// The baselines of the end-to-end save: SaveSinks that take the same buffer, at the same
// payload offset, from the same SaveSession reading the same device, and differ from
// StreamFileWriter only in what they do with each chunk.
import VFIOBuffers
import VFIOCore
import VFIOStream
import VFIOSyscalls

/// Writes each chunk's payload to the sink with the same StreamFD.writeAll the stream writer
/// uses, without a record header or CRC: a raw copy of the device's bytes.
public final class RawCopySink: SaveSink {
    /// Same as StreamFileWriter's, so the session reads into the same buffer ranges.
    public let payloadOffset = StreamFormat.recordHeaderSize
    private let fd: StreamFD
    public private(set) var bytesWritten: UInt64 = 0

    public init(path: String) throws(SyscallError) {
        fd = try StreamFD.create(path)
    }

    public func writeState(_ chunk: StateChunk, from buffer: IOBuffer) throws(VFIOError) {
        do { try fd.writeAll(buffer, chunk.payload) } catch {
            throw VFIOError(.ioFailure, "raw copy write failed: \(error)", device: fd.name)
        }
        bytesWritten += UInt64(chunk.payload.count)
    }

    public func writeProgress(device: Int, info: PreCopyInfo) throws(VFIOError) {}
    public func endDevice(_ device: Int) throws(VFIOError) {}

    /// fsync like the stream writer, so both end the same way.
    public func endStream() throws(VFIOError) {
        do { try fd.sync() } catch { throw VFIOError(.ioFailure, "raw copy fsync failed: \(error)", device: fd.name) }
    }
}

/// Drops every chunk: the session and the device reads alone (the bare read of the device).
public final class DiscardSink: SaveSink {
    public let payloadOffset = StreamFormat.recordHeaderSize
    public private(set) var bytesSeen: UInt64 = 0
    public init() {}
    public func writeState(_ chunk: StateChunk, from buffer: IOBuffer) throws(VFIOError) {
        bytesSeen += UInt64(chunk.payload.count)
    }
    public func writeProgress(device: Int, info: PreCopyInfo) throws(VFIOError) {}
    public func endDevice(_ device: Int) throws(VFIOError) {}
    public func endStream() throws(VFIOError) {}
}

/// A byte sink that drops what it is given: the engine's work on pages alone, no I/O.
public final class DroppingSink: ByteSink {
    public let name = "dropping sink"
    public private(set) var bytes: UInt64 = 0
    public init() {}
    public func write(_ buffer: IOBuffer, _ range: Range<Int>) throws(VFIOError) { bytes += UInt64(range.count) }
    public func write(gathering slices: [BufferSlice]) throws(VFIOError) { for s in slices { bytes += UInt64(s.range.count) } }
}
