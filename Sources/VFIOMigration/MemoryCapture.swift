// A save kept in memory, chunk by chunk, that plays back as a LoadSource: for VMM tests that
// want to inspect or alter raw device state without a stream file in between.
import VFIOBuffers
import VFIOCore
import VFIOStream

public final class MemoryCapture: SaveSink, LoadSource {
    public struct Chunk: Sendable, Equatable {
        public var device: Int
        public var phase: StatePhase
        public var offset: UInt64
        public var bytes: [UInt8]
    }

    public let payloadOffset = 0
    public let deviceCount: Int
    public var chunks: [Chunk] = []
    public struct Progress: Sendable, Hashable {
        public var device: Int
        public var info: PreCopyInfo
    }

    public private(set) var progress: [Progress] = []
    public private(set) var endedDevices: [Int] = []
    public private(set) var isComplete = false

    public init(deviceCount: Int) { self.deviceCount = deviceCount }

    /// Everything device `device` produced, in order.
    public func bytes(of device: Int) -> [UInt8] { chunks.filter { $0.device == device }.flatMap(\.bytes) }

    /// Replaces device `device`'s bytes with `bytes` as one STOP_COPY chunk (for tests that
    /// feed altered or foreign state).
    public func replaceBytes(of device: Int, with bytes: [UInt8]) {
        chunks.removeAll { $0.device == device }
        chunks.append(Chunk(device: device, phase: .stopCopy, offset: 0, bytes: bytes))
    }

    // SaveSink
    public func writeState(_ chunk: StateChunk, from buffer: IOBuffer) throws(VFIOError) {
        chunks.append(Chunk(device: chunk.device, phase: chunk.phase, offset: chunk.offset, bytes: buffer.bytes(chunk.payload)))
    }
    public func writeProgress(device: Int, info: PreCopyInfo) throws(VFIOError) { progress.append(Progress(device: device, info: info)) }
    public func endDevice(_ device: Int) throws(VFIOError) { endedDevices.append(device) }
    public func endStream() throws(VFIOError) { isComplete = true }

    // LoadSource: plays the capture from the start each time `rewind()` is called.
    private var cursor = 0
    private var endCursor = 0
    private var playback: IOBuffer?

    public func rewind() {
        cursor = 0
        endCursor = 0
    }

    public func next() throws(VFIOError) -> LoadEvent {
        if cursor < chunks.count {
            let chunk = chunks[cursor]
            cursor += 1
            let capacity = max(chunk.bytes.count, 1)
            if playback == nil || playback!.capacity < capacity { playback = IOBuffer(capacity: capacity) }
            playback!.write(chunk.bytes, at: 0)
            return .state(StateChunk(device: chunk.device, phase: chunk.phase, offset: chunk.offset, payload: 0..<chunk.bytes.count), playback!)
        }
        if endCursor < endedDevices.count {
            let device = endedDevices[endCursor]
            endCursor += 1
            return .endOfDevice(device: device, totalBytes: UInt64(bytes(of: device).count))
        }
        return .endOfStream
    }
}
