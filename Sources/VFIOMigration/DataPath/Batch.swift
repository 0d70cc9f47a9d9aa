// What one hand-off carries: a pool buffer filled with records laid end to end (each 32-byte
// header slot followed by its payload, read straight into place), and what each record is, so
// the channel's writer can seal them in order and write them with one call.
import VFIOBuffers
import VFIOCore
import VFIOStream

enum PendingRecord {
    /// A device state chunk whose payload lies right after its header slot at `start`;
    /// `offset` is its position in the device's data stream.
    case state(device: Int, phase: StatePhase, offset: UInt64, start: Int, length: Int)
    case progress(device: Int, info: PreCopyInfo, offset: UInt64, start: Int)
    case digest(device: Int, start: Int)
    case endOfDevice(device: Int, total: UInt64, start: Int)
    case endOfStream(start: Int)
    /// A pages record the writer builds: `control` bytes at `start` for its header and table,
    /// then `bounce` bytes for a copy of the pages (0: sent straight from guest memory).
    case pages(PendingPages)
}

struct PendingPages {
    let region: GuestMemoryRegion
    let index: Int
    let runs: [DirtyRun]
    let phase: StatePhase
    let round: UInt64
    let start: Int
    let control: Int
    let bounce: Int
}

struct Batch {
    let buffer: IOBuffer
    var records: [PendingRecord] = []
    /// Bytes of the buffer in use, from 0.
    var used = 0

    init(buffer: IOBuffer) {
        self.buffer = buffer
        records.reserveCapacity(64)
    }

    var free: Int { buffer.capacity - used }

    /// Room a batch keeps for control records after the last chunk.
    static let controlRecordSpace = 64
    /// Lengths of the control records (header and fixed payload), docs/stream-format.md.
    static let progressLength = StreamFormat.recordHeaderSize + 16
    static let endLength = StreamFormat.recordHeaderSize + 24
    static let digestLength = StreamFormat.recordHeaderSize + 8
}
