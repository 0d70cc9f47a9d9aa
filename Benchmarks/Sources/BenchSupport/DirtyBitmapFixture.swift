// Dirty bitmaps at the densities the bitmap benchmarks compare, and the work each is compared
// with: a sequential read of the same words (their sum) and copying the pages a walk finds
// (4 KiB memcpy per dirty page from guest memory into a reused 1 MiB send buffer).
import VFIOBuffers
import VFIOCore

/// How the dirty pages of a benchmark bitmap are laid out.
public enum DirtyLayout: String, CaseIterable, Sendable {
    case clean = "0 %"
    case permille = "0.1 %"
    case percent = "1 %"
    case tenPercent = "10 %"
    case full = "100 %"
    /// Runs of 1 to 512 pages at random places until a tenth of the pages are dirty: what a
    /// guest's working set looks like, against the uniform scatter of `tenPercent`.
    case clustered = "clustered 10 %"

    /// Whether bitmaps drawn with different seeds differ (and so touch different pages).
    public var isRandom: Bool { self != .clean && self != .full }

    /// A bitmap of `pageCount` 4 KiB pages laid out this way; `seed` picks which pages.
    public func bitmap(pageCount: Int, seed: UInt64) -> DirtyBitmap {
        do {
            var bitmap = try DirtyBitmap(pageCount: pageCount, pageSize: 4096)
            var rng = BenchRandom(seed: seed)
            switch self {
            case .clean:
                // Written once, so its words are real memory, not the kernel's shared zero page.
                bitmap.insertAll()
                bitmap.removeAll()
            case .full: bitmap.insertAll()
            case .permille, .percent, .tenPercent:
                let oneIn: UInt64 = self == .permille ? 1000 : self == .percent ? 100 : 10
                for page in 0..<pageCount where rng.next() % oneIn == 0 { try bitmap.insert(page) }
            case .clustered:
                while bitmap.dirtyPageCount < pageCount / 10 {
                    let start = Int(rng.next() % UInt64(pageCount))
                    let length = 1 + Int(rng.next() % 512)
                    try bitmap.insert(pages: start..<min(pageCount, start + length))
                }
            }
            return bitmap
        } catch {
            preconditionFailure("benchmark bitmap: \(error)")
        }
    }
}

/// A 64-bit linear congruential generator (Knuth's MMIX constants), high bits only: the same
/// seed draws the same bitmap in every run, and which pages are dirty needs nothing better.
struct BenchRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return state >> 24
    }
}

/// The sender's walk: every run of the bitmap, cut at the send buffer's size in pages.
/// Returns a fold of the runs so the walk cannot be optimised away.
@inline(never)
public func walkRuns(_ bitmap: DirtyBitmap, maxPages: Int) -> Int {
    var fold = 0
    do {
        for run in try bitmap.runs(maxPages: maxPages) { fold &+= run.firstPage ^ run.pageCount }
    } catch {
        preconditionFailure("walk: \(error)")
    }
    return fold
}

/// Every dirty page, one at a time.
@inline(never)
public func walkPages(_ bitmap: DirtyBitmap) -> Int {
    var fold = 0
    for page in bitmap.dirtyPages { fold &+= page }
    return fold
}

/// The baseline of the empty scan: one sequential read of the same words.
@inline(never)
public func sumWords(_ words: [UInt64]) -> UInt64 {
    var sum: UInt64 = 0
    for word in words { sum &+= word }
    return sum
}

/// Guest memory to copy dirty pages out of, and the send buffer they are copied into.
public final class PageCopyFixture {
    public static let pageSize = 4096
    public let memory: IOBuffer
    public let sendBuffer: IOBuffer
    public var pageCount: Int { memory.capacity / Self.pageSize }

    /// `pageCount` pages of memory, every one written once so none is a shared zero page.
    public init(pageCount: Int) {
        memory = IOBuffer(capacity: pageCount * Self.pageSize)
        sendBuffer = IOBuffer(capacity: 1 << 20)
        // SAFETY: the range is the whole buffer, which IOBuffer checked; no pointer escapes.
        memory.withUnsafeMutableBytes(in: 0..<memory.capacity) { _ = $0.initializeMemory(as: UInt8.self, repeating: 0x5A) }
        sendBuffer.withUnsafeMutableBytes(in: 0..<sendBuffer.capacity) { _ = $0.initializeMemory(as: UInt8.self, repeating: 0) }
    }

    /// Copies each page of `pages` into the next 4 KiB slot of the send buffer (wrapping
    /// around it): the least a sender must do per dirty page.
    @inline(never)
    public func copy(_ pages: [Int]) {
        let slots = sendBuffer.capacity / Self.pageSize
        for (i, page) in pages.enumerated() {
            let from = (page * Self.pageSize)..<((page + 1) * Self.pageSize)
            let slot = i % slots * Self.pageSize
            // SAFETY: both ranges were checked by IOBuffer and are one page long; the buffers are
            // distinct allocations, so they do not overlap; no pointer leaves the closures.
            memory.withUnsafeBytes(in: from) { source in
                sendBuffer.withUnsafeMutableBytes(in: slot..<(slot + Self.pageSize)) { $0.copyMemory(from: source) }
            }
        }
    }
}
