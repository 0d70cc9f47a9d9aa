// The load side of a migration over several channels (connections or files): one reader
// thread per channel, a reassembler that writes every device's data in order, and the checks
// no single channel can make (each device's length agreed by every channel, its reassembled
// data against its digest).
import VFIOBuffers
import VFIOCore
import VFIOStream

/// What a parallel load read, per channel, and where its buffers were.
public struct ParallelLoadMetrics: Sendable, Hashable, Codable {
    public var channels: [ReceiveChannelMetrics]
    public var buffers: BufferPlacement
}

public final class ParallelStreamInput {
    /// Channel 0's header.
    public let header: StreamHeader
    let readers: [ChannelReader]

    /// Reads every source's header; together they must be the channels 0..<n of one stream
    /// (same devices, regions and migration id, each index once). `migrationID`, when given,
    /// is the id every channel must carry.
    public convenience init(sources: [any ByteSource], limits: StreamLimits = .default, migrationID: MigrationID? = nil) throws(VFIOError) {
        guard !sources.isEmpty else { throw .invalidUse("a load needs at least one channel") }
        var readers: [ChannelReader] = []
        for source in sources { readers.append(try ChannelReader(source: source, limits: limits)) }
        try self.init(readers: readers, migrationID: migrationID)
    }

    init(readers unordered: [ChannelReader], migrationID: MigrationID?) throws(VFIOError) {
        let readers = unordered.sorted { $0.index < $1.index }
        let first = readers[0].header
        for reader in readers {
            if let problem = Self.mismatch(reader.header, first, channels: readers.count, expectedID: migrationID) {
                throw VFIOError(.streamIncompatible, "\(reader.source.name) is not a channel of this migration: \(problem)", device: reader.source.name)
            }
        }
        for (i, reader) in readers.enumerated() where reader.index != i {
            throw VFIOError(.streamIncompatible, "two sources are channel \(reader.index) of the stream (channel \(i) is missing)", device: reader.source.name)
        }
        header = first
        self.readers = readers
    }

    /// Why `header` cannot be a channel of the migration `reference` is channel of, or nil.
    static func mismatch(_ header: StreamHeader, _ reference: StreamHeader, channels: Int, expectedID: MigrationID?) -> String? {
        let count = Int(header.channel?.count ?? 1)
        if count != channels { return "its header says \(count) channel(s), \(channels) arrived" }
        if let expectedID, header.migrationID != expectedID {
            return "its migration id is \(header.migrationID.map { "\($0)" } ?? "absent"), this migration's is \(expectedID)"
        }
        if header.migrationID != reference.migrationID { return "its migration id differs from channel 0's" }
        if header.devices != reference.devices { return "its device descriptors differ from the other channels'" }
        if header.regions != reference.regions { return "its memory regions differ from the other channels'" }
        if header.flags != reference.flags || header.maxPayload != reference.maxPayload {
            return "its header flags or maxPayload differ from the other channels'"
        }
        return nil
    }

    public var channelCount: Int { readers.count }

    /// Runs every channel into `session` (in RESUMING), then checks and ends every device.
    /// Waits for all channel threads whatever happens; on failure the first error is thrown
    /// (the caller aborts the session), every source having been interrupted.
    @discardableResult
    /// With `memory`, pages records are written into it (its regions checked against the
    /// stream's first, before any page is written); a stream with pages and no memory fails.
    public func load(
        into session: LoadSession, node: Int? = nil, lockMemory: Bool = true, memory: GuestMemoryLoader? = nil
    ) throws(VFIOError) -> ParallelLoadMetrics {
        try load(into: session, node: node, lockMemory: lockMemory, memory: memory, sendAck: { _ in })
    }

    func load(
        into session: LoadSession, node: Int?, lockMemory: Bool, memory: GuestMemoryLoader?,
        sendAck: @escaping @Sendable (Reassembler.Ack) -> Void
    ) throws(VFIOError) -> ParallelLoadMetrics {
        if let memory { try memory.accept(regions: header.regions, source: readers[0].source.name) }
        guard header.devices.count == session.drivers.count else {
            throw VFIOError(
                .streamIncompatible, "the stream carries \(header.devices.count) device(s) but \(session.drivers.count) target device(s) were given")
        }
        let withChecksums = !HeaderFlags(rawValue: header.flags).contains(.noRecordChecksums)
        let readers = self.readers
        let reassembler = Reassembler(
            header: header, channels: readers.count, load: session, checksData: readers.count > 1 && withChecksums,
            sendAck: sendAck,
            onFailure: { _ in for reader in readers { (reader.source as? any InterruptibleByteSource)?.interrupt() } })
        let pool = BufferPool(count: readers.count, size: StreamFormat.recordHeaderSize + Int(header.maxPayload), node: node, lock: lockMemory)
        var startFailure: VFIOError?
        for reader in readers {
            do {
                try reader.start(into: reassembler, pool: pool, node: node, memory: memory)
            } catch {
                startFailure = error
                reassembler.fail(error)
                break
            }
        }
        for reader in readers { reader.join() }
        if let startFailure { throw startFailure }
        let totals = try reassembler.finalTotals()
        for (d, total) in totals.enumerated() { try session.endDevice(d, totalBytes: total) }
        return ParallelLoadMetrics(channels: readers.map(\.metrics), buffers: pool.placement)
    }
}
