// Combining bitmaps: merging reports of the same memory, changing the page size between a
// report's granularity and the sender's, cutting a bitmap into kernel-sized pieces and
// back, and dividing the dirty pages among parallel senders.

extension DirtyBitmap {
    /// ORs `other` into this bitmap. Both must cover the same pages at the same page size.
    public mutating func formUnion(_ other: DirtyBitmap) throws(DirtyBitmapError) {
        guard pageSize == other.pageSize, pageCount == other.pageCount else {
            throw .geometryMismatch(
                pageSize: pageSize, pageCount: pageCount, otherPageSize: other.pageSize, otherPageCount: other.pageCount)
        }
        let theirs = other.storage
        for index in storage.indices { storage[index] |= theirs[index] }
    }

    public func union(_ other: DirtyBitmap) throws(DirtyBitmapError) -> DirtyBitmap {
        var result = self
        try result.formUnion(other)
        return result
    }

    /// The same memory at another page size. Coarser: a big page is dirty when any small
    /// page in it is, and the last big page may reach past the memory this bitmap covers.
    /// Finer: every small page of a dirty big page is dirty.
    public func converted(toPageSize newSize: UInt64) throws(DirtyBitmapError) -> DirtyBitmap {
        guard newSize >= 4096, newSize.nonzeroBitCount == 1 else { throw .invalidPageSize(newSize) }
        if newSize == pageSize { return self }
        if newSize > pageSize {
            let shift = (newSize / pageSize).trailingZeroBitCount
            let newCount = (pageCount >> shift) + (pageCount & ((1 << shift) - 1) == 0 ? 0 : 1)
            var result = try DirtyBitmap(pageCount: newCount, pageSize: newSize)
            for run in DirtyRuns(words: storage, maxPages: .max) {
                result.setRange((run.firstPage >> shift)..<(((run.firstPage + run.pageCount - 1) >> shift) + 1), to: true)
            }
            return result
        }
        let shift = (pageSize / newSize).trailingZeroBitCount
        // The same bytes in smaller pages: byteCount fits in 64 bits, so the count fits in Int.
        let newCount = pageCount << shift
        var result = try DirtyBitmap(pageCount: newCount, pageSize: newSize)
        for run in DirtyRuns(words: storage, maxPages: .max) {
            result.setRange((run.firstPage << shift)..<((run.firstPage + run.pageCount) << shift), to: true)
        }
        return result
    }

    /// Pages `pages` as a bitmap of their own: page `pages.lowerBound` becomes page 0.
    public func slice(pages: Range<Int>) throws(DirtyBitmapError) -> DirtyBitmap {
        try check(pages)
        var result = try DirtyBitmap(pageCount: pages.count, pageSize: pageSize)
        let shift = UInt64(pages.lowerBound & 63)
        let base = pages.lowerBound >> 6
        for index in result.storage.indices {
            var word = storage[base + index] &>> shift
            if shift != 0, base + index + 1 < storage.count {
                word |= storage[base + index + 1] &<< (64 - shift)
            }
            result.storage[index] = word
        }
        result.clearTail()
        return result
    }

    /// ORs `other` in with its page 0 at `atPage`, which need not be a multiple of 64: the
    /// way back for a slice taken with `slice(pages:)`.
    public mutating func insert(_ other: DirtyBitmap, atPage: Int) throws(DirtyBitmapError) {
        guard other.pageSize == pageSize else {
            // Only the page size must agree here, so only it is reported as differing.
            throw .geometryMismatch(
                pageSize: pageSize, pageCount: pageCount, otherPageSize: other.pageSize, otherPageCount: pageCount)
        }
        guard atPage >= 0, atPage <= pageCount, other.pageCount <= pageCount - atPage else {
            throw .insertOutOfRange(atPage: atPage, insertedPages: other.pageCount, pageCount: pageCount)
        }
        let theirs = other.storage
        let shift = UInt64(atPage & 63)
        let base = atPage >> 6
        // `other` has no bits past its pages, and those all land inside this bitmap, so
        // nothing is set past pageCount.
        for index in theirs.indices where theirs[index] != 0 {
            storage[base + index] |= theirs[index] &<< shift
            if shift != 0, base + index + 1 < storage.count {
                storage[base + index + 1] |= theirs[index] &>> (64 - shift)
            }
        }
    }

    /// Contiguous page ranges that together cover the bitmap, for `n` parallel senders.
    /// Boundaries fall on multiples of 64 pages (whole words), each range holds at least one
    /// dirty word, and each boundary is within half a word's pages of where an exact even split
    /// of the dirty pages would put it (unless there are too few dirty words for that).
    /// There are `min(n, number of non-zero words)` ranges, or one when nothing is dirty.
    public func partitioned(into n: Int) throws(DirtyBitmapError) -> [Range<Int>] {
        guard n >= 1 else { throw .invalidPartitionCount(n) }
        let source = storage
        var dirtyWords = 0
        var total = 0
        for word in source where word != 0 {
            dirtyWords += 1
            total += word.nonzeroBitCount
        }
        let parts = min(n, dirtyWords)
        guard parts > 1 else { return [0..<pageCount] }

        // Range k ideally ends where the running count reaches k/parts of the total (full
        // width: k × total can pass 2^63 for bitmaps of 2^32 pages and more).
        func threshold(_ k: Int) -> Int { parts.dividingFullWidth(k.multipliedFullWidth(by: total)).quotient }

        var ranges: [Range<Int>] = []
        ranges.reserveCapacity(parts)
        var start = 0
        var counted = 0 // dirty pages before the current word
        var countedAtStart = 0 // ... and before the current range
        var wordsLeft = dirtyWords
        var index = Self.nextDirtyWord(source, from: 0)
        while index < source.count {
            let population = source[index].nonzeroBitCount
            let partsLeft = parts - ranges.count // including the one being filled
            let nearer = 2 * counted + population >= 2 * threshold(ranges.count + 1)
            if partsLeft > 1, counted > countedAtStart, nearer || wordsLeft < partsLeft {
                // Cut before this word: closer to the threshold than after it, or every
                // remaining range still needs a dirty word of its own.
                ranges.append(start..<(index << 6))
                start = index << 6
                countedAtStart = counted
            }
            counted += population
            wordsLeft -= 1
            index = Self.nextDirtyWord(source, from: index + 1)
        }
        ranges.append(start..<pageCount)
        return ranges
    }
}
