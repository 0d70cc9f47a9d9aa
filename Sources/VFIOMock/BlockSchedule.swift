// The order and byte accounting of a save stream in the mock vendor format, shared by the
// piped (generated) and the direct (fast) save sessions: header, every block once (the
// initial image), blocks that changed after they were scheduled (dirty data), and once
// STOP_COPY is reached the end record. A REINIT restarts it: the header and every block again.
// Pieces are scheduled whole; the caller owns the bytes between "scheduled" and "consumed".

struct BlockSchedule {
    enum Piece {
        case header(seed: UInt64)
        /// `key` is the block's generator key at the version it was scheduled with.
        case block(index: Int, version: UInt64, key: UInt64)
        case end(records: UInt64, digest: UInt64)
    }

    /// Bytes of every piece handed out so far.
    private(set) var scheduledBytes: UInt64 = 0
    /// Stream offset where the current initial image ends (it moves on REINIT).
    private(set) var initialEnd: UInt64
    private var headerScheduled = false
    private var cursor = 0
    private var dirtyQueue: [Int] = []
    private var dirtyHead = 0
    private var dirtySet: Set<Int> = []
    private var dirtyBytes: UInt64 = 0
    private(set) var endScheduled = false
    /// Block records since the last header (the end record counts them).
    private var blockRecords: UInt64 = 0

    init(image: DeviceStateImage) {
        initialEnd = Self.initialBytes(image)
    }

    static func initialBytes(_ image: DeviceStateImage) -> UInt64 {
        UInt64(MockStateFormat.headerBytes) + recordBytes(image, blocks: 0..<image.blockCount)
    }

    static func recordBytes(_ image: DeviceStateImage, block: Int) -> UInt64 {
        UInt64(MockStateFormat.recordHeaderBytes + MockStateFormat.paddedLength(image.blockLength(block)))
    }

    static func recordBytes(_ image: DeviceStateImage, blocks: Range<Int>) -> UInt64 {
        guard !blocks.isEmpty else { return 0 }
        let full = UInt64(MockStateFormat.recordHeaderBytes + image.blockSize)
        let last = image.blockCount - 1
        var total = UInt64(blocks.count) * full
        if blocks.contains(last) { total -= full - recordBytes(image, block: last) }
        return total
    }

    /// The whole stream a STOP_COPY from scratch produces.
    static func completeStreamBytes(_ image: DeviceStateImage) -> UInt64 {
        initialBytes(image) + UInt64(MockStateFormat.recordHeaderBytes)
    }

    // MARK: what the caller sees

    /// Bytes still to come, from `consumed`, before the stream is momentarily (PRE_COPY) or
    /// finally (STOP_COPY) drained.
    func pendingBytes(consumed: UInt64, image: DeviceStateImage, stopCopy: Bool) -> UInt64 {
        var pending = scheduledBytes - consumed + dirtyBytes
        if !headerScheduled { pending += UInt64(MockStateFormat.headerBytes) }
        pending += Self.recordBytes(image, blocks: cursor..<image.blockCount)
        if stopCopy && !endScheduled { pending += UInt64(MockStateFormat.recordHeaderBytes) }
        return pending
    }

    /// VFIO_MIG_GET_PRECOPY_INFO's two numbers.
    func precopyInfo(consumed: UInt64, image: DeviceStateImage, stopCopy: Bool) -> (initial: UInt64, dirty: UInt64) {
        let pending = pendingBytes(consumed: consumed, image: image, stopCopy: stopCopy)
        let initial = min(pending, initialEnd > consumed ? initialEnd - consumed : 0)
        return (initial, pending - initial)
    }

    // MARK: changes

    /// A block changed while running: resend it if its current copy was already scheduled.
    /// Returns true when it was queued.
    mutating func blockChanged(_ block: Int, image: DeviceStateImage) -> Bool {
        guard block < cursor, dirtySet.insert(block).inserted else { return false }
        dirtyQueue.append(block)
        dirtyBytes += Self.recordBytes(image, block: block)
        return true
    }

    /// REINIT: new initial data follows what was already scheduled (`image` is the new state).
    mutating func restart(image: DeviceStateImage) {
        headerScheduled = false
        cursor = 0
        dirtyQueue.removeAll()
        dirtyHead = 0
        dirtySet.removeAll()
        dirtyBytes = 0
        blockRecords = 0
        initialEnd = scheduledBytes + Self.initialBytes(image)
    }

    // MARK: scheduling

    /// Pieces totalling at most `maxBytes` (always at least one when any is due).
    mutating func take(maxBytes: UInt64, image: DeviceStateImage, stopCopy: Bool) -> [Piece] {
        var pieces: [Piece] = []
        var total: UInt64 = 0
        while let size = nextSize(image: image, stopCopy: stopCopy) {
            if !pieces.isEmpty && total + size > maxBytes { break }
            pieces.append(takeNext(image: image, stopCopy: stopCopy))
            total += size
        }
        return pieces
    }

    /// The next piece alone, or nil when nothing is due.
    mutating func takeOne(image: DeviceStateImage, stopCopy: Bool) -> Piece? {
        guard nextSize(image: image, stopCopy: stopCopy) != nil else { return nil }
        return takeNext(image: image, stopCopy: stopCopy)
    }

    private func nextSize(image: DeviceStateImage, stopCopy: Bool) -> UInt64? {
        if !headerScheduled { return UInt64(MockStateFormat.headerBytes) }
        if cursor < image.blockCount { return Self.recordBytes(image, block: cursor) }
        if dirtyHead < dirtyQueue.count { return Self.recordBytes(image, block: dirtyQueue[dirtyHead]) }
        if stopCopy && !endScheduled { return UInt64(MockStateFormat.recordHeaderBytes) }
        return nil
    }

    private mutating func takeNext(image: DeviceStateImage, stopCopy: Bool) -> Piece {
        if !headerScheduled {
            headerScheduled = true
            scheduledBytes += UInt64(MockStateFormat.headerBytes)
            return .header(seed: image.contentSeed)
        }
        if cursor < image.blockCount {
            let block = cursor
            cursor += 1
            return scheduleBlock(block, image: image)
        }
        if dirtyHead < dirtyQueue.count {
            let block = dirtyQueue[dirtyHead]
            dirtyHead += 1
            dirtySet.remove(block)
            dirtyBytes -= Self.recordBytes(image, block: block)
            if dirtyHead == dirtyQueue.count {
                dirtyQueue.removeAll(keepingCapacity: true)
                dirtyHead = 0
            }
            return scheduleBlock(block, image: image)
        }
        precondition(stopCopy && !endScheduled, "takeNext with nothing due")
        endScheduled = true
        scheduledBytes += UInt64(MockStateFormat.recordHeaderBytes)
        return .end(records: blockRecords, digest: image.digest)
    }

    private mutating func scheduleBlock(_ block: Int, image: DeviceStateImage) -> Piece {
        blockRecords += 1
        scheduledBytes += Self.recordBytes(image, block: block)
        let version = image.version(of: block)
        return .block(index: block, version: version, key: image.key(of: block, version: version))
    }
}
