// A fixed set of large I/O buffers, allocated once on the device's NUMA node and locked in
// memory where the node, libnuma and RLIMIT_MEMLOCK allow it; otherwise ordinary aligned
// buffers, with the reason said once (`placement.note`). Where the pages really are is asked
// of the kernel, not assumed.
import VFIOBuffers
import VFIOCore
import VFIOSyscalls

/// Where a pool's buffers are, as asked for and as the kernel reports it.
public struct BufferPlacement: Sendable, Hashable, Codable {
    /// The node the buffers were meant for (the device's), nil for no preference.
    public var requestedNode: Int?
    /// The node libnuma bound them to, nil when not bound.
    public var boundNode: Int?
    public var locked: Bool
    /// node -> pages, from move_pages(2) in query mode; nil when the kernel cannot say.
    public var residentPages: [Int: Int]?
    /// What could not be done and why (no NUMA, node out of range, mlock refused), once.
    public var note: String?
    public var bufferCount: Int
    public var bufferSize: Int
}

final class BufferPool: @unchecked Sendable {
    let bufferSize: Int
    let placement: BufferPlacement
    private let free: HandoffQueue<IOBuffer>

    /// `count` buffers of `size` bytes on `node` (nil: no preference), locked when `lock`.
    init(count: Int, size: Int, node: Int?, lock: Bool = true) {
        precondition(count > 0 && size > 0, "a pool holds at least one non-empty buffer")
        bufferSize = size
        free = HandoffQueue(capacity: count)
        var notes: [String] = []
        var locked = true
        var bound: Int? = node
        var resident: [Int: Int]? = [:]
        for _ in 0..<count {
            let placed = NUMAPlacement.allocate(capacity: size, node: node, lock: lock)
            if let note = placed.note, !notes.contains(note) { notes.append(note) }
            locked = locked && placed.locked
            if placed.node != node { bound = nil }
            if let pages = NUMAPlacement.residentNodes(of: placed.buffer), resident != nil {
                for (n, c) in pages { resident![n, default: 0] += c }
            } else {
                resident = nil
            }
            // Cannot fail: the queue has room for every buffer and is neither closed nor finished.
            try? free.put(placed.buffer)
        }
        placement = BufferPlacement(
            requestedNode: node, boundNode: bound, locked: locked, residentPages: resident,
            note: notes.isEmpty ? nil : notes.joined(separator: "; "), bufferCount: count, bufferSize: size)
    }

    /// A free buffer, waiting for one; throws the pipeline's error once it was closed.
    func take() throws(VFIOError) -> IOBuffer {
        guard let buffer = try free.take() else { preconditionFailure("the free list of a pool is never finished") }
        buffer.count = 0
        return buffer
    }

    /// A free buffer if one is there now.
    func takeIfAvailable() throws(VFIOError) -> IOBuffer? {
        guard let buffer = try free.takeIfAvailable() else { return nil }
        buffer.count = 0
        return buffer
    }

    /// Gives a buffer back.
    func give(_ buffer: IOBuffer) {
        // A closed pool drops what comes back; the pipeline is ending anyway.
        try? free.put(buffer)
    }

    /// Wakes whoever waits for a buffer with `error`.
    func close(_ error: VFIOError) { free.close(error) }

    /// Time producers waited for a free buffer (the consumers were behind).
    var waited: Duration { free.consumerWait }
}
