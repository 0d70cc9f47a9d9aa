// A device's internal state as the emulator keeps it: a size, a content seed, and a sparse map
// of blocks that changed since the seed produced them. Block b at version v holds the content
// of key(seed, b, v): generated words, or for `source=fast` devices a slice of a pool (see
// StatePool); version 0 is the seed's original content. Nothing is stored per byte, so a
// 16 GiB state costs a few words until it changes.

struct DeviceStateImage: Sendable, Equatable {
    let size: UInt64
    let blockSize: Int
    let contentSeed: UInt64
    /// The pool of a fast device; nil for generated content.
    let pool: StatePool?
    /// Versions of blocks that are not at version 0.
    private(set) var versions: [Int: UInt64] = [:]
    /// Maintained incrementally: base identity plus a sum over changed blocks.
    private(set) var digest: UInt64

    /// `pooled` selects the fast content; `reusing` is a pool to keep if it fits (same seed).
    init(size: UInt64, blockSize: Int, contentSeed: UInt64, pooled: Bool = false, reusing existing: StatePool? = nil) {
        precondition(blockSize > 0 && blockSize % 8 == 0, "block size must be a positive multiple of 8")
        self.size = size
        self.blockSize = blockSize
        self.contentSeed = contentSeed
        if pooled {
            pool = existing.flatMap { $0.fits(seed: contentSeed, blockSize: blockSize, stateSize: size) ? $0 : nil }
                ?? StatePool(seed: contentSeed, blockSize: blockSize, stateSize: size)
        } else {
            pool = nil
        }
        self.digest = Self.baseDigest(size: size, blockSize: blockSize, seed: contentSeed, pooled: pooled)
    }

    static func == (a: DeviceStateImage, b: DeviceStateImage) -> Bool {
        a.size == b.size && a.blockSize == b.blockSize && a.contentSeed == b.contentSeed
            && (a.pool == nil) == (b.pool == nil) && a.versions == b.versions
    }

    var isPooled: Bool { pool != nil }
    var layout: StateLayout { StateLayout(size: size, blockSize: blockSize) }
    var blockCount: Int { layout.blockCount }
    func blockLength(_ block: Int) -> Int { layout.blockLength(block) }

    func version(of block: Int) -> UInt64 { versions[block] ?? 0 }

    mutating func setVersion(_ version: UInt64, of block: Int) {
        precondition(block >= 0 && block < blockCount, "block \(block) outside the state")
        let old = self.version(of: block)
        if old != 0 { digest &-= Self.contribution(block: block, version: old) }
        if version != 0 { digest &+= Self.contribution(block: block, version: version) }
        versions[block] = version == 0 ? nil : version
    }

    var changedBlockCount: Int { versions.count }

    /// Fast content differs from generated content of the same seed, so its digest does too.
    static func baseDigest(size: UInt64, blockSize: Int, seed: UInt64, pooled: Bool) -> UInt64 {
        pooled ? mixAll(size, UInt64(blockSize), seed, 0x706F_6F6C) : mixAll(size, UInt64(blockSize), seed)
    }

    static func contribution(block: Int, version: UInt64) -> UInt64 {
        mixAll(UInt64(block), version)
    }

    /// The generator key of one block at one version.
    func key(of block: Int, version: UInt64) -> UInt64 {
        BlockContent.key(seed: contentSeed, block: block, version: version)
    }

    /// `count` bytes of the logical state starting at `offset` (tests; not the data path).
    func bytes(at offset: UInt64, count: Int) -> [UInt8] {
        precondition(offset <= size && UInt64(count) <= size - offset, "state range out of bounds")
        var out: [UInt8] = []
        out.reserveCapacity(count)
        var position = offset
        while out.count < count {
            let block = Int(position / UInt64(blockSize))
            let inBlock = Int(position % UInt64(blockSize))
            let key = key(of: block, version: version(of: block))
            if let pool {
                out.append(pool.bytes[pool.offset(key: key) + inBlock])
            } else {
                let word = BlockContent.word(key, inBlock / 8)
                out.append(UInt8(truncatingIfNeeded: word >> (8 * UInt64(inBlock % 8))))
            }
            position += 1
        }
        return out
    }
}

/// How a state of `size` bytes splits into blocks (the last one may be short).
struct StateLayout: Sendable, Equatable {
    let size: UInt64
    let blockSize: Int

    var blockCount: Int { Int((size + UInt64(blockSize) - 1) / UInt64(blockSize)) }

    func blockLength(_ block: Int) -> Int {
        let start = UInt64(block) * UInt64(blockSize)
        return Int(min(UInt64(blockSize), size - start))
    }
}

/// The content function of a block, fast enough to produce and check state at GB/s.
enum BlockContent {
    static func key(seed: UInt64, block: Int, version: UInt64) -> UInt64 {
        mix64(seed ^ mix64(UInt64(block) &* mixGamma ^ mix64(version &+ 0x5851_F42D_4C95_7F2D)))
    }

    @inline(__always)
    static func word(_ key: UInt64, _ index: Int) -> UInt64 {
        mix64(key &+ UInt64(truncatingIfNeeded: index &+ 1) &* mixGamma)
    }

    /// Mask keeping the low `bytes` bytes of a little-endian word (1...8).
    @inline(__always)
    static func mask(bytes: Int) -> UInt64 {
        bytes >= 8 ? ~0 : (UInt64(1) << (8 * UInt64(bytes))) &- 1
    }

    /// Writes the words of content bytes `[wordOffset*8, wordOffset*8 + wordCount*8)` of a block
    /// of `byteLength` bytes into `words[at...]`; bytes past the block's end are zero.
    static func fill(_ words: inout [UInt64], at start: Int, key: UInt64, wordOffset: Int, wordCount: Int, byteLength: Int) {
        let fullWords = byteLength / 8
        let end = wordOffset + wordCount
        let plainEnd = min(end, fullWords)
        precondition(start >= 0 && start + wordCount <= words.count)
        var i = wordOffset
        var out = start
        var x = key &+ UInt64(truncatingIfNeeded: i &+ 1) &* mixGamma
        let step4 = mixGamma &* 4
        while i + 4 <= plainEnd {
            let a = mix64(x), b = mix64(x &+ mixGamma), c = mix64(x &+ mixGamma &* 2), d = mix64(x &+ mixGamma &* 3)
            words[out] = a; words[out + 1] = b; words[out + 2] = c; words[out + 3] = d
            x &+= step4
            i += 4
            out += 4
        }
        while i < plainEnd {
            words[out] = mix64(x)
            x &+= mixGamma
            i += 1
            out += 1
        }
        while i < end {
            let tail = byteLength - i * 8
            words[out] = tail > 0 ? word(key, i) & mask(bytes: tail) : 0
            i += 1
            out += 1
        }
    }

    /// Checks words against the content; returns false on the first mismatch.
    static func matches(_ words: [UInt64], from start: Int, count: Int, key: UInt64, wordOffset: Int, byteLength: Int) -> Bool {
        precondition(start >= 0 && start + count <= words.count)
        let fullWords = byteLength / 8
        let plainCount = max(0, min(count, fullWords - wordOffset))
        var diff: UInt64 = 0
        var i = 0
        var x = key &+ UInt64(truncatingIfNeeded: wordOffset &+ 1) &* mixGamma
        let step4 = mixGamma &* 4
        while i + 4 <= plainCount {
            let p = start + i
            diff |= (words[p] ^ mix64(x)) | (words[p + 1] ^ mix64(x &+ mixGamma))
                | (words[p + 2] ^ mix64(x &+ mixGamma &* 2)) | (words[p + 3] ^ mix64(x &+ mixGamma &* 3))
            x &+= step4
            i += 4
        }
        while i < plainCount {
            diff |= words[start + i] ^ mix64(x)
            x &+= mixGamma
            i += 1
        }
        if diff != 0 { return false }
        while i < count {
            let index = wordOffset + i
            let tail = byteLength - index * 8
            let expected = tail > 0 ? word(key, index) & mask(bytes: tail) : 0
            if words[start + i] != expected { return false }
            i += 1
        }
        return true
    }
}
