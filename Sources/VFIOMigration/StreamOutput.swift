// The save side of the stream format over any byte sink: the header first, then each chunk
// sealed in place (the record header is written into the 32 bytes the engine left free in
// front of the payload) and written with the payload in one call.
import VFIOBuffers
import VFIOCore
import VFIOStream

public final class StreamOutput: SaveSink {
    public let payloadOffset = StreamFormat.recordHeaderSize
    public let header: StreamHeader
    public let sink: any ByteSink
    private var encoder: StreamEncoder
    private let control = IOBuffer(capacity: 4096)
    /// Bytes written so far (the stream offset of the next record).
    public private(set) var bytesWritten: UInt64 = 0
    /// Copy pre-copy pages before checksumming them (the default), so a page the guest writes
    /// meanwhile cannot break its record's checksum; false when nothing writes guest memory
    /// during the save (a paused guest), which sends them straight from memory too.
    public var copiesLivePages = true
    /// Pages sent so far (data and ZERO), and records.
    public private(set) var pageCounts = PageTransferCounts()
    private var packer = PagePacker()
    private var pageControl: IOBuffer?
    private var bounce: IOBuffer?

    /// Writes the header to `sink`.
    public init(header: StreamHeader, to sink: any ByteSink) throws(VFIOError) {
        self.header = header
        self.sink = sink
        do { encoder = try StreamEncoder(header: header) } catch { throw .invalidUse("stream header: \(error)") }
        let bytes = encoder.encodeHeader()
        let buffer = IOBuffer(capacity: max(bytes.count, 1))
        buffer.write(bytes, at: 0)
        try write(buffer, 0..<bytes.count)
    }

    private func write(_ buffer: IOBuffer, _ range: Range<Int>) throws(VFIOError) {
        try sink.write(buffer, range)
        bytesWritten += UInt64(range.count)
    }

    public func writeState(_ chunk: StateChunk, from buffer: IOBuffer) throws(VFIOError) {
        let start = chunk.payload.lowerBound - payloadOffset
        guard start >= 0 else { throw .invalidUse("no room for the record header in front of the payload") }
        let record = try framed { (encoder) throws(StreamUsageError) in
            try encoder.frameDeviceState(device: chunk.device, phase: chunk.phase, payloadLength: chunk.payload.count, in: buffer, at: start)
        }
        try write(buffer, start..<start + record.recordLength)
    }

    public func writeProgress(device: Int, info: PreCopyInfo) throws(VFIOError) {
        let record = try framed { (encoder) throws(StreamUsageError) in
            try encoder.framePreCopyProgress(device: device, initialBytes: info.initialBytes, dirtyBytes: info.dirtyBytes, in: control, at: 0)
        }
        try write(control, 0..<record.recordLength)
    }

    public func endDevice(_ device: Int) throws(VFIOError) {
        let digest = try framed { (encoder) throws(StreamUsageError) in try encoder.frameDeviceDigest(device: device, in: control, at: 0) }
        try write(control, 0..<digest.recordLength)
        let record = try framed { (encoder) throws(StreamUsageError) in try encoder.frameEndOfDevice(device: device, in: control, at: 0) }
        try write(control, 0..<record.recordLength)
    }

    public func endStream() throws(VFIOError) {
        let record = try framed { (encoder) throws(StreamUsageError) in try encoder.frameEndOfStream(in: control, at: 0) }
        try write(control, 0..<record.recordLength)
        try sink.flush()
    }

    public var carriesMemory: Bool { !header.regions.isEmpty }

    public func writePages(region index: Int, runs: [DirtyRun], phase: StatePhase, round: UInt64, of memory: GuestMemory) throws(VFIOError) {
        let region = try PageRouting.region(index, of: memory, header: header)
        let maxPages = PagePacker.maxPages(pageSize: region.pageSize, maxPayload: header.maxPayload)
        let control = pageControl ?? IOBuffer(capacity: PagePacker.controlSpace(pages: maxPages))
        if control.capacity < PagePacker.controlSpace(pages: maxPages) { throw .invalidUse("page control buffer sized for another region") }
        pageControl = control
        let copy = copiesLivePages && phase == .preCopy && header.hasRecordChecksums
        if copy && bounce == nil { bounce = IOBuffer(capacity: Int(header.maxPayload)) }
        for group in PagePacker.records(runs, maxPages: maxPages) {
            let packed = try packer.pack(
                region: index, region, runs: group, phase: phase, round: round, encoder: &encoder, control: control, controlStart: 0,
                bounce: copy ? BufferSlice(bounce!, 0..<bounce!.capacity) : nil)
            try sink.write(gathering: packed.slices)
            bytesWritten += UInt64(packed.recordLength)
            pageCounts.add(packed)
        }
    }

    /// The encoder refuses a call the format forbids; for this sink that is a misuse by its caller.
    private func framed(_ body: (inout StreamEncoder) throws(StreamUsageError) -> RecordHeader) throws(VFIOError) -> RecordHeader {
        do throws(StreamUsageError) { return try body(&encoder) } catch { throw .invalidUse("stream record: \(error)") }
    }
}
