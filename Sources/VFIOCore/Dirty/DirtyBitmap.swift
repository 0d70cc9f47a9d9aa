// The set of guest pages a device dirtied, in the kernel's own layout: little-endian u64
// words, page k is bit k % 64 of word k / 64 (type1 VFIO_IOMMU_DIRTY_PAGES and device DMA
// logging reports alike). Keeping that layout means the kernel backend can hand `words` to
// the ioctl as the report buffer and the engine reads the result without converting it.
//
// Invariant: `words.count == (pageCount + 63) / 64` and every bit at or above `pageCount` is
// zero, so whole-word operations (population count, emptiness, walks) need no masking.

public struct DirtyBitmap: Sendable, Hashable {
    /// Bytes of guest memory per bit: a power of two, at least 4096.
    public let pageSize: UInt64
    public let pageCount: Int
    /// The words; code of this module writes them directly and keeps the invariant itself.
    var storage: [UInt64]

    /// A bitmap of `pageCount` clean pages.
    public init(pageCount: Int, pageSize: UInt64) throws(DirtyBitmapError) {
        try Self.validate(pageCount: pageCount, pageSize: pageSize)
        self.pageSize = pageSize
        self.pageCount = pageCount
        self.storage = Array(repeating: 0, count: Self.wordCount(for: pageCount))
    }

    /// Adopts words the kernel filled. Bits past `pageCount` (the kernel may leave the last
    /// word's spare bits in any state) are cleared.
    public init(words: [UInt64], pageCount: Int, pageSize: UInt64) throws(DirtyBitmapError) {
        try Self.validate(pageCount: pageCount, pageSize: pageSize)
        let expected = Self.wordCount(for: pageCount)
        guard words.count == expected else {
            throw .wordCountMismatch(words: words.count, expected: expected, pageCount: pageCount)
        }
        self.pageSize = pageSize
        self.pageCount = pageCount
        self.storage = words
        clearTail()
    }

    /// The words, in the layout the kernel reads and writes. Lend them to a report ioctl as
    /// `&bitmap.words`: the array is modified in place, and when the access ends the
    /// invariant is restored (spare bits cleared; an array resized by the borrower is cut
    /// or zero-padded back to the bitmap's word count).
    public var words: [UInt64] {
        get { storage }
        _modify {
            yield &storage
            restoreInvariant()
        }
    }

    /// Bytes of guest memory the bitmap covers.
    public var byteCount: UInt64 { UInt64(pageCount) * pageSize }

    public var isEmpty: Bool {
        // OR-folding keeps the loop branch-free, so an empty bitmap is read at memory speed.
        var any: UInt64 = 0
        for word in storage { any |= word }
        return any == 0
    }

    /// Number of dirty pages.
    public var dirtyPageCount: Int {
        var count = 0
        for word in storage { count &+= word.nonzeroBitCount }
        return count
    }

    /// Whether `page` is dirty.
    public subscript(page: Int) -> Bool {
        get throws(DirtyBitmapError) {
            try check(page)
            return storage[page >> 6] & (1 << UInt64(page & 63)) != 0
        }
    }

    /// Marks `page` dirty; returns whether it was clean before.
    @discardableResult
    public mutating func insert(_ page: Int) throws(DirtyBitmapError) -> Bool {
        try check(page)
        let bit: UInt64 = 1 << UInt64(page & 63)
        let before = storage[page >> 6]
        storage[page >> 6] = before | bit
        return before & bit == 0
    }

    /// Marks `page` clean; returns whether it was dirty before.
    @discardableResult
    public mutating func remove(_ page: Int) throws(DirtyBitmapError) -> Bool {
        try check(page)
        let bit: UInt64 = 1 << UInt64(page & 63)
        let before = storage[page >> 6]
        storage[page >> 6] = before & ~bit
        return before & bit != 0
    }

    /// Marks every page of `pages` dirty.
    public mutating func insert(pages: Range<Int>) throws(DirtyBitmapError) {
        try check(pages)
        setRange(pages, to: true)
    }

    /// Marks every page of `pages` clean.
    public mutating func remove(pages: Range<Int>) throws(DirtyBitmapError) {
        try check(pages)
        setRange(pages, to: false)
    }

    /// Marks every page clean.
    public mutating func removeAll() {
        for index in storage.indices { storage[index] = 0 }
    }

    /// Marks every page dirty (what a failed report demands: assume everything changed).
    public mutating func insertAll() {
        for index in storage.indices { storage[index] = .max }
        clearTail()
    }

    // MARK: - Internals shared by the other files

    static func wordCount(for pageCount: Int) -> Int { (pageCount >> 6) + (pageCount & 63 == 0 ? 0 : 1) }

    static func validate(pageCount: Int, pageSize: UInt64) throws(DirtyBitmapError) {
        guard pageSize >= 4096, pageSize.nonzeroBitCount == 1 else { throw .invalidPageSize(pageSize) }
        guard pageCount >= 0, !UInt64(pageCount).multipliedReportingOverflow(by: pageSize).overflow else {
            throw .invalidPageCount(pageCount, pageSize: pageSize)
        }
    }

    func check(_ page: Int) throws(DirtyBitmapError) {
        guard page >= 0, page < pageCount else { throw .pageOutOfRange(page: page, pageCount: pageCount) }
    }

    func check(_ pages: Range<Int>) throws(DirtyBitmapError) {
        guard pages.lowerBound >= 0, pages.upperBound <= pageCount else {
            throw .rangeOutOfRange(pages, pageCount: pageCount)
        }
    }

    /// Sets or clears a range already checked against the bounds, a word at a time.
    mutating func setRange(_ pages: Range<Int>, to dirty: Bool) {
        guard !pages.isEmpty else { return }
        let first = pages.lowerBound >> 6, last = (pages.upperBound - 1) >> 6
        let low: UInt64 = .max << UInt64(pages.lowerBound & 63)
        let high: UInt64 = .max >> UInt64(63 - ((pages.upperBound - 1) & 63))
        func apply(_ index: Int, _ mask: UInt64) {
            storage[index] = dirty ? storage[index] | mask : storage[index] & ~mask
        }
        if first == last {
            apply(first, low & high)
            return
        }
        apply(first, low)
        for index in (first + 1)..<last { storage[index] = dirty ? .max : 0 }
        apply(last, high)
    }

    /// Clears the bits past `pageCount` in the last word.
    mutating func clearTail() {
        let spare = pageCount & 63
        if spare != 0 { storage[storage.count - 1] &= (1 << UInt64(spare)) - 1 }
    }

    private mutating func restoreInvariant() {
        let expected = Self.wordCount(for: pageCount)
        if storage.count > expected {
            storage.removeLast(storage.count - expected)
        } else if storage.count < expected {
            storage.append(contentsOf: repeatElement(0, count: expected - storage.count))
        }
        clearTail()
    }
}

extension DirtyBitmap: CustomStringConvertible {
    public var description: String {
        "DirtyBitmap(\(pageCount) pages of \(pageSize) bytes, \(dirtyPageCount) dirty)"
    }
}
