// The save side of the stream format as a pipeline: the session thread reads device state
// straight into pool buffers (the space this sink lends), and hands a buffer of records on
// only when it is full, megabytes at a time (a cross-core wake-up costs 50-100 µs here); a
// writer thread per channel seals the records and writes them. The checksum is off the read's
// critical path and no byte of device state is copied.
import VFIOBuffers
import VFIOCore
import VFIOStream

public struct PipelineOptions: Sendable, Hashable {
    /// Bytes per pool buffer: one hand-off. Several chunks fit in one.
    public var bufferSize: Int
    /// Pool buffers in all; the producer waits when every one is in flight.
    public var bufferCount: Int
    /// NUMA node of the devices: buffers and writer threads go there (nil: no preference).
    public var node: Int?
    /// Lock the pool in memory (falls back, saying so, when RLIMIT_MEMLOCK is too small).
    public var lockMemory: Bool

    public init(bufferSize: Int = 8 << 20, bufferCount: Int = 6, node: Int? = nil, lockMemory: Bool = true) {
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
    private var current: [Batch?]
    private var finished = false

    /// Starts a pipeline writing the stream `header` describes into `sinks` (one channel per
    /// sink; only one is supported until channel streams exist in the format).
    public init(header: StreamHeader, to sinks: [any ByteSink], options: PipelineOptions = PipelineOptions()) throws(VFIOError) {
        guard sinks.count == 1 else {
            throw VFIOError(.notSupported, "a stream of \(sinks.count) channels needs stream format channel headers")
        }
        let minimum = StreamFormat.recordHeaderSize + Int(header.maxPayload) + Batch.controlRecordSpace
        guard options.bufferSize >= minimum else {
            throw VFIOError(.invalidArgument, "pipeline buffers of \(options.bufferSize) bytes cannot hold one \(header.maxPayload)-byte chunk")
        }
        guard options.bufferCount >= 2 else { throw VFIOError(.invalidArgument, "a pipeline needs at least 2 buffers") }
        self.header = header
        let pool = BufferPool(count: options.bufferCount, size: options.bufferSize, node: options.node, lock: options.lockMemory)
        self.pool = pool
        var writers: [ChannelWriter] = []
        for (i, sink) in sinks.enumerated() {
            writers.append(try ChannelWriter(index: i, sink: sink, header: header, pool: pool, queueDepth: options.bufferCount, node: options.node))
        }
        self.writers = writers
        current = Array(repeating: nil, count: sinks.count)
        for writer in writers { try writer.start() }
    }

    /// Where the buffers are (the device's node, locked, or why not).
    public var placement: BufferPlacement { pool.placement }

    private func channel(for device: Int) -> Int { device % writers.count }

    /// The channel's current batch with at least `bytes` free, shipping a full one first.
    private func batch(_ c: Int, room bytes: Int) throws(VFIOError) -> Batch {
        if let open = current[c], open.free >= bytes { return open }
        try ship(c)
        let fresh = Batch(buffer: try pool.take())
        current[c] = fresh
        return fresh
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
        let c = channel(for: device)
        let b = try batch(c, room: payloadOffset + maxPayload)
        return BufferSlice(b.buffer, b.used..<b.buffer.capacity)
    }

    public func writeState(_ chunk: StateChunk, from buffer: IOBuffer) throws(VFIOError) {
        let c = channel(for: chunk.device)
        guard var b = current[c], b.buffer === buffer, chunk.payload.lowerBound == b.used + payloadOffset else {
            throw .invalidUse("a chunk was not read into the space the pipeline lent for it")
        }
        b.records.append(.state(device: chunk.device, phase: chunk.phase, start: b.used, length: chunk.payload.count))
        b.used = chunk.payload.upperBound
        current[c] = b
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
        try appendControl(0, length: Batch.progressLength) { .progress(device: device, info: info, start: $0) }
    }

    public func endDevice(_ device: Int) throws(VFIOError) {
        // The digest ties the device's data to its descriptor; it travels on channel 0.
        try appendControl(0, length: Batch.digestLength) { .digest(device: device, start: $0) }
        for c in writers.indices { try appendControl(c, length: Batch.endLength) { .endOfDevice(device: device, start: $0) } }
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

    /// Stops the writers after a failure elsewhere (the session rolls the devices back itself);
    /// returns once every writer thread has ended. Safe to call more than once.
    public func cancel(_ error: VFIOError) {
        finished = true
        for writer in writers { writer.queue.close(error) }
        pool.close(error)
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
