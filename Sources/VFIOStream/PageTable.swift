// The run table at the front of a pages record (type 3): which pages of which region the
// record carries, and where each run's data lies in the record. Encoder and decoder share
// the rules here, so what one writes the other accepts.

/// Pages `firstPage ..< firstPage + pageCount` of a region; with `isZero` they are all zero
/// and the record carries no data for them.
public struct PageRun: Sendable, Hashable, Codable {
    public var firstPage: UInt64
    public var pageCount: UInt32
    public var isZero: Bool

    public init(firstPage: UInt64, pageCount: UInt32, isZero: Bool = false) {
        self.firstPage = firstPage
        self.pageCount = pageCount
        self.isZero = isZero
    }
}

/// Run flag bits (the u32 at offset 12 of a run).
public enum PageRunFlags {
    /// The pages are all zero and carry no data.
    public static let zero: UInt32 = 1 << 0
    public static let known: UInt32 = zero
}

/// A validated run table.
public struct PageTable: Sendable, Hashable {
    /// Index into the header's memory regions.
    public var region: Int
    /// 1 (pages sent while the guest runs) or 2 (final pages after the stop).
    public var phase: StatePhase
    /// The memory round number (the record's `offset`).
    public var round: UInt64
    public var pageSize: Int
    /// In table order: ascending, non-overlapping, inside the region.
    public var runs: [PageRun]
    /// Bytes of the payload taken by the table: 8 + 16 * runs.count. The data follow.
    public var tableLength: Int
    /// Bytes of page data after the table.
    public var dataLength: Int
    /// Pages that carry data.
    public var dataPageCount: UInt64
    /// Pages marked ZERO.
    public var zeroPageCount: UInt64

    /// Bytes of the fixed part of the table: region u32, runCount u32.
    public static let prefixSize = 8
    /// Bytes of one run: firstPage u64, pageCount u32, flags u32.
    public static let runSize = 16
    /// The shortest valid pages payload: the prefix and one run.
    public static let minimumPayload = prefixSize + runSize

    /// Where a run goes: its bytes within the region, and within the record's data section
    /// (the payload bytes after the table; an empty range for a ZERO run).
    public struct Placement: Sendable, Hashable {
        public var run: PageRun
        public var regionBytes: Range<UInt64>
        public var dataBytes: Range<Int>
    }

    /// Every run with its placement, in table order.
    public var placements: Placements { Placements(runs: runs, pageSize: UInt64(pageSize)) }

    public struct Placements: Sequence, Sendable {
        let runs: [PageRun]
        let pageSize: UInt64

        public struct Iterator: IteratorProtocol {
            var runs: IndexingIterator<[PageRun]>
            let pageSize: UInt64
            var dataOffset = 0

            public mutating func next() -> Placement? {
                guard let run = runs.next() else { return nil }
                // Validated tables keep these products below 2^64 (runs end inside the region).
                let start = run.firstPage * pageSize
                let length = UInt64(run.pageCount) * pageSize
                let dataLength = run.isZero ? 0 : Int(length)
                defer { dataOffset += dataLength }
                return Placement(run: run, regionBytes: start..<(start + length), dataBytes: dataOffset..<(dataOffset + dataLength))
            }
        }

        public func makeIterator() -> Iterator { Iterator(runs: runs.makeIterator(), pageSize: pageSize) }
    }
}

/// Why a run table is refused (by the decoder as a StreamError, by the encoder as a
/// StreamUsageError). Run numbers count from 0 in table order.
public enum PageTableProblem: Error, Sendable, Hashable, CustomStringConvertible {
    /// A pages record in a stream whose header has no memory regions.
    case noRegions
    /// Shorter than the prefix and one run (24 bytes).
    case payloadTooShort(length: UInt32)
    case regionOutOfRange(region: UInt32, regionCount: Int)
    case noRuns
    /// 8 + 16 * runCount is more than the payload.
    case tableExceedsPayload(runCount: UInt32, payloadLength: UInt32)
    case reservedRunFlags(run: Int, flags: UInt32)
    case emptyRun(run: Int)
    /// A run starts before the previous run's end (out of order or overlapping).
    case runOutOfOrder(run: Int, firstPage: UInt64, previousEnd: UInt64)
    /// firstPage + pageCount is past the region's page count (or past 2^64).
    case runBeyondRegion(run: Int, firstPage: UInt64, pageCount: UInt32, regionPages: UInt64)
    /// The runs describe `described` data bytes (at least that many when `atLeast`: the
    /// count stopped once it passed `carried`), the payload holds `carried` after the table.
    case dataLengthMismatch(described: UInt64, carried: UInt64, atLeast: Bool)

    public var description: String {
        switch self {
        case .noRegions: return "the stream header has no memory regions"
        case let .payloadTooShort(length): return "payload of \(length) bytes is shorter than a table with one run (\(PageTable.minimumPayload))"
        case let .regionOutOfRange(region, count): return "region \(region) is outside the \(count) regions of the header"
        case .noRuns: return "run count is 0"
        case let .tableExceedsPayload(runCount, payloadLength):
            return "\(runCount) runs need a \(8 + 16 * UInt64(runCount))-byte table but the payload is \(payloadLength) bytes"
        case let .reservedRunFlags(run, flags): return "run \(run) has reserved flags \(hex(flags))"
        case let .emptyRun(run): return "run \(run) has a page count of 0"
        case let .runOutOfOrder(run, firstPage, previousEnd):
            return "run \(run) starts at page \(firstPage), before the previous run's end \(previousEnd) (runs must ascend without overlap)"
        case let .runBeyondRegion(run, firstPage, pageCount, regionPages):
            return "run \(run) (pages \(firstPage) + \(pageCount)) runs past the region's \(regionPages) pages"
        case let .dataLengthMismatch(described, carried, atLeast):
            return "the runs describe \(atLeast ? "more than " : "")\(atLeast ? carried : described) data bytes but the payload carries \(carried) after the table"
        }
    }
}

/// The table rules, checked in this order so both codec sides and both decoder paths
/// report the same problem for the same bytes.
enum PageTableRules {
    /// From the record's payload length and the table's first 8 bytes; returns the table length.
    static func checkPrefix(
        region: UInt32, runCount: UInt32, payloadLength: UInt32, regions: [MemoryRegionDescriptor]
    ) throws(PageTableProblem) -> Int {
        guard !regions.isEmpty else { throw .noRegions }
        guard payloadLength >= PageTable.minimumPayload else { throw .payloadTooShort(length: payloadLength) }
        guard Int(region) < regions.count else { throw .regionOutOfRange(region: region, regionCount: regions.count) }
        guard runCount > 0 else { throw .noRuns }
        let tableLength = UInt64(PageTable.prefixSize) + UInt64(PageTable.runSize) * UInt64(runCount)
        guard tableLength <= UInt64(payloadLength) else { throw .tableExceedsPayload(runCount: runCount, payloadLength: payloadLength) }
        return Int(tableLength)
    }

    /// Running checks over the runs in table order.
    struct RunChecker {
        let regionPages: UInt64
        let pageSize: UInt64
        /// Payload bytes after the table.
        let carried: UInt64
        private(set) var index = 0
        private(set) var previousEnd: UInt64 = 0
        private(set) var dataBytes: UInt64 = 0
        private(set) var dataPages: UInt64 = 0
        private(set) var zeroPages: UInt64 = 0

        init(region: MemoryRegionDescriptor, carried: UInt64) {
            self.regionPages = region.pageCount
            self.pageSize = UInt64(region.pageSize)
            self.carried = carried
        }

        mutating func check(firstPage: UInt64, pageCount: UInt32, flags: UInt32) throws(PageTableProblem) {
            let run = index
            guard flags & ~PageRunFlags.known == 0 else { throw .reservedRunFlags(run: run, flags: flags & ~PageRunFlags.known) }
            guard pageCount > 0 else { throw .emptyRun(run: run) }
            guard firstPage >= previousEnd else { throw .runOutOfOrder(run: run, firstPage: firstPage, previousEnd: previousEnd) }
            let (end, overflow) = firstPage.addingReportingOverflow(UInt64(pageCount))
            guard !overflow && end <= regionPages else {
                throw .runBeyondRegion(run: run, firstPage: firstPage, pageCount: pageCount, regionPages: regionPages)
            }
            if flags & PageRunFlags.zero != 0 {
                zeroPages += UInt64(pageCount)
            } else {
                // pageCount < 2^32 and pageSize <= 2^30, so one run is below 2^62 bytes, and
                // dataBytes never exceeds `carried` (< 2^32) before this addition.
                dataBytes += UInt64(pageCount) * pageSize
                dataPages += UInt64(pageCount)
                guard dataBytes <= carried else { throw .dataLengthMismatch(described: dataBytes, carried: carried, atLeast: true) }
            }
            previousEnd = end
            index += 1
        }

        func finish() throws(PageTableProblem) {
            guard dataBytes == carried else { throw .dataLengthMismatch(described: dataBytes, carried: carried, atLeast: false) }
        }
    }
}

/// The stream-level order of pages records: rounds never decrease, and phase 1 (guest
/// running) never follows phase 2 (final pages). Shared by encoder and decoder.
struct PageOrder: Sendable {
    private(set) var lastRound: UInt64?
    private(set) var finalBegan = false

    enum Problem {
        case roundRegression(previous: UInt64)
        case phaseRegression
    }

    func problem(phase: StatePhase, round: UInt64) -> Problem? {
        if let lastRound, round < lastRound { return .roundRegression(previous: lastRound) }
        if phase == .preCopy && finalBegan { return .phaseRegression }
        return nil
    }

    mutating func record(phase: StatePhase, round: UInt64) {
        lastRound = round
        if phase == .stopCopy { finalBegan = true }
    }
}
