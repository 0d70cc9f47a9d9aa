// I/O buffers placed on a NUMA node through libnuma and locked in memory, so the data path of
// a device reads into memory local to it. Where NUMA or mlock is unavailable the buffer still
// works; `PlacedBuffer.note` says, once, what was not done and why.
import CNuma
#if canImport(Glibc)
import Glibc
#endif
import VFIOBuffers

public struct PlacedBuffer {
    public let buffer: IOBuffer
    /// The node the memory is bound to, or nil when it was not bound.
    public let node: Int?
    public let locked: Bool
    /// What could not be done (no NUMA, node out of range, mlock refused), for one clear message.
    public let note: String?
}

public enum NUMAPlacement {
    /// True when the kernel and libnuma support NUMA policy here.
    public static var isAvailable: Bool { numa_available() >= 0 }

    /// Highest node number (0 on a machine without NUMA).
    public static var maxNode: Int { isAvailable ? Int(numa_max_node()) : 0 }

    /// A page-aligned buffer of `capacity` bytes on `node` (nil or -1: no preference), locked
    /// in memory when `lock` is true and the limit allows it.
    public static func allocate(capacity: Int, node: Int?, lock: Bool = true) -> PlacedBuffer {
        precondition(capacity > 0, "buffer capacity must be positive")
        var notes: [String] = []
        var boundNode: Int?
        var base: UnsafeMutableRawPointer?
        var fromNUMA = false
        if let node, node >= 0 {
            if !isAvailable {
                notes.append("NUMA is not available on this machine; buffer not bound to node \(node)")
            } else if node > maxNode {
                notes.append("node \(node) does not exist (highest is \(maxNode)); buffer not bound")
            } else if let p = numa_alloc_onnode(capacity, Int32(node)) {
                // SAFETY: numa_alloc_onnode returns page-aligned memory of `capacity` bytes, freed with numa_free.
                base = p
                boundNode = node
                fromNUMA = true
            } else {
                notes.append("numa_alloc_onnode(\(capacity), \(node)) failed; buffer not bound")
            }
        }
        if base == nil {
            var p: UnsafeMutableRawPointer?
            // SAFETY: posix_memalign fills `p` with `capacity` bytes aligned to a page, freed with free().
            guard posix_memalign(&p, IOBuffer.alignment, capacity) == 0, let p else {
                preconditionFailure("out of memory allocating a \(capacity)-byte I/O buffer")
            }
            base = p
        }
        guard let base else { preconditionFailure("unreachable: no buffer memory") }
        // SAFETY: `base` points at `capacity` writable bytes we own; touching them faults the pages in on the bound node.
        base.initializeMemory(as: UInt8.self, repeating: 0, count: capacity)
        var locked = false
        if lock {
            // SAFETY: locks exactly the range we own.
            if mlock(base, capacity) == 0 {
                locked = true
            } else {
                notes.append("mlock of \(capacity) bytes refused (\(errno == EPERM || errno == ENOMEM ? "RLIMIT_MEMLOCK too low" : "errno \(errno)")); buffer not locked")
            }
        }
        let wasLocked = locked
        let numaOwned = fromNUMA
        let buffer = IOBuffer(adopting: base, capacity: capacity) { pointer, size in
            // SAFETY: releases exactly what this function allocated and locked, once, from IOBuffer.deinit.
            if wasLocked { munlock(pointer, size) }
            if numaOwned { numa_free(pointer, size) } else { free(pointer) }
        }
        return PlacedBuffer(buffer: buffer, node: boundNode, locked: locked, note: notes.isEmpty ? nil : notes.joined(separator: "; "))
    }
}

extension NUMAPlacement {
    /// Where the kernel really put `buffer`'s pages: node -> page count, asked page by page
    /// with move_pages(2) in query mode (no page is moved). Pages not yet faulted in count
    /// under -ENOENT's node -1. Nil when the kernel cannot say (no NUMA support).
    public static func residentNodes(of buffer: IOBuffer) -> [Int: Int]? {
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        let count = (buffer.capacity + pageSize - 1) / pageSize
        var status = [Int32](repeating: 0, count: count)
        let ok: Bool = buffer.withUnsafeMutableBytes(in: 0..<buffer.capacity) { raw in
            // SAFETY: the page addresses lie inside the buffer, which is alive for this call; in
            // query mode (nodes == NULL) move_pages only reads where each page is.
            var pages: [UnsafeMutableRawPointer?] = (0..<count).map { raw.baseAddress! + $0 * pageSize }
            return numa_move_pages(0, UInt(count), &pages, nil, &status, 0) == 0
        }
        guard ok else { return nil }
        var nodes: [Int: Int] = [:]
        for s in status { nodes[s >= 0 ? Int(s) : -1, default: 0] += 1 }
        return nodes
    }
}

extension NUMAPlacement {
    /// Binds the calling thread to the CPUs of `node` (numa_run_on_node); false when NUMA is
    /// unavailable or the kernel refused, in which case the thread keeps running anywhere.
    @discardableResult
    public static func bindCurrentThread(toNode node: Int) -> Bool {
        guard isAvailable, node >= 0, node <= maxNode else { return false }
        return numa_run_on_node(Int32(node)) == 0
    }
}
