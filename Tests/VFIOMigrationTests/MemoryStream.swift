import VFIOBuffers
import VFIOCore

/// Keeps a save in memory, chunk by chunk, and plays it back as a LoadSource.
final class MemoryStream: SaveSink, LoadSource {
    struct Chunk {
        var device: Int
        var phase: MigrationState
        var offset: UInt64
        var bytes: [UInt8]
    }
    let payloadOffset = 32
    var chunks: [Chunk] = []
    var progress: [(Int, PreCopyInfo)] = []
    var ends: [(device: Int, total: UInt64)] = []
    var ended = false
    let deviceCount: Int

    init(deviceCount: Int) { self.deviceCount = deviceCount }

    func deviceState(device: Int, phase: MigrationState, offset: UInt64, buffer: IOBuffer, payload: Range<Int>) throws(VFIOError) {
        chunks.append(Chunk(device: device, phase: phase, offset: offset, bytes: buffer.bytes(payload)))
    }
    func preCopyProgress(device: Int, info: PreCopyInfo) throws(VFIOError) { progress.append((device, info)) }
    func endOfDevice(device: Int, totalBytes: UInt64, chunks: UInt64) throws(VFIOError) { ends.append((device, totalBytes)) }
    func endOfStream() throws(VFIOError) { ended = true }

    func bytes(of device: Int) -> [UInt8] { chunks.filter { $0.device == device }.flatMap(\.bytes) }

    // Playback
    private var cursor = 0
    private var endCursor = 0
    private var buffer = IOBuffer(capacity: 1 << 20)
    func next() throws(VFIOError) -> LoadEvent {
        if cursor < chunks.count {
            let c = chunks[cursor]
            cursor += 1
            if buffer.capacity < c.bytes.count { buffer = IOBuffer(capacity: c.bytes.count) }
            buffer.write(c.bytes, at: 0)
            return .deviceState(device: c.device, phase: c.phase, offset: c.offset, buffer: buffer, payload: 0..<c.bytes.count)
        }
        if endCursor < ends.count {
            endCursor += 1
            return .endOfDevice(device: ends[endCursor - 1].device, totalBytes: ends[endCursor - 1].total)
        }
        return .endOfStream
    }
}
