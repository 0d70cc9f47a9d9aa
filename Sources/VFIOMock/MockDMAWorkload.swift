// A device's DMA workload: how fast it writes guest memory, where (a hot set and a pattern),
// and with what content, all derived from a seed so a test can predict every byte. Writes are
// whole 4 KiB pages of the writable mapped IOVA space (every writable MAP_DMA mapping of the
// device's container, in IOVA order); the hot set is its first `hotSet` bytes.

public struct MockDMAWorkload: Sendable, Equatable {
    public enum Pattern: String, Sendable, CaseIterable {
        /// Page after page through the hot set, wrapping.
        case sequential
        /// Uniformly random pages of the hot set.
        case random
        /// `hotFraction` of the writes uniformly into the hot set, the rest anywhere.
        case hotCold = "hot-cold"
    }

    public static let pageSize: UInt64 = 4096

    /// Bytes written per second of the kernel's clock (whole pages; the rest carries over).
    public var rate: UInt64
    /// Bytes at the start of the writable space the device works in; nil: all of it.
    public var hotSet: UInt64?
    /// For `.hotCold`: the share of writes that land in the hot set (0...1).
    public var hotFraction: Double
    public var pattern: Pattern
    public var seed: UInt64

    public init(rate: UInt64, hotSet: UInt64? = nil, hotFraction: Double = 0.9, pattern: Pattern = .random, seed: UInt64 = 1) {
        precondition(hotFraction >= 0 && hotFraction <= 1, "hot fraction \(hotFraction) outside 0...1")
        precondition(hotSet.map { $0 >= Self.pageSize } ?? true, "a hot set holds at least one page")
        self.rate = rate
        self.hotSet = hotSet
        self.hotFraction = hotFraction
        self.pattern = pattern
        self.seed = seed
    }

    /// The 4 KiB the workload writes into the page at `iova` as its `counter`th write.
    public static func pageContent(seed: UInt64, iova: UInt64, counter: UInt64) -> [UInt8] {
        var words = [UInt64](repeating: 0, count: Int(pageSize / 8))
        fillPage(&words, seed: seed, iova: iova, counter: counter)
        return MockStateFormat.bytes(of: words)
    }

    static func fillPage(_ words: inout [UInt64], seed: UInt64, iova: UInt64, counter: UInt64) {
        BlockContent.fill(&words, at: 0, key: mixAll(seed, iova / pageSize, counter), wordOffset: 0,
                          wordCount: words.count, byteLength: words.count * 8)
    }

    /// Index (into `pages` writable pages, the first `hot` of them hot) of write `counter`.
    func page(forWrite counter: UInt64, sequentialIndex: UInt64, pages: UInt64, hot: UInt64) -> UInt64 {
        let draw = mix64(seed &+ counter &* mixGamma)
        switch pattern {
        case .sequential:
            return sequentialIndex % hot
        case .random:
            return draw % hot
        case .hotCold:
            let pick = mix64(draw ^ 0x686F_7463)
            let inHot = Double(draw >> 11) / Double(UInt64(1) << 53) < hotFraction
            return inHot ? pick % hot : pick % pages
        }
    }
}

/// One DMA write a device performed, as the log since the last mark records it.
public struct MockDMAWrite: Sendable, Equatable, CustomStringConvertible {
    public var iova: UInt64
    public var length: UInt64
    /// For workload writes: the write's number, which with the seed and the page decides its
    /// content (MockDMAWorkload.pageContent); nil for `dmaWrite` calls.
    public var counter: UInt64?

    public init(iova: UInt64, length: UInt64, counter: UInt64? = nil) {
        self.iova = iova
        self.length = length
        self.counter = counter
    }

    public var description: String {
        "\(length) B at 0x\(String(iova, radix: 16))" + (counter.map { " (write \($0))" } ?? "")
    }
}

/// A workload's progress on one device.
struct DMARun {
    var workload: MockDMAWorkload
    /// rate × nanoseconds not yet turned into whole pages.
    var credit: UInt128 = 0
    /// Pages written so far (the content counter).
    var writes: UInt64 = 0
    var sequentialIndex: UInt64 = 0

    init(_ workload: MockDMAWorkload) { self.workload = workload }

    /// Pages due for a period of `nanoseconds`.
    mutating func pagesDue(nanoseconds: UInt64) -> UInt64 {
        credit += UInt128(workload.rate) * UInt128(nanoseconds)
        let perPage = UInt128(MockDMAWorkload.pageSize) * 1_000_000_000
        let pages = credit / perPage
        credit %= perPage
        return UInt64(min(pages, UInt128(UInt64.max)))
    }
}
