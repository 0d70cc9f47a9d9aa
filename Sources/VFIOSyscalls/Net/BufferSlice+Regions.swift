// The memory of several IOBuffer ranges at once, for a gather write: each buffer's access
// closure is nested inside the previous one, so every address stays valid for the call. The
// iovecs live in a stack allocation and a short write advances them in place, so a gather
// write allocates nothing. The nesting is one stack frame per slice, so slices are taken in
// groups of bounded size.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import VFIOBuffers

/// The iovecs of one group of slices; `consume` drops what a write took.
struct IOVecGroup {
    private let base: UnsafeMutablePointer<iovec>
    private let count: Int
    private var first = 0

    init(base: UnsafeMutablePointer<iovec>, count: Int) {
        self.base = base
        self.count = count
    }

    var isEmpty: Bool { first == count }

    /// The iovecs still to write, the first one trimmed by earlier short writes.
    var remaining: UnsafeMutableBufferPointer<iovec> {
        // SAFETY: base[first ..< count] lies inside the group's allocation.
        UnsafeMutableBufferPointer(start: base + first, count: count - first)
    }

    /// Drops the first `n` bytes of what remains.
    mutating func consume(_ n: Int) {
        var skip = n
        while first < count && skip >= base[first].iov_len {
            skip -= base[first].iov_len
            first += 1
        }
        guard first < count, skip > 0 else { return }
        // SAFETY: skip < iov_len, so the advanced base stays inside the same slice.
        base[first].iov_base = base[first].iov_base.map { $0 + skip }
        base[first].iov_len -= skip
    }
}

extension Array where Element == BufferSlice {
    /// Most slices one group (one nesting, one sendmsg call at best) takes.
    static let group = 64

    /// Calls `body` with the iovecs of consecutive groups of slices, in order.
    func forEachRegionGroup<E: Error>(_ body: (inout IOVecGroup) throws(E) -> Void) throws(E) {
        var start = 0
        while start < count {
            let end = Swift.min(count, start + Self.group)
            let slices = self[start..<end]
            // SAFETY: the iovec storage lives for the closure, which the group does not outlive.
            let failure: E? = withUnsafeTemporaryAllocation(of: iovec.self, capacity: end - start) { vectors in
                do throws(E) {
                    try Self.nest(slices, vectors, 0, body)
                    return nil
                } catch {
                    return error
                }
            }
            if let failure { throw failure }
            start = end
        }
    }

    private static func nest<E: Error>(
        _ slices: ArraySlice<BufferSlice>, _ vectors: UnsafeMutableBufferPointer<iovec>, _ filled: Int,
        _ body: (inout IOVecGroup) throws(E) -> Void
    ) throws(E) {
        guard let first = slices.first else {
            // SAFETY: vectors has room for the whole group; `filled` of them are set.
            var group = IOVecGroup(base: vectors.baseAddress!, count: filled)
            return try body(&group)
        }
        if first.range.isEmpty { return try nest(slices.dropFirst(), vectors, filled, body) }
        try first.buffer.withUnsafeBytes(in: first.range) { (raw) throws(E) in
            // SAFETY: the range stays valid until this closure returns, after `body` has run;
            // the kernel only reads through iov_base for a write.
            vectors[filled] = iovec(iov_base: UnsafeMutableRawPointer(mutating: raw.baseAddress), iov_len: raw.count)
            try nest(slices.dropFirst(), vectors, filled + 1, body)
        }
    }
}
