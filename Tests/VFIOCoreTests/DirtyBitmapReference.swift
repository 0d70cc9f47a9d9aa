// The naive model the DirtyBitmap tests compare against: one Bool per page, everything done
// page by page, and the bitmap's words built from it independently of the type under test.
import Testing
import VFIOCore

/// xorshift64*: small, seeded, so a failing case reproduces from its arguments.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed == 0 ? 0x2545_F491_4F6C_DD1D : seed }
    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 0x2545_F491_4F6C_DD1D
    }
}

/// How the dirty pages of a test bitmap are laid out.
enum DirtyPattern: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case clean, permille, percent, tenPercent, full
    /// Runs of 1 to 400 pages at random places, about a fifth of the pages in all.
    case clustered
    /// Every other page: the most runs a bitmap can hold.
    case alternating

    var testDescription: String { rawValue }

    func pages(count: Int, using rng: inout SeededGenerator) -> [Bool] {
        var dirty = [Bool](repeating: false, count: count)
        guard count > 0 else { return dirty }
        switch self {
        case .clean: break
        case .full: dirty = [Bool](repeating: true, count: count)
        case .permille, .percent, .tenPercent:
            let density = self == .permille ? 0.001 : self == .percent ? 0.01 : 0.1
            for page in 0..<count where Double.random(in: 0..<1, using: &rng) < density { dirty[page] = true }
        case .clustered:
            var covered = 0
            while covered < count / 5 + 1 {
                let start = Int.random(in: 0..<count, using: &rng)
                let length = Int.random(in: 1...400, using: &rng)
                for page in start..<min(count, start + length) { dirty[page] = true }
                covered += length
            }
        case .alternating:
            for page in stride(from: 1, to: count, by: 2) { dirty[page] = true }
        }
        return dirty
    }
}

/// Page counts around every word boundary case, and a few larger ones.
let dirtyPageCounts = [1, 2, 63, 64, 65, 127, 128, 129, 4095, 4096, 4097, 10_007]

enum Reference {
    /// The kernel's layout written out by hand: page k is bit k % 64 of word k / 64.
    static func words(_ pages: [Bool]) -> [UInt64] {
        var words = [UInt64](repeating: 0, count: (pages.count + 63) / 64)
        for (page, dirty) in pages.enumerated() where dirty { words[page / 64] |= 1 << UInt64(page % 64) }
        return words
    }

    static func bitmap(_ pages: [Bool], pageSize: UInt64 = 4096) throws -> DirtyBitmap {
        try DirtyBitmap(words: words(pages), pageCount: pages.count, pageSize: pageSize)
    }

    /// A random range of pages within 0..<count, empty ranges and the ends included.
    static func range(within count: Int, using rng: inout SeededGenerator) -> Range<Int> {
        let a = Int.random(in: 0...count, using: &rng), b = Int.random(in: 0...count, using: &rng)
        return min(a, b)..<max(a, b)
    }

    static func dirtyIndexes(_ pages: [Bool]) -> [Int] { pages.indices.filter { pages[$0] } }

    /// Maximal runs, each then cut into pieces of at most maxPages.
    static func runs(_ pages: [Bool], maxPages: Int) -> [DirtyRun] {
        var result: [DirtyRun] = []
        var page = 0
        while page < pages.count {
            guard pages[page] else { page += 1; continue }
            var end = page
            while end < pages.count, pages[end] { end += 1 }
            var start = page
            while start < end {
                let length = min(maxPages, end - start)
                result.append(DirtyRun(firstPage: start, pageCount: length))
                start += length
            }
            page = end
        }
        return result
    }

    /// The model read back out of a bitmap through the bit-by-bit API.
    static func pages(of bitmap: DirtyBitmap) throws -> [Bool] {
        try (0..<bitmap.pageCount).map { page throws in try bitmap[page] }
    }
}

/// The words hold exactly pageCount bits: the right word count, nothing set past the end.
func expectTailClear(_ bitmap: DirtyBitmap, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(bitmap.words.count == (bitmap.pageCount + 63) / 64, "word count", sourceLocation: sourceLocation)
    if bitmap.pageCount % 64 != 0, let last = bitmap.words.last {
        #expect(last >> UInt64(bitmap.pageCount % 64) == 0, "bits past page \(bitmap.pageCount) are set", sourceLocation: sourceLocation)
    }
}

/// Runs `body` on `pattern` at every page count, each with a seed of its own.
func forEveryCount(
    of pattern: DirtyPattern, counts: [Int] = dirtyPageCounts, _ body: ([Bool], inout SeededGenerator) throws -> Void
) rethrows {
    let patternIndex = DirtyPattern.allCases.firstIndex(of: pattern)!
    for count in counts {
        var rng = SeededGenerator(seed: UInt64(count) << 8 | UInt64(patternIndex))
        let pages = pattern.pages(count: count, using: &rng)
        try body(pages, &rng)
    }
}

/// The bitmap holds exactly the model's pages; a failure names the first page that differs
/// (the word arrays themselves are too long to read in a message).
func expectPages(
    _ bitmap: DirtyBitmap, _ model: [Bool], _ context: @autoclosure () -> String = "",
    sourceLocation: SourceLocation = #_sourceLocation
) {
    guard bitmap.pageCount == model.count else {
        Issue.record("\(context()): \(bitmap.pageCount) pages, expected \(model.count)", sourceLocation: sourceLocation)
        return
    }
    let expected = Reference.words(model)
    let actual = bitmap.words
    guard actual.count == expected.count else {
        Issue.record("\(context()): \(actual.count) words, expected \(expected.count)", sourceLocation: sourceLocation)
        return
    }
    if let word = actual.indices.first(where: { actual[$0] != expected[$0] }) {
        let page = word * 64 + (actual[word] ^ expected[word]).trailingZeroBitCount
        Issue.record(
            "\(context()): page \(page) is \(page < model.count && model[page] ? "clean" : "dirty"), expected the opposite",
            sourceLocation: sourceLocation)
    }
}

/// Two sequences are equal; a failure names the first position where they differ.
func expectSameElements<T: Equatable>(
    _ actual: [T], _ expected: [T], _ context: @autoclosure () -> String = "",
    sourceLocation: SourceLocation = #_sourceLocation
) {
    guard let at = zip(actual, expected).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset
        ?? (actual.count == expected.count ? nil : min(actual.count, expected.count))
    else { return }
    let got = at < actual.count ? "\(actual[at])" : "nothing"
    let want = at < expected.count ? "\(expected[at])" : "nothing"
    Issue.record(
        "\(context()): element \(at) is \(got), expected \(want) (\(actual.count) elements, expected \(expected.count))",
        sourceLocation: sourceLocation)
}
