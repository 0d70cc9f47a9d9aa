// A stream kept in memory, for `bench --device`: a save writes into it and a load reads it
// back, so neither a disk nor a network is what is measured. Its segments stay allocated
// across runs (rewind, then write again): only the first run pays for the memory.
import VFIOBuffers
import VFIOCore
import VFIOSyscalls

public final class MemoryStream: ByteSink, ByteSource {
    public let name = "memory"
    private let segmentSize: Int
    private var segments: [IOBuffer] = []
    /// Bytes written since the last rewind.
    public private(set) var length = 0
    private var readOffset = 0

    public init(segmentSize: Int = 64 << 20) {
        precondition(segmentSize > 0, "segments hold bytes")
        self.segmentSize = segmentSize
    }

    /// Empties the stream for the next save (keeping its memory).
    public func rewind() {
        length = 0
        readOffset = 0
    }

    /// Reads again from the start.
    public func rewindForReading() { readOffset = 0 }

    public func write(_ buffer: IOBuffer, _ range: Range<Int>) throws(VFIOError) {
        var from = range.lowerBound
        while from < range.upperBound {
            let segment = length / segmentSize
            if segment == segments.count { segments.append(IOBuffer(capacity: segmentSize)) }
            let at = length % segmentSize
            let n = min(range.upperBound - from, segmentSize - at)
            BenchIO.copy(buffer, from..<from + n, to: segments[segment], at: at)
            from += n
            length += n
        }
    }

    public func read(into buffer: IOBuffer, _ range: Range<Int>) throws(VFIOError) -> Int {
        guard readOffset < length else { return 0 }
        let segment = readOffset / segmentSize
        let at = readOffset % segmentSize
        let n = min(range.count, segmentSize - at, length - readOffset)
        BenchIO.copy(segments[segment], at..<at + n, to: buffer, at: range.lowerBound)
        readOffset += n
        return n
    }
}
