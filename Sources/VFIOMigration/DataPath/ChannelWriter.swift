// One channel of a pipelined stream: a thread that takes filled batches, seals their records
// with the channel's own encoder (sequence numbers and CRC32C, computed here, off the reading
// thread's critical path), writes each batch with one call, and gives the buffer back.
import Foundation
import VFIOBuffers
import VFIOCore
import VFIOStream
import VFIOSyscalls

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
    // Written by the writer thread only; read after `join`.
    private(set) var metrics: ChannelMetrics

    init(index: Int, sink: any ByteSink, header: StreamHeader, pool: BufferPool, queueDepth: Int, node: Int?) throws(VFIOError) {
        self.index = index
        self.sink = sink
        self.pool = pool
        self.node = node
        self.queue = HandoffQueue(capacity: queueDepth)
        do { self.encoder = try StreamEncoder(header: header) } catch { throw .invalidUse("stream header: \(error)") }
        self.metrics = ChannelMetrics(channel: index, sink: sink.name)
    }

    /// Writes the header, then starts the thread.
    func start() throws(VFIOError) {
        let bytes: [UInt8]
        do { bytes = try encoder.encodeHeader() } catch { throw .invalidUse("stream header: \(error)") }
        let buffer = IOBuffer(capacity: max(bytes.count, 1))
        buffer.write(bytes, at: 0)
        try sink.write(buffer, 0..<bytes.count)
        metrics.bytes += UInt64(bytes.count)
        let thread = Thread { [self] in run() }
        thread.name = "vfio-channel-\(index)"
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
                do { try seal(batch) } catch { throw VFIOError.invalidUse("stream record: \(error)") }
                try sink.write(batch.buffer, 0..<batch.used)
                metrics.bytes += UInt64(batch.used)
                metrics.batches += 1
                metrics.busy += clock.now - busy
                pool.give(batch.buffer)
            }
            try sink.flush()
        } catch {
            // Wake the producer and the other channels: the pipeline ends with this error.
            queue.close(error)
            pool.close(error)
        }
        metrics.elapsed = clock.now - started
    }

    private func seal(_ batch: Batch) throws(StreamUsageError) {
        for record in batch.records {
            switch record {
            case .state(let device, let phase, let start, let length):
                try encoder.frameDeviceState(device: device, phase: phase, payloadLength: length, in: batch.buffer, at: start)
                metrics.stateBytes += UInt64(length)
            case .progress(let device, let info, let start):
                try encoder.framePreCopyProgress(device: device, initialBytes: info.initialBytes, dirtyBytes: info.dirtyBytes, in: batch.buffer, at: start)
            case .digest(let device, let start):
                try encoder.frameDeviceDigest(device: device, in: batch.buffer, at: start)
            case .endOfDevice(let device, let start):
                try encoder.frameEndOfDevice(device: device, in: batch.buffer, at: start)
            case .endOfStream(let start):
                try encoder.frameEndOfStream(in: batch.buffer, at: start)
            }
            metrics.records += 1
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

    public var throughput: Double { elapsed.seconds > 0 ? Double(bytes) / elapsed.seconds : 0 }
}
