// Walking the dirty pages in ascending order, one at a time or as coalesced runs. Both
// iterators hold the word array (a reference, no copy) and step over clean words eight at a
// time, so a bitmap of 1 TiB of clean memory is crossed at close to the speed of reading it;
// a dirty word is taken apart with trailingZeroBitCount. Neither allocates.

/// Consecutive dirty pages `firstPage ..< firstPage + pageCount`.
public struct DirtyRun: Sendable, Hashable, CustomStringConvertible {
    public var firstPage: Int
    public var pageCount: Int

    public init(firstPage: Int, pageCount: Int) {
        self.firstPage = firstPage
        self.pageCount = pageCount
    }

    public var pages: Range<Int> { firstPage..<(firstPage + pageCount) }
    public var description: String { "pages \(firstPage)..<\(firstPage + pageCount)" }
}

extension DirtyBitmap {
    /// The dirty page indexes, ascending.
    public var dirtyPages: DirtyPages { DirtyPages(words: words) }

    /// The maximal runs of dirty pages, ascending, each cut into pieces of at most `maxPages`
    /// (a sender's buffer size in pages).
    public func runs(maxPages: Int = .max) throws(DirtyBitmapError) -> DirtyRuns {
        guard maxPages >= 1 else { throw .invalidRunLimit(maxPages) }
        return DirtyRuns(words: words, maxPages: maxPages)
    }
}

extension DirtyBitmap {
    /// Index of the first non-zero word at or after `index` (≥ 0), or `words.count`.
    @inline(__always)
    static func nextDirtyWord(_ words: [UInt64], from index: Int) -> Int {
        var i = index
        let count = words.count
        // Eight words per test, OR-ed in vector registers: one branch per 64 bytes keeps the
        // skip close to the speed of a plain sequential read.
        while i < count &- 7 {
            let low = words[i] | words[i &+ 1] | words[i &+ 2] | words[i &+ 3]
            let high = words[i &+ 4] | words[i &+ 5] | words[i &+ 6] | words[i &+ 7]
            if low | high != 0 { break }
            i &+= 8
        }
        while i < count, words[i] == 0 { i += 1 }
        return i
    }
}

public struct DirtyPages: Sequence, Sendable {
    let words: [UInt64]

    public func makeIterator() -> Iterator { Iterator(words: words) }

    public var underestimatedCount: Int { 0 }

    public struct Iterator: IteratorProtocol, Sendable {
        let words: [UInt64]
        /// Word `index` with the pages already returned cleared.
        var index = -1
        var remaining: UInt64 = 0

        init(words: [UInt64]) { self.words = words }

        public mutating func next() -> Int? {
            if remaining == 0 {
                index = DirtyBitmap.nextDirtyWord(words, from: index + 1)
                guard index < words.count else {
                    index = words.count - 1 // stays exhausted
                    return nil
                }
                remaining = words[index]
            }
            let bit = remaining.trailingZeroBitCount
            remaining &= remaining &- 1
            return index << 6 | bit
        }
    }
}

public struct DirtyRuns: Sequence, Sendable {
    let words: [UInt64]
    let maxPages: Int

    public func makeIterator() -> Iterator { Iterator(words: words, maxPages: maxPages) }

    public struct Iterator: IteratorProtocol, Sendable {
        let words: [UInt64]
        let maxPages: Int
        /// Word `index` with the pages of runs already returned cleared.
        var index = -1
        var remaining: UInt64 = 0
        /// The rest of a run longer than maxPages, still to be returned.
        var pendingStart = 0
        var pendingEnd = 0

        init(words: [UInt64], maxPages: Int) {
            self.words = words
            self.maxPages = maxPages
        }

        public mutating func next() -> DirtyRun? {
            if pendingStart < pendingEnd { return piece() }
            if remaining == 0 {
                index = DirtyBitmap.nextDirtyWord(words, from: index + 1)
                guard index < words.count else {
                    index = words.count - 1
                    return nil
                }
                remaining = words[index]
            }
            let startBit = remaining.trailingZeroBitCount
            let start = index << 6 | startBit
            // The run ends at the first clean page above its start.
            let clean = ~remaining & (UInt64.max &<< UInt64(startBit))
            let end: Int
            if clean != 0 {
                let endBit = clean.trailingZeroBitCount
                end = index << 6 | endBit
                remaining &= UInt64.max &<< UInt64(endBit)
            } else {
                // The run reaches the top of this word and goes on through full words.
                index += 1
                while index < words.count, words[index] == .max { index += 1 }
                if index == words.count {
                    end = index << 6 // only when pageCount is a multiple of 64: spare bits are clear
                    index -= 1
                    remaining = 0
                } else {
                    let endBit = (~words[index]).trailingZeroBitCount
                    end = index << 6 | endBit
                    remaining = words[index] & (UInt64.max &<< UInt64(endBit))
                }
            }
            if end - start <= maxPages { return DirtyRun(firstPage: start, pageCount: end - start) }
            pendingStart = start
            pendingEnd = end
            return piece()
        }

        private mutating func piece() -> DirtyRun {
            let count = Swift.min(maxPages, pendingEnd - pendingStart)
            defer { pendingStart += count }
            return DirtyRun(firstPage: pendingStart, pageCount: count)
        }
    }
}
