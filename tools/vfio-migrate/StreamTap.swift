// Watches a stream go by, as bytes through any ByteSink or ByteSource (a file, standard
// input or output, a socket later), without copying more than record headers: the header
// says which devices there are and what each expects, each record header whose device, phase
// and length follow. Checking is left to the real reader and writer; this only observes.
import Foundation
import VFIOMigration

final class StreamTap {
    private let progress: ProgressReporter
    private let channel: Int
    private var position: UInt64 = 0
    private var headerBytes: [UInt8] = []
    private var headerLength: Int?
    private var nextRecord: UInt64 = 0
    private var recordHeader: [UInt8] = []
    /// Stops watching when what passes does not look like a stream (the reader will say why).
    private var lost = false

    init(progress: ProgressReporter, channel: String) {
        self.progress = progress
        self.channel = progress.addChannel(channel)
    }

    func observe(_ buffer: IOBuffer, _ range: Range<Int>) {
        guard !range.isEmpty else { return }
        progress.add(channel: channel, bytes: UInt64(range.count))
        var at = range.lowerBound
        defer { position += UInt64(range.count) }
        guard !lost else { return }
        // The header: its length is at bytes 12..<16; it is decoded once complete.
        if headerLength == nil || headerBytes.count < headerLength! {
            let wanted = (headerLength ?? StreamFormat.headerPrefixSize) - headerBytes.count
            let take = min(wanted, range.upperBound - at)
            headerBytes += buffer.bytes(at..<at + take)
            at += take
            if headerLength == nil && headerBytes.count == StreamFormat.headerPrefixSize {
                let length = Int(le32(headerBytes, 12))
                guard length >= StreamFormat.minimumHeaderLength, length <= StreamFormat.hardMaxHeaderLength else { return lose() }
                headerLength = length
                let more = min(length - headerBytes.count, range.upperBound - at)
                headerBytes += buffer.bytes(at..<at + more)
                at += more
            }
            guard let headerLength, headerBytes.count == headerLength else { return }
            decodeHeader()
            nextRecord = UInt64(headerLength)
        }
        // Records: only their 32-byte headers are copied.
        while !lost {
            let want = nextRecord + UInt64(recordHeader.count)
            guard want >= position else { return lose() }
            let offsetInRange = Int(want - position)
            let start = range.lowerBound + offsetInRange
            guard start < range.upperBound, start >= range.lowerBound else { break }
            let take = min(StreamFormat.recordHeaderSize - recordHeader.count, range.upperBound - start)
            recordHeader += buffer.bytes(start..<start + take)
            guard recordHeader.count == StreamFormat.recordHeaderSize else { break }
            record(recordHeader)
            nextRecord += UInt64(StreamFormat.recordHeaderSize) + UInt64(le32(recordHeader, 8))
            recordHeader = []
        }
    }

    private func decodeHeader() {
        var decoder = StreamDecoder()
        guard (try? decoder.decodeHeaderPrefix(Array(headerBytes[0..<StreamFormat.headerPrefixSize]))) != nil,
              let header = try? decoder.decodeHeader(headerBytes)
        else { return lose() }
        progress.devices(header.devices.map(\.name), expected: header.devices.map(\.expectedStateSize))
        headerBytes = []
    }

    private func record(_ bytes: [UInt8]) {
        let type = RecordType(rawValue: UInt16(bytes[0]) | UInt16(bytes[1]) << 8)
        let device = Int(UInt16(bytes[4]) | UInt16(bytes[5]) << 8)
        switch type {
        case .deviceState:
            progress.add(device: device, phase: bytes[6] == StatePhase.stopCopy.rawValue ? "stop-copy" : "pre-copy",
                         bytes: UInt64(le32(bytes, 8)))
        case .endOfDevice:
            progress.finish(device: device)
        default:
            break
        }
    }

    private func lose() {
        lost = true
        headerBytes = []
    }

    private func le32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[at + $1]) << (8 * UInt32($1)) }
    }
}

/// A sink whose bytes the tap sees on their way out.
final class TappedSink: ByteSink {
    let inner: any ByteSink
    let tap: StreamTap
    var name: String { inner.name }

    init(_ inner: any ByteSink, tap: StreamTap) {
        self.inner = inner
        self.tap = tap
    }

    func write(_ buffer: IOBuffer, _ range: Range<Int>) throws(VFIOError) {
        try inner.write(buffer, range)
        tap.observe(buffer, range)
    }

    func write(gathering slices: [BufferSlice]) throws(VFIOError) {
        try inner.write(gathering: slices)
        for slice in slices { tap.observe(slice.buffer, slice.range) }
    }

    func flush() throws(VFIOError) { try inner.flush() }
}

/// A source whose bytes the tap sees as they are read.
final class TappedSource: ByteSource {
    let inner: any ByteSource
    let tap: StreamTap
    var name: String { inner.name }

    init(_ inner: any ByteSource, tap: StreamTap) {
        self.inner = inner
        self.tap = tap
    }

    func read(into buffer: IOBuffer, _ range: Range<Int>) throws(VFIOError) -> Int {
        let n = try inner.read(into: buffer, range)
        tap.observe(buffer, range.lowerBound..<range.lowerBound + n)
        return n
    }
}
