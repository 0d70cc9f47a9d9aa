// The source side of the mini VMM: its own RAM rounds between bounded device pre-copy
// iterations, device state multiplexed into its own frames, then the stop: quiesce, stop-copy,
// the devices' final state, the last RAM, and the sources left stopped for the target to take over.
import Foundation
import VFIOMigration

/// Hands the engine's device-state chunks to the VMM's own stream.
final class FrameSink: SaveSink {
    let payloadOffset = 0
    let socket: FileHandle
    init(_ socket: FileHandle) { self.socket = socket }

    func writeState(_ chunk: StateChunk, from buffer: IOBuffer) throws(VFIOError) {
        try send(Frame(kind: .deviceState, index: UInt32(chunk.device), payload: Data(buffer.bytes(chunk.payload))))
    }
    func writeProgress(device: Int, info: PreCopyInfo) throws(VFIOError) {}
    func endDevice(_ device: Int) throws(VFIOError) { try send(Frame(kind: .deviceEnd, index: UInt32(device), payload: Data())) }
    func endStream() throws(VFIOError) {}

    func send(_ frame: Frame) throws(VFIOError) {
        do {
            try socket.send(frame)
        } catch {
            throw VFIOError(.ioFailure, "the VMM's migration socket failed: \(error)")
        }
    }
}

struct SourceVMM {
    let devices: [VFIODevice]
    let ram: GuestRAM
    let sink: FrameSink
    /// Called between rounds: the guest keeps running and dirtying.
    let runGuest: (_ round: Int) -> Void

    func migrate() throws(VFIOError) -> SaveReport {
        let session = try SaveSession(devices: devices, options: SaveOptions(chunkSize: 256 << 10))
        try session.setup()
        var round = 0
        while true {
            round += 1
            let pages = ram.harvest()
            for page in pages { try sink.send(Frame(kind: .ramPage, index: UInt32(page), payload: ram.pages[page])) }
            runGuest(round)
            var deviceBytes: UInt64 = 0
            for i in devices.indices {
                deviceBytes += try session.iterate(device: i, byteBudget: 512 << 10, into: sink).bytes
            }
            let pending = try session.pendingExact()
            let devicePending = pending.reduce(0) { $0 + $1.initialBytes + $1.dirtyBytes }
            print("round \(round): \(pages.count) RAM pages and \(deviceBytes >> 10) KiB of device state sent; "
                  + "\(ram.dirty.count) pages dirty, \(devicePending >> 10) KiB of device state pending")
            // The VMM's own convergence rule: its RAM and the devices' pending state both small.
            if ram.dirty.count <= 8 && pending.allSatisfy({ $0.initialBytes == 0 && $0.dirtyBytes < 256 << 10 }) { break }
            if round == 12 {
                print("round limit reached; stopping anyway")
                break
            }
        }
        // Stop the guest: from here on nothing dirties RAM or device state.
        try sink.send(Frame(kind: .stopped, index: 0, payload: Data()))
        try session.quiesce()
        try session.stop()
        try session.complete(into: sink)
        let last = ram.harvest()
        for page in last { try sink.send(Frame(kind: .ramPage, index: UInt32(page), payload: ram.pages[page])) }
        try sink.send(Frame(kind: .lastRAM, index: UInt32(last.count), payload: Data()))
        try session.finish(leaving: .stopped)
        return session.report
    }
}
