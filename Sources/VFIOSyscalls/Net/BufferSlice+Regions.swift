// The memory of several IOBuffer ranges at once, for a gather write: each buffer's access
// closure is nested inside the previous one, so every address stays valid for the call.
// The nesting is one stack frame per slice, so slices are taken in groups of bounded size.
import VFIOBuffers

extension Array where Element == BufferSlice {
    /// Most slices one group (one nesting, one sendmsg call at best) takes.
    static let group = 64

    /// Calls `body` with the regions of consecutive groups of slices, in order.
    func forEachRegionGroup<E: Error>(_ body: ([UserRegion]) throws(E) -> Void) throws(E) {
        var start = 0
        while start < count {
            let end = Swift.min(count, start + Self.group)
            var regions: [UserRegion] = []
            regions.reserveCapacity(end - start)
            try Self.nest(self[start..<end], &regions, body)
            start = end
        }
    }

    private static func nest<R, E: Error>(
        _ slices: ArraySlice<BufferSlice>, _ regions: inout [UserRegion], _ body: ([UserRegion]) throws(E) -> R
    ) throws(E) -> R {
        guard let first = slices.first else { return try body(regions) }
        if first.range.isEmpty { return try nest(slices.dropFirst(), &regions, body) }
        return try first.buffer.withUnsafeBytes(in: first.range) { (raw) throws(E) -> R in
            // SAFETY: the range stays valid until this closure returns, after `body` has run.
            regions.append(UserRegion(address: UInt(bitPattern: raw.baseAddress), count: raw.count, writable: false))
            return try nest(slices.dropFirst(), &regions, body)
        }
    }
}

extension Array where Element == UserRegion {
    /// The regions after the first `n` bytes of them.
    func dropping(_ n: Int) -> [UserRegion] {
        var skip = n
        var index = 0
        while index < count && skip >= self[index].count {
            skip -= self[index].count
            index += 1
        }
        guard index < count else { return [] }
        return [self[index].dropFirst(skip)] + self[(index + 1)...]
    }
}
