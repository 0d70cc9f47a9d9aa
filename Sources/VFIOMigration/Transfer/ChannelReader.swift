// One channel of an incoming migration: a thread that reads exactly what the decoder asks for
// into one buffer (a record header, then its payload once its length passed the limit) and
// hands device state to the reassembler. Its memory is that one buffer, whatever the sender
// announces: a header whose maxPayload is above the receiver's limit is refused before any
// record is read.
import Foundation
import VFIOBuffers
import VFIOCore
import VFIOStream
import VFIOSyscalls

/// What one receiving channel read, and how long it waited for its turn.
public struct ReceiveChannelMetrics: Sendable, Hashable, Codable {
    public var channel: Int
    public var source: String
    /// Bytes read, header included.
    public var bytes: UInt64 = 0
    public var stateBytes: UInt64 = 0
    /// Payload bytes of pages records (run tables and page data).
    public var pageBytes: UInt64 = 0
    public var records: UInt64 = 0
    /// Time waiting for another channel's chunk of the same device to be written first.
    public var waitedForTurn: Duration = .zero
    public var elapsed: Duration = .zero
    public var boundToNode: Int?
    public var buffer: BufferPlacement?

    public var throughput: Double { elapsed.seconds > 0 ? Double(bytes) / elapsed.seconds : 0 }
}

/// Unchecked: it holds a byte source and a buffer, neither Sendable, and its vars are confined:
/// the creating thread reads the header and calls `start`, which sets `buffer` and `memory`
/// before the reader thread exists (Thread.start orders them); from then on only that thread
/// touches the decoder, the buffer and `metrics`, which others read after `join` (the
/// semaphore orders them). `started` and `joined` belong to the creating thread. Other
/// threads only call the source's thread-safe `interrupt()`.
final class ChannelReader: @unchecked Sendable {
    let source: any ByteSource
    let header: StreamHeader
    private var decoder: StreamDecoder
    private let headerLength: Int
    private var buffer: IOBuffer?
    private let done = DispatchSemaphore(value: 0)
    private var started = false
    private var joined = false
    private(set) var metrics: ReceiveChannelMetrics

    /// Reads and checks the stream header of `source` (on the calling thread).
    init(source: any ByteSource, limits: StreamLimits) throws(VFIOError) {
        self.source = source
        var decoder = StreamDecoder(limits: limits)
        (header, headerLength) = try StreamHeaderRead.read(from: source, into: &decoder)
        self.decoder = decoder
        metrics = ReceiveChannelMetrics(channel: Int(header.channel?.index ?? 0), source: source.name)
        metrics.bytes = UInt64(headerLength)
    }

    var index: Int { Int(header.channel?.index ?? 0) }

    /// Where this channel's pages records go (the loader takes writes of disjoint pages from
    /// several channels at once; a page always travels on the same channel).
    private var memory: GuestMemoryLoader?

    /// Starts the thread; its buffer (one record) comes from `pool` on the receiver's node.
    func start(into reassembler: Reassembler, pool: BufferPool, node: Int?, memory: GuestMemoryLoader?) throws(VFIOError) {
        let buffer = try pool.take()
        self.buffer = buffer
        self.memory = memory
        metrics.buffer = pool.placement
        let name = ThreadNames.name("rx\(index)", header.migrationID)
        let thread = Thread { [self] in
            ThreadNames.nameCurrent(name)
            run(reassembler, node)
        }
        started = true
        thread.start()
    }

    func join() {
        guard started && !joined else { return }
        done.wait()
        joined = true
    }

    private func run(_ reassembler: Reassembler, _ node: Int?) {
        defer { done.signal() }
        guard let buffer else { preconditionFailure("a channel reader runs with the buffer start gave it") }
        if let node { metrics.boundToNode = NUMAPlacement.bindCurrentThread(toNode: node) ? node : nil }
        let clock = ContinuousClock()
        let start = clock.now
        do throws(VFIOError) {
            try readRecords(reassembler, buffer)
            reassembler.channelFinished()
        } catch {
            reassembler.fail(error)
        }
        metrics.elapsed = clock.now - start
    }

    private func readRecords(_ reassembler: Reassembler, _ buffer: IOBuffer) throws(VFIOError) {
        let headerSize = StreamFormat.recordHeaderSize
        while true {
            let got = try source.readFully(into: buffer, 0..<headerSize)
            do {
                if got < headerSize { try decoder.endOfInput(available: got) }
                let record = try decoder.decodeRecordHeader(from: buffer, at: 0)
                if record.type == .pages {
                    guard let memory else {
                        throw VFIOError(.streamIncompatible, "the stream carries guest memory pages and this receiver was given no memory", device: source.name)
                    }
                    try PagesRecordReader.read(record, decoder: &decoder, source: source, buffer: buffer, memory: memory, checksums: header.hasRecordChecksums)
                    metrics.bytes += UInt64(headerSize) + UInt64(record.payloadLength)
                    metrics.records += 1
                    metrics.pageBytes += UInt64(record.payloadLength)
                    continue
                }
                let end = headerSize + Int(record.payloadLength)
                let payload = try source.readFully(into: buffer, headerSize..<end)
                if payload < Int(record.payloadLength) { try decoder.endOfInput(available: payload) }
                metrics.bytes += UInt64(end)
                metrics.records += 1
                switch try decoder.decodePayload(in: buffer, range: headerSize..<end) {
                case .deviceState(let chunk):
                    metrics.stateBytes += UInt64(chunk.length)
                    metrics.waitedForTurn += try reassembler.deliver(
                        device: chunk.device, offset: chunk.offset, buffer: buffer, range: headerSize..<end, channel: index)
                case .preCopyProgress(let p):
                    reassembler.progress(device: p.device, offset: p.offset, initialBytes: p.initialBytes)
                case .deviceDigest(let digest):
                    if !digest.dataVerified { reassembler.digest(digest.device, dataCRC: digest.dataCRC) }
                case .endOfDevice(let totals):
                    // The record's offset is the device's length over every channel.
                    try reassembler.endOfDevice(totals.device, total: record.offset, channel: index)
                case .endOfStream:
                    let trailing = try source.read(into: buffer, 0..<1)
                    try decoder.endOfInput(available: trailing)
                    return
                case .skipped:
                    continue
                case .pages:
                    preconditionFailure("pages records are read by PagesRecordReader")
                }
            } catch {
                throw StreamInput.classify(error, source.name)
            }
        }
    }
}
