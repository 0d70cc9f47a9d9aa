// Misuse of a DirtyBitmap by its caller: a page outside the bitmap, a page size the kernel
// would refuse, two bitmaps that do not describe the same memory. Each case carries the
// numbers involved so the message can say exactly what was wrong.

public enum DirtyBitmapError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A page size that is not a power of two of at least 4096 bytes.
    case invalidPageSize(UInt64)
    /// A negative page count, or one whose memory (pages × page size) overflows 64 bits.
    case invalidPageCount(Int, pageSize: UInt64)
    /// An adopted word array whose length does not match the page count.
    case wordCountMismatch(words: Int, expected: Int, pageCount: Int)
    case pageOutOfRange(page: Int, pageCount: Int)
    case rangeOutOfRange(Range<Int>, pageCount: Int)
    /// Two bitmaps combined page by page must cover the same pages at the same page size.
    case geometryMismatch(pageSize: UInt64, pageCount: Int, otherPageSize: UInt64, otherPageCount: Int)
    /// A sub-bitmap inserted at `atPage` would run past the end.
    case insertOutOfRange(atPage: Int, insertedPages: Int, pageCount: Int)
    case invalidPartitionCount(Int)
    case invalidRunLimit(Int)

    public var description: String {
        switch self {
        case .invalidPageSize(let size):
            return "dirty bitmap: page size \(size) is not a power of two of at least 4096 bytes"
        case .invalidPageCount(let count, let pageSize):
            return count < 0
                ? "dirty bitmap: page count \(count) is negative"
                : "dirty bitmap: \(count) pages of \(pageSize) bytes overflow a 64-bit byte count"
        case .wordCountMismatch(let words, let expected, let pageCount):
            return "dirty bitmap: \(words) words given for \(pageCount) pages, which need \(expected)"
        case .pageOutOfRange(let page, let pageCount):
            return "dirty bitmap: page \(page) is outside the bitmap's \(pageCount) pages"
        case .rangeOutOfRange(let range, let pageCount):
            return "dirty bitmap: pages \(range.lowerBound)..<\(range.upperBound) are outside the bitmap's \(pageCount) pages"
        case .geometryMismatch(let pageSize, let pageCount, let otherPageSize, let otherPageCount):
            var differences: [String] = []
            if pageSize != otherPageSize { differences.append("page size \(pageSize) vs \(otherPageSize)") }
            if pageCount != otherPageCount { differences.append("page count \(pageCount) vs \(otherPageCount)") }
            return "dirty bitmaps differ in geometry: " + differences.joined(separator: ", ")
        case .insertOutOfRange(let atPage, let insertedPages, let pageCount):
            return "dirty bitmap: \(insertedPages) pages inserted at page \(atPage) run past the bitmap's \(pageCount) pages"
        case .invalidPartitionCount(let n):
            return "dirty bitmap: cannot partition into \(n) ranges (need at least 1)"
        case .invalidRunLimit(let maxPages):
            return "dirty bitmap: a run limit of \(maxPages) pages is too small (need at least 1)"
        }
    }
}
