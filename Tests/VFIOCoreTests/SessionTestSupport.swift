import VFIOBuffers
@testable import VFIOCore
import VFIOStream

/// A sink that keeps what a save produced, and can fail at its Nth chunk.
final class RecordingSink: SaveSink {
    let payloadOffset: Int
    var chunks: [(chunk: StateChunk, bytes: [UInt8])] = []
    var progress: [(device: Int, info: PreCopyInfo)] = []
    var endedDevices: [Int] = []
    var ended = false
    var failAtChunk: Int?

    init(payloadOffset: Int = 32) { self.payloadOffset = payloadOffset }

    func writeState(_ chunk: StateChunk, from buffer: IOBuffer) throws(VFIOError) {
        if let failAtChunk, chunks.count + 1 == failAtChunk {
            throw VFIOError(.resourceExhausted, "failed to write the stream", device: "sink", operation: "write", errno: .noSpace)
        }
        chunks.append((chunk, buffer.bytes(chunk.payload)))
    }
    func writeProgress(device: Int, info: PreCopyInfo) throws(VFIOError) { progress.append((device, info)) }
    func endDevice(_ device: Int) throws(VFIOError) { endedDevices.append(device) }
    func endStream() throws(VFIOError) { ended = true }

    func bytes(of device: Int) -> [UInt8] { chunks.filter { $0.chunk.device == device }.flatMap(\.bytes) }
}

/// Deterministic bytes for scripted device state.
func pattern(_ count: Int, seed: UInt8) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) }
}
