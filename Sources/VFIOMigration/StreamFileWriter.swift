// The save side of the stream format over a file, pipe or socket: the header first, then each
// chunk sealed in place (the record header is written into the 32 bytes the engine left free
// in front of the payload) and written with the payload in one call.
import VFIOBuffers
import VFIOCore
import VFIOStream
import VFIOSyscalls

/// Owns a stream fd in a class, so it can be shared by the writer and its caller.
final class StreamOutput {
    let fd: StreamFD
    init(_ fd: consuming StreamFD) { self.fd = fd }
}

public final class StreamFileWriter: SaveSink {
    public let payloadOffset = StreamFormat.recordHeaderSize
    private var encoder: StreamEncoder
    private let output: StreamOutput
    private let control = IOBuffer(capacity: 4096)
    /// Bytes written so far (the stream offset of the next record).
    public private(set) var bytesWritten: UInt64 = 0

    /// Opens `path` ("-" for standard output) and writes the header.
    public init(path: String, header: StreamHeader) throws(VFIOError) {
        do {
            output = StreamOutput(path == "-" ? StreamFD.standard(1) : try StreamFD.open(path, forWriting: true))
        } catch {
            throw VFIOError(.ioFailure, "cannot create the stream file: \(error)", device: path)
        }
        encoder = StreamEncoder(header: header)
        try write(bytes: encoder.encodeHeader())
    }

    private var name: String { output.fd.name }

    private func fail(_ error: SyscallError) -> VFIOError {
        VFIOError(
            VFIOError.code(for: error.errno),
            "failed to write the stream at byte \(bytesWritten)", device: name,
            operation: error.operation, errno: error.errno)
    }

    private func write(bytes: [UInt8]) throws(VFIOError) {
        do { try output.fd.writeAll(bytes) } catch { throw fail(error) }
        bytesWritten += UInt64(bytes.count)
    }

    private func write(_ buffer: IOBuffer, _ range: Range<Int>) throws(VFIOError) {
        do { try output.fd.writeAll(buffer, range) } catch { throw fail(error) }
        bytesWritten += UInt64(range.count)
    }

    public func deviceState(device: Int, phase: MigrationState, offset: UInt64, buffer: IOBuffer, payload: Range<Int>) throws(VFIOError) {
        let start = payload.lowerBound - payloadOffset
        precondition(start >= 0, "no room for the record header in front of the payload")
        let record = encoder.frameDeviceState(
            device: device, phase: phase == .stopCopy ? .stopCopy : .preCopy,
            payloadLength: payload.count, in: buffer, at: start)
        try write(buffer, start..<start + record.recordLength)
    }

    public func preCopyProgress(device: Int, info: PreCopyInfo) throws(VFIOError) {
        let record = encoder.framePreCopyProgress(
            device: device, initialBytes: info.initialBytes, dirtyBytes: info.dirtyBytes, in: control, at: 0)
        try write(control, 0..<record.recordLength)
    }

    public func endOfDevice(device: Int, totalBytes: UInt64, chunks: UInt64) throws(VFIOError) {
        let record = encoder.frameEndOfDevice(device: device, in: control, at: 0)
        try write(control, 0..<record.recordLength)
    }

    public func endOfStream() throws(VFIOError) {
        let record = encoder.frameEndOfStream(in: control, at: 0)
        try write(control, 0..<record.recordLength)
        do { try output.fd.sync() } catch { throw fail(error) }
    }
}
