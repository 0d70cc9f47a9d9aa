// One channel of a pipelined stream: a thread that takes filled batches, seals their records
// with the channel's own encoder (sequence numbers and CRC32C, computed here, off the reading
// thread's critical path), writes each batch with one call, and gives the buffer back.
import Foundation
import VFIOBuffers
import VFIOCore
import VFIOStream
import VFIOSyscalls

/// Unchecked: it holds a sink (not Sendable) and its vars are confined: the producer's thread
/// creates it and calls `start` (which writes the header) before the writer thread exists
/// (Thread.start orders them); from then on only the writer thread touches the encoder, the
/// sink and `metrics`, which the producer reads after `join` (the semaphore orders them).
/// `started` and `joined` belong to the producer's thread; the queue, pool and ledger are
/// thread-safe.
final class ChannelWriter: @unchecked Sendable {
    let index: Int
    let sink: any ByteSink
    let queue: HandoffQueue<Batch>
    private let pool: BufferPool
    private var encoder: StreamEncoder
    private let done = DispatchSemaphore(value: 0)
    private var joined = false
    private var started = false
    private let node: Int?
    /// Set for one of several channels: chunk CRCs go to the ledger, offsets are explicit.
    private let ledger: DeviceLedger?
    /// False under NO_RECORD_CHECKSUMS: no CRC work at all.
    private let checksums: Bool
    private(set) var metrics: ChannelMetrics

    init(index: Int, sink: any ByteSink, header: StreamHeader, pool: BufferPool, queueDepth: Int, node: Int?, ledger: DeviceLedger?) throws(VFIOError) {
        self.index = index
        self.ledger = ledger
        self.checksums = !HeaderFlags(rawValue: header.flags).contains(.noRecordChecksums)
        self.sink = sink
        self.pool = pool
        self.node = node
        self.queue = HandoffQueue(capacity: queueDepth)
        do { self.encoder = try StreamEncoder(header: header) } catch { throw .invalidUse("stream header: \(error)") }
        self.metrics = ChannelMetrics(channel: index, sink: sink.name)
    }

    /// Writes the header, then starts the thread.
    func start() throws(VFIOError) {
        let bytes = encoder.encodeHeader()
        let buffer = IOBuffer(capacity: max(bytes.count, 1))
        buffer.write(bytes, at: 0)
        try sink.write(buffer, 0..<bytes.count)
        metrics.bytes += UInt64(bytes.count)
        let name = ThreadNames.name("tx\(index)", encoder.header.migrationID)
        let thread = Thread { [self] in
            ThreadNames.nameCurrent(name)
            run()
        }
        started = true
        thread.start()
    }

    /// Waits until the thread has written everything (or failed); at once if it never started
    /// or was already joined.
    func join() {
        guard started && !joined else { return }
        done.wait()
        joined = true
    }

    private func run() {
        defer { done.signal() }
        if let node { metrics.boundToNode = NUMAPlacement.bindCurrentThread(toNode: node) ? node : nil }
        let clock = ContinuousClock()
        let started = clock.now
        do throws(VFIOError) {
            while let batch = try queue.take() {
                let busy = clock.now
                if let slices = try seal(batch) {
                    try sink.write(gathering: slices)
                    metrics.bytes += UInt64(slices.reduce(0) { $0 + $1.range.count })
                } else {
                    try sink.write(batch.buffer, 0..<batch.used)
                    metrics.bytes += UInt64(batch.used)
                }
                metrics.batches += 1
                metrics.busy += clock.now - busy
                pool.give(batch.buffer)
            }
            try sink.flush()
        } catch {
            // Wake the producer and the other channels: the pipeline ends with this error.
            queue.close(error)
            pool.close(error)
            ledger?.close(error)
        }
        metrics.elapsed = clock.now - started
    }

    /// Seals every record; returns the gather list when pages records make the batch more
    /// than its buffer's bytes (nil: write the buffer as it is).
    private func seal(_ batch: Batch) throws(VFIOError) -> [BufferSlice]? {
        var slices: [BufferSlice]?
        var cursor = 0
        // Device-state batches (most of them) have nothing to prepare: no array per batch.
        let hasPages = batch.records.contains { if case .pages = $0 { true } else { false } }
        let prepared = hasPages ? try Self.prepare(batch, checksums: encoder.header.hasRecordChecksums) : []
        var next = 0
        for record in batch.records {
            metrics.records += 1
            guard case .pages(let pages) = record else {
                try seal(record, in: batch.buffer)
                continue
            }
            var list = slices ?? []
            if pages.start > cursor { list.append(BufferSlice(batch.buffer, cursor..<pages.start)) }
            let packed = try PagePacker.frame(
                prepared[next], region: pages.index, regionName: pages.region.name, phase: pages.phase, round: pages.round,
                encoder: &encoder, control: batch.buffer, controlStart: pages.start)
            next += 1
            list += packed.slices
            metrics.pages = (metrics.pages ?? PageTransferCounts()).adding(packed)
            cursor = pages.start + pages.control + pages.bounce
            slices = list
        }
        if var list = slices {
            if batch.used > cursor { list.append(BufferSlice(batch.buffer, cursor..<batch.used)) }
            return list
        }
        return nil
    }

    /// Scans and checksums every pages record of the batch (the copy too, for live pages),
    /// spread over the machine's cores when there are several records: the expensive half
    /// of page work, which does not depend on the records' order. Framing stays in order.
    private static func prepare(_ batch: Batch, checksums: Bool) throws(VFIOError) -> [PreparedPages] {
        let pages = batch.records.compactMap { record -> PendingPages? in
            if case .pages(let p) = record { return p }
            return nil
        }
        func one(_ p: PendingPages) throws(VFIOError) -> PreparedPages {
            let bounce = p.bounce > 0 ? BufferSlice(batch.buffer, p.start + p.control..<p.start + p.control + p.bounce) : nil
            return try PagePacker.prepare(p.region, runs: p.runs, checksums: checksums, bounce: bounce)
        }
        let workers = min(pages.count, ProcessInfo.processInfo.activeProcessorCount)
        guard workers > 1 else {
            var result: [PreparedPages] = []
            for p in pages { result.append(try one(p)) }
            return result
        }
        let results = PreparedResults(count: pages.count)
        let work = UncheckedBox(pages: pages, buffer: batch.buffer)
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            var i = worker
            while i < work.pages.count {
                let p = work.pages[i]
                let bounce = p.bounce > 0 ? BufferSlice(work.buffer, p.start + p.control..<p.start + p.control + p.bounce) : nil
                do throws(VFIOError) {
                    results.set(i, .success(try PagePacker.prepare(p.region, runs: p.runs, checksums: checksums, bounce: bounce)))
                } catch {
                    results.set(i, .failure(error))
                }
                i += workers
            }
        }
        return try results.all()
    }

    /// The encoder refuses what the format forbids; from this pipeline that is a bug of its producer.
    private func encode(_ body: (inout StreamEncoder) throws(StreamUsageError) -> RecordHeader) throws(VFIOError) {
        do throws(StreamUsageError) { _ = try body(&encoder) } catch { throw .invalidUse("stream record on channel \(index): \(error)") }
    }

    private func seal(_ record: PendingRecord, in buffer: IOBuffer) throws(VFIOError) {
        switch record {
        case .state(let device, let phase, let offset, let start, let length):
            metrics.stateBytes += UInt64(length)
            guard let ledger else {
                try encode { (e) throws(StreamUsageError) in try e.frameDeviceState(device: device, phase: phase, payloadLength: length, in: buffer, at: start) }
                return
            }
            // One pass over the payload gives the chunk's CRC for the ledger; the record CRC is
            // derived from it.
            let payload = start + StreamFormat.recordHeaderSize..<start + StreamFormat.recordHeaderSize + length
            let crc = checksums ? CRC32C.update(0, buffer, payload) : 0
            try encode { (e) throws(StreamUsageError) in
                try e.frameDeviceState(device: device, phase: phase, payloadLength: length, payloadCRC: crc, dataOffset: offset, in: buffer, at: start)
            }
            ledger.note(device: device, offset: offset, length: length, crc: crc)
        case .progress(let device, let info, let offset, let start):
            let given: UInt64? = ledger == nil ? nil : offset
            try encode { (e) throws(StreamUsageError) in
                try e.framePreCopyProgress(device: device, initialBytes: info.initialBytes, dirtyBytes: info.dirtyBytes, dataOffset: given, in: buffer, at: start)
            }
        case .digest(let device, let start):
            guard let ledger else {
                try encode { (e) throws(StreamUsageError) in try e.frameDeviceDigest(device: device, in: buffer, at: start) }
                return
            }
            let data = try ledger.dataCRC(of: device)
            try encode { (e) throws(StreamUsageError) in
                try e.frameDeviceDigest(device: device, dataCRC: data.crc, totalLength: data.total, in: buffer, at: start)
            }
        case .endOfDevice(let device, let total, let start):
            let given: UInt64? = ledger == nil ? nil : total
            try encode { (e) throws(StreamUsageError) in try e.frameEndOfDevice(device: device, totalLength: given, in: buffer, at: start) }
        case .endOfStream(let start):
            try encode { (e) throws(StreamUsageError) in try e.frameEndOfStream(in: buffer, at: start) }
        case .pages:
            preconditionFailure("pages records are packed by seal(_:)")
        }
    }
}

/// What one channel moved, and how busy its writer was.
public struct ChannelMetrics: Sendable, Hashable, Codable {
    public var channel: Int
    public var sink: String
    /// Bytes written, header included.
    public var bytes: UInt64 = 0
    public var stateBytes: UInt64 = 0
    public var records: UInt64 = 0
    /// Hand-offs (batches of records) written.
    public var batches: UInt64 = 0
    /// Time sealing and writing; the rest of `elapsed` the writer waited for batches.
    public var busy: Duration = .zero
    public var elapsed: Duration = .zero
    /// The NUMA node the writer thread was bound to, nil when it was not.
    public var boundToNode: Int?
    /// Guest memory pages this channel carried (nil when it carried none).
    public var pages: PageTransferCounts?

    public var throughput: Double { elapsed.seconds > 0 ? Double(bytes) / elapsed.seconds : 0 }
}

/// What page workers hand back, one slot per record, behind a lock.
private final class PreparedResults: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [Result<PreparedPages, VFIOError>?]

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    func set(_ i: Int, _ result: Result<PreparedPages, VFIOError>) { lock.withLock { slots[i] = result } }

    func all() throws(VFIOError) -> [PreparedPages] {
        var out: [PreparedPages] = []
        for slot in lock.withLock({ slots }) {
            guard let slot else { preconditionFailure("a page worker left a record unprepared") }
            out.append(try slot.get())
        }
        return out
    }
}

/// The batch's pages records and buffer, lent to the page workers for the duration of one
/// concurrentPerform: each worker copies into, and reads, only its own records' ranges.
private struct UncheckedBox: @unchecked Sendable {
    let pages: [PendingPages]
    let buffer: IOBuffer
}
