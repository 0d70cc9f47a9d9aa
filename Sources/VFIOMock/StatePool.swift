// The content of `source=fast` devices: one pool of pseudo-random bytes generated once from
// the content seed, and every block at every version is a slice of it starting at an offset
// its key picks. Serving a block is then a memory copy and checking one a comparison, so a
// save or a load of a fast device runs at memory speed whatever the state size, and the pool
// costs the same few MiB for a 4 KiB state and for a 16 TiB one.

final class StatePool: Sendable {
    /// Bytes the slice offsets range over (the pool holds one block more, so every slice fits).
    static let span = 4 << 20

    let seed: UInt64
    let blockSize: Int
    let bytes: [UInt8]
    /// Distinct 8-byte-aligned slice offsets.
    private let offsets: UInt64

    init(seed: UInt64, blockSize: Int, stateSize: UInt64) {
        self.seed = seed
        self.blockSize = blockSize
        let span = Self.span(stateSize: stateSize)
        offsets = UInt64(span / 8 + 1)
        let words = (span + blockSize) / 8
        var generated = [UInt64](repeating: 0, count: words)
        BlockContent.fill(&generated, at: 0, key: mixAll(seed, 0x706F_6F6C), wordOffset: 0, wordCount: words, byteLength: words * 8)
        var bytes = [UInt8](repeating: 0, count: words * 8)
        for (i, word) in generated.enumerated() {
            for j in 0..<8 { bytes[i * 8 + j] = UInt8(truncatingIfNeeded: word >> (8 * UInt64(j))) }
        }
        self.bytes = bytes
    }

    /// Where the slice of the block with generator key `key` starts.
    @inline(__always)
    func offset(key: UInt64) -> Int { Int(key % offsets) * 8 }

    /// True when `data[from..<from+count]` equals the pool at `at`.
    func matches(_ data: [UInt8], from: Int, count: Int, at: Int) -> Bool {
        precondition(from >= 0 && from + count <= data.count && at >= 0 && at + count <= bytes.count)
        var diff: UInt8 = 0
        for i in 0..<count { diff |= data[from &+ i] ^ bytes[at &+ i] }
        return diff == 0
    }

    private static func span(stateSize: UInt64) -> Int { Int(min(UInt64(span), (stateSize + 7) & ~7)) }

    /// True when this pool is the one `init` would build for these parameters.
    func fits(seed: UInt64, blockSize: Int, stateSize: UInt64) -> Bool {
        self.seed == seed && self.blockSize == blockSize && bytes.count == (Self.span(stateSize: stateSize) + blockSize) / 8 * 8
    }
}
