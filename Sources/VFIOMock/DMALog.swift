// Device-side DMA logging (DMA_LOGGING_START/STOP/REPORT): the ranges fixed at START and the
// pages the device wrote inside them, at the granularity the "driver" chose.
import SystemPackage
import VFIOSyscalls

struct DMALog {
    let pageSize: UInt64
    let ranges: [(iova: UInt64, length: UInt64)]
    /// Page numbers (iova / pageSize) written since they were last reported.
    private(set) var dirty: Set<UInt64> = []

    /// Maximum ranges one START may pass (a kernel page of 16-byte ranges).
    static let maxRanges = 256

    /// The granularity the mock driver picks for a requested page size: a power of two ≥ 4 KiB.
    static func granularity(forHint hint: UInt64) -> UInt64 {
        var size: UInt64 = 4096
        while size < hint && size < 1 << 30 { size <<= 1 }
        return size
    }

    init(pageSize: UInt64, ranges: [(iova: UInt64, length: UInt64)]) {
        self.pageSize = pageSize
        self.ranges = ranges
    }

    /// Logs a DMA write; only the parts inside the logged ranges count.
    mutating func record(iova: UInt64, length: UInt64) {
        let end = iova + length
        for r in ranges {
            let start = max(iova, r.iova), stop = min(end, r.iova + r.length)
            guard start < stop else { continue }
            var page = start / pageSize
            while page * pageSize < stop {
                dirty.insert(page)
                page += 1
            }
        }
    }

    /// Sets the report's bits (bit k ↔ `iova + k·reportPage`) for logged writes in
    /// `[iova, iova + length)` and clears them from the log.
    mutating func report(iova: UInt64, length: UInt64, reportPage: UInt64, bitmap: UInt, memory: UserMemory) throws(Errno) {
        let end = iova + length
        let hits = dirty.filter { $0 * pageSize < end && ($0 + 1) * pageSize > iova }.sorted()
        for page in hits {
            let start = max(page * pageSize, iova)
            let last = min((page + 1) * pageSize, end) - 1
            let firstBit = (start - iova) / reportPage
            let lastBit = (last - iova) / reportPage
            try setBitmapRun(memory, base: bitmap, first: firstBit, count: lastBit - firstBit + 1)
        }
        for page in hits where page * pageSize >= iova && (page + 1) * pageSize <= end {
            dirty.remove(page)
        }
    }
}
