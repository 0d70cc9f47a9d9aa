// The save side of the stream format as a pipeline: the session thread reads device state
// straight into pool buffers (the space this sink lends), and hands a buffer of records on
// only when it is full, megabytes at a time (a cross-core wake-up costs 50-100 µs here); a
// writer thread per channel seals the records and writes them. The checksum is off the read's
// critical path and no byte of device state is copied.
import VFIOBuffers
import VFIOCore
import VFIOStream

public struct PipelineOptions: Sendable, Hashable {
    /// Bytes per pool buffer: one hand-off. The default holds one 1 MiB chunk and its
    /// records (the one-call operations grow it to their chunk size): a pool that stays in
    /// the CPU's caches moved 1.2-2x the bytes of one of 6 x 8 MiB (`vfio-migrate bench`).
    public var bufferSize: Int
    /// Pool buffers in all; the producer waits when every one is in flight.
    public var bufferCount: Int
    /// NUMA node of the devices: buffers and writer threads go there (nil: no preference).
    public var node: Int?
    /// Lock the pool in memory (falls back, saying so, when RLIMIT_MEMLOCK is too small).
    public var lockMemory: Bool

    public init(bufferSize: Int = (1 << 20) + 4096, bufferCount: Int = 4, node: Int? = nil, lockMemory: Bool = true) {
        self.bufferSize = bufferSize
        self.bufferCount = bufferCount
        self.node = node
        self.lockMemory = lockMemory
    }
}

/// What a pipelined save moved, per channel, and where its buffers were.
public struct PipelineMetrics: Sendable, Hashable, Codable {
    public var channels: [ChannelMetrics]
    public var buffers: BufferPlacement
    /// Time the reading side waited for a free buffer (the writers were behind).
    public var readerWaitedForBuffers: Duration
}

public final class PipelinedStreamOutput: SaveSink {
    public let payloadOffset = StreamFormat.recordHeaderSize
    public let header: StreamHeader
    private let pool: BufferPool
    private let writers: [ChannelWriter]
    private let ledger: DeviceLedger?
    private var current: [Batch?]
    private var finished = false
    /// Per device: its channels, chunks routed so far, and bytes so far.
    private var routes: [[Int]]
    private var chunkCounts: [Int]
    private var totals: [UInt64]
    /// Copy pre-copy pages before checksumming them (see StreamOutput.copiesLivePages).
    public var copiesLivePages = true

    /// Starts a pipeline writing the stream `header` describes into `sinks`, one channel per
    /// sink. With several, each channel is a stream of its own (header with its channel index,
    /// own sequence numbers and checksums); every device gets at least one channel, and a
    /// device with several has its chunks dealt round-robin across them.
    public init(header: StreamHeader, to sinks: [any ByteSink], options: PipelineOptions = PipelineOptions()) throws(VFIOError) {
        guard !sinks.isEmpty, sinks.count <= Int(UInt16.max) else { throw VFIOError(.invalidArgument, "a stream needs 1...65535 channels, not \(sinks.count)") }
        guard header.devices.count > 0 || sinks.count == 1 else { throw VFIOError(.invalidArgument, "several channels need at least one device") }
        let minimum = StreamFormat.recordHeaderSize + Int(header.maxPayload) + Batch.controlRecordSpace
        guard options.bufferSize >= minimum else {
            throw VFIOError(.invalidArgument, "pipeline buffers of \(options.bufferSize) bytes cannot hold one \(header.maxPayload)-byte chunk")
        }
        guard options.bufferCount >= 2 else { throw VFIOError(.invalidArgument, "a pipeline needs at least 2 buffers") }
        self.header = header
        let pool = BufferPool(count: options.bufferCount, size: options.bufferSize, node: options.node, lock: options.lockMemory)
        self.pool = pool
        let deviceCount = header.devices.count
        let ledger = sinks.count > 1 ? DeviceLedger(deviceCount: deviceCount) : nil
        self.ledger = ledger
        var writers: [ChannelWriter] = []
        for (i, sink) in sinks.enumerated() {
            var channelHeader = header
            if sinks.count > 1 {
                channelHeader = StreamHeader(
                    flags: header.flags, creationTimeNanoseconds: header.creationTimeNanoseconds, maxPayload: header.maxPayload,
                    host: header.host, writer: header.writer, devices: header.devices, migrationID: header.migrationID,
                    channel: StreamChannel(index: UInt16(i), count: UInt16(sinks.count)), regions: header.regions)
            }
            writers.append(try ChannelWriter(
                index: i, sink: sink, header: channelHeader, pool: pool, queueDepth: options.bufferCount, node: options.node, ledger: ledger))
        }
        self.writers = writers
        current = Array(repeating: nil, count: sinks.count)
        routes = (0..<deviceCount).map { d in
            let mine = Array(stride(from: d % sinks.count, to: sinks.count, by: max(1, deviceCount)))
            return mine.isEmpty ? [d % sinks.count] : mine
        }
        chunkCounts = Array(repeating: 0, count: deviceCount)
        totals = Array(repeating: 0, count: deviceCount)
        for writer in writers {
            do {
                try writer.start()
            } catch {
                cancel(error)
                throw error
            }
        }
    }

    /// Per device, the bytes of its data stream handed over so far (the offset its next chunk
    /// and a progress record written now carry).
    public var handedOver: [UInt64] { totals }

    /// Where the buffers are (the device's node, locked, or why not).
    public var placement: BufferPlacement { pool.placement }

    /// The channel device `device`'s next chunk goes to.
    private func channel(for device: Int) -> Int {
        let mine = routes[device]
        return mine[chunkCounts[device] % mine.count]
    }

    /// The channel's current batch with at least `bytes` free, shipping a full one first.
    /// Before waiting for a free buffer every other channel's partial batch is shipped: a
    /// receiver that reassembles a device split across channels may need exactly those
    /// chunks before it reads on, and nothing would send them while this waits.
    private func batch(_ c: Int, room bytes: Int) throws(VFIOError) -> Batch {
        if let open = current[c], open.free >= bytes { return open }
        try ship(c)
        let buffer: IOBuffer
        if let ready = try pool.takeIfAvailable() {
            buffer = ready
        } else {
            for other in writers.indices where other != c { try ship(other) }
            buffer = try pool.take()
        }
        let fresh = Batch(buffer: buffer)
        current[c] = fresh
        return fresh
    }

    /// Ships every partial batch now, so everything handed over so far reaches the channels
    /// (a network migration does this after each round: the target acknowledges the initial
    /// data only once it arrived).
    public func flush() throws(VFIOError) {
        guard !finished else { return }
        for c in writers.indices { try ship(c) }
    }

    private func ship(_ c: Int) throws(VFIOError) {
        guard let full = current[c] else { return }
        current[c] = nil
        if full.records.isEmpty {
            pool.give(full.buffer)
            return
        }
        try writers[c].queue.put(full)
    }

    public func chunkSpace(for device: Int, maxPayload: Int) throws(VFIOError) -> BufferSlice? {
        guard routes.indices.contains(device) else { throw .invalidUse("device index \(device) outside the stream's \(routes.count) devices") }
        let c = channel(for: device)
        let b = try batch(c, room: payloadOffset + maxPayload)
        return BufferSlice(b.buffer, b.used..<b.buffer.capacity)
    }

    public func writeState(_ chunk: StateChunk, from buffer: IOBuffer) throws(VFIOError) {
        guard routes.indices.contains(chunk.device) else { throw .invalidUse("device index \(chunk.device) outside the stream's \(routes.count) devices") }
        let c = channel(for: chunk.device)
        guard var b = current[c], b.buffer === buffer, chunk.payload.lowerBound == b.used + payloadOffset else {
            throw .invalidUse("a chunk was not read into the space the pipeline lent for it")
        }
        guard chunk.offset == totals[chunk.device] else {
            throw .invalidUse("device \(chunk.device)'s chunk at offset \(chunk.offset), expected \(totals[chunk.device])")
        }
        b.records.append(.state(device: chunk.device, phase: chunk.phase, offset: chunk.offset, start: b.used, length: chunk.payload.count))
        b.used = chunk.payload.upperBound
        current[c] = b
        chunkCounts[chunk.device] += 1
        totals[chunk.device] += UInt64(chunk.payload.count)
    }

    /// Reserves a control record of `length` bytes (header and fixed payload), framed later by
    /// the writer; records stay end to end so a batch is written with one call.
    private func appendControl(_ c: Int, length: Int, _ make: (Int) -> PendingRecord) throws(VFIOError) {
        var b = try batch(c, room: length)
        b.records.append(make(b.used))
        b.used += length
        current[c] = b
    }

    public func writeProgress(device: Int, info: PreCopyInfo) throws(VFIOError) {
        guard routes.indices.contains(device) else { throw .invalidUse("device index \(device) outside the stream's \(routes.count) devices") }
        let offset = totals[device]
        try appendControl(0, length: Batch.progressLength) { .progress(device: device, info: info, offset: offset, start: $0) }
    }

    public func endDevice(_ device: Int) throws(VFIOError) {
        guard routes.indices.contains(device) else { throw .invalidUse("device index \(device) outside the stream's \(routes.count) devices") }
        let total = totals[device]
        ledger?.end(device: device, total: total)
        // The digest ties the device's data to its descriptor; it travels on channel 0.
        try appendControl(0, length: Batch.digestLength) { .digest(device: device, start: $0) }
        for c in writers.indices { try appendControl(c, length: Batch.endLength) { .endOfDevice(device: device, total: total, start: $0) } }
    }

    public func endStream() throws(VFIOError) {
        guard !finished else { throw .invalidUse("the stream was already ended") }
        finished = true
        for c in writers.indices {
            try appendControl(c, length: Batch.endLength) { .endOfStream(start: $0) }
            try ship(c)
            writers[c].queue.finish()
        }
        for writer in writers { writer.join() }
        if let failure = writers.lazy.compactMap({ $0.queue.error }).first { throw failure }
    }

    public var carriesMemory: Bool { !header.regions.isEmpty }

    /// Reserves each record's control space (and its copy's, for live pages) in the batch
    /// of the channel its stripe routes to; the writer thread scans, checksums and frames the
    /// pages and writes them straight from guest memory.
    public func writePages(region index: Int, runs: [DirtyRun], phase: StatePhase, round: UInt64, of memory: GuestMemory) throws(VFIOError) {
        let region = try PageRouting.region(index, of: memory, header: header)
        let maxPages = PagePacker.maxPages(pageSize: region.pageSize, maxPayload: header.maxPayload)
        let channels = writers.count
        let copy = copiesLivePages && phase == .preCopy && header.hasRecordChecksums
        for group in PagePacker.records(runs, maxPages: maxPages, stripePages: channels > 1 ? PageRouting.stripePages(region) : nil) {
            let pages = group.reduce(0) { $0 + $1.pageCount }
            let c = channels > 1 ? PageRouting.channel(of: group[0].firstPage, in: region, channels: channels) : 0
            let control = PagePacker.controlSpace(pages: pages)
            let bounce = copy ? pages * Int(region.pageSize) : 0
            var b = try batch(c, room: control + bounce)
            b.records.append(.pages(PendingPages(
                region: region, index: index, runs: group, phase: phase, round: round, start: b.used, control: control, bounce: bounce)))
            b.used += control + bounce
            current[c] = b
        }
    }

    /// Stops the writers after a failure elsewhere (the session rolls the devices back itself);
    /// returns once every writer thread has ended. Safe to call more than once.
    public func cancel(_ error: VFIOError) {
        finished = true
        for writer in writers { writer.queue.close(error) }
        pool.close(error)
        ledger?.close(error)
        for writer in writers { writer.join() }
    }

    deinit {
        // A pipeline dropped before its end (its save failed) must not leave threads behind.
        if !finished { cancel(.invalidUse("the pipeline was dropped before the end of its stream")) }
    }

    /// Per channel and for the pool; complete once `endStream` returned.
    public var metrics: PipelineMetrics {
        PipelineMetrics(channels: writers.map(\.metrics), buffers: pool.placement, readerWaitedForBuffers: pool.waited)
    }
}
