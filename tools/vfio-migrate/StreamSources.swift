// Opening a stream to read: it must start with the stream's magic bytes (anything else is
// not a stream, exit 4), and a command may read its header once before handing the whole
// stream on, so a wrong number of targets is a usage error before any device is touched.
import Foundation
import VFIOMigration

final class CheckedStream: ByteSource {
    let inner: any ByteSource
    var name: String { inner.name }
    /// Bytes read from `inner` while peeking, served again from the start.
    private var kept: [UInt8] = []
    private var served = 0
    private var keeping = true

    private init(_ inner: any ByteSource) { self.inner = inner }

    /// Opens `path` ("-" for standard input) and checks the magic. With `peek`, `header()`
    /// may be called once before the stream is read.
    static func open(_ path: String, peek: Bool = false) throws(VFIOError) -> CheckedStream {
        let stream = CheckedStream(try FileChannel.reading(path))
        let magic = IOBuffer(capacity: StreamFormat.magic.count)
        let got = try stream.readFully(into: magic, 0..<StreamFormat.magic.count)
        guard got == StreamFormat.magic.count, magic.bytes(0..<got) == StreamFormat.magic else {
            throw VFIOError(
                .streamCorrupt,
                got == 0 ? "not a vfio-migration stream: the input is empty"
                    : "not a vfio-migration stream: it does not start with the stream's magic bytes",
                device: stream.name)
        }
        stream.served = 0
        stream.keeping = peek
        return stream
    }

    /// The stream's header, read now; the stream is then read again from its first byte.
    func header(limits: StreamLimits = .default) throws(VFIOError) -> StreamHeader {
        defer { rewind() }
        return try StreamInput(from: self, limits: limits).header
    }

    /// Serves what was read so far once more, then the rest of the input.
    func rewind() {
        served = 0
        keeping = false
    }

    func read(into buffer: IOBuffer, _ range: Range<Int>) throws(VFIOError) -> Int {
        if served < kept.count {
            let n = min(range.count, kept.count - served)
            buffer.write(kept[served..<served + n], at: range.lowerBound)
            served += n
            if !keeping && served == kept.count {
                kept = []
                served = 0
            }
            return n
        }
        let n = try inner.read(into: buffer, range)
        if keeping && n > 0 {
            kept += buffer.bytes(range.lowerBound..<range.lowerBound + n)
            served = kept.count
        }
        return n
    }
}

/// The number of targets a stream needs is the operator's to get right: a usage error.
func requireTargetCount(_ count: Int, for header: StreamHeader, of stream: String) throws(CLIFailure) {
    guard header.devices.count == count else {
        throw CLIFailure(
            .usage, "the stream carries \(header.devices.count) device(s) but \(count) target device(s) were named (one target per device, in stream order)",
            device: stream)
    }
}
