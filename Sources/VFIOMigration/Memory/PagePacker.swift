// Turns dirty runs of a guest memory region into pages records: the fused zero-page scan and
// CRC32C decide which pages travel as ZERO runs and give the data's checksum in one pass, the
// record header and run table go into a small control buffer, and the data are written
// straight from guest memory (a gather write). Pages sent while the guest may still write
// them (pre-copy) with record checksums go through a copy first, so the checksum covers
// exactly the bytes that were sent; final pages, and streams without record checksums, are
// never copied.
import VFIOBuffers
import VFIOCore
import VFIOStream

/// One pages record ready to write: the control bytes, then each data slice, in order.
struct PackedPages {
    var slices: [BufferSlice]
    var recordLength: Int
    var dataPages: Int
    var zeroPages: Int
}

struct PagePacker {
    /// The largest number of pages one record of this page size carries: every page its own
    /// run (alternating zero and data pages) must still fit the payload limit.
    static func maxPages(pageSize: UInt64, maxPayload: UInt32) -> Int {
        max(0, (Int(maxPayload) - PageTable.prefixSize) / (Int(pageSize) + PageTable.runSize))
    }

    /// Control space (record header and run table) for a record of `pages` pages.
    static func controlSpace(pages: Int) -> Int { StreamFormat.recordHeaderSize + PageTable.prefixSize + PageTable.runSize * pages }

    private var zeroBits: [UInt64] = []
    private var scratch: [UInt64] = []

    /// Cuts `runs` (ascending, inside the region) into groups of at most `maxPages` pages,
    /// none crossing a multiple of `stripePages` (when given): each group is one record.
    static func records(_ runs: [DirtyRun], maxPages: Int, stripePages: Int? = nil) -> [[DirtyRun]] {
        precondition(maxPages > 0, "a record carries at least one page")
        var groups: [[DirtyRun]] = []
        var current: [DirtyRun] = []
        var pages = 0
        var stripe = -1
        for run in runs {
            var first = run.firstPage
            let end = run.firstPage + run.pageCount
            while first < end {
                var limit = end
                if let stripePages {
                    let s = first / stripePages
                    if s != stripe, !current.isEmpty {
                        groups.append(current)
                        current = []
                        pages = 0
                    }
                    stripe = s
                    limit = min(limit, (s + 1) * stripePages)
                }
                if pages == maxPages {
                    groups.append(current)
                    current = []
                    pages = 0
                }
                let take = min(limit - first, maxPages - pages)
                current.append(DirtyRun(firstPage: first, pageCount: take))
                pages += take
                first += take
            }
        }
        if !current.isEmpty { groups.append(current) }
        return groups
    }

    /// Frames one record of `runs` (at most maxPages pages) of region `index`. The control
    /// bytes go to `control[controlStart...]`; with `bounce`, the pages are copied there
    /// first and sent from the copy.
    mutating func pack(
        region index: Int, _ region: GuestMemoryRegion, runs: [DirtyRun], phase: StatePhase, round: UInt64,
        encoder: inout StreamEncoder, control: IOBuffer, controlStart: Int, bounce: BufferSlice?
    ) throws(VFIOError) -> PackedPages {
        let pageSize = Int(region.pageSize)
        let checksums = encoder.header.hasRecordChecksums
        let pageCount = runs.reduce(0) { $0 + $1.pageCount }
        let words = (pageCount + 63) / 64
        if zeroBits.count < words { zeroBits = Array(repeating: 0, count: words) }
        for i in 0..<words { zeroBits[i] = 0 }

        // Where each run's bytes are read from: guest memory, or the copy.
        var sources: [BufferSlice] = []
        sources.reserveCapacity(runs.count)
        var copied = bounce?.range.lowerBound ?? 0
        for run in runs {
            let bytes = try region.bytes(pages: run.pages)
            if let bounce {
                precondition(copied + bytes.range.count <= bounce.range.upperBound, "bounce space sized for the record")
                bounce.buffer.copy(from: region.buffer, bytes.range, to: copied)
                sources.append(BufferSlice(bounce.buffer, copied..<copied + bytes.range.count))
                copied += bytes.range.count
            } else {
                sources.append(bytes)
            }
        }

        // One pass: zero pages found and the data's CRC32C computed (data = non-zero pages, in order).
        var crc: UInt32 = 0
        var bitOffset = 0
        for (run, source) in zip(runs, sources) {
            let runWords = (run.pageCount + 63) / 64
            if scratch.count < runWords { scratch = Array(repeating: 0, count: runWords) }
            for i in 0..<runWords { scratch[i] = 0 }
            do {
                if checksums {
                    crc = try CRC32C.updateNonzeroPages(crc, source.buffer, source.range, pageSize: pageSize, zeroBitmap: &scratch)
                } else {
                    _ = try CRC32C.findZeroPages(source.buffer, source.range, pageSize: pageSize, zeroBitmap: &scratch)
                }
            } catch {
                preconditionFailure("page scan of whole pages refused: \(error)")
            }
            for p in 0..<run.pageCount where scratch[p >> 6] & (1 << UInt64(p & 63)) != 0 {
                zeroBits[(bitOffset + p) >> 6] |= 1 << UInt64((bitOffset + p) & 63)
            }
            bitOffset += run.pageCount
        }

        // The run table: each dirty run split where pages turn zero or back.
        var table: [PageRun] = []
        var data: [BufferSlice] = []
        var dataPages = 0, zeroPages = 0
        bitOffset = 0
        for (run, source) in zip(runs, sources) {
            var p = 0
            while p < run.pageCount {
                let zero = zeroBits[(bitOffset + p) >> 6] & (1 << UInt64((bitOffset + p) & 63)) != 0
                var q = p + 1
                while q < run.pageCount, (zeroBits[(bitOffset + q) >> 6] & (1 << UInt64((bitOffset + q) & 63)) != 0) == zero { q += 1 }
                table.append(PageRun(firstPage: UInt64(run.firstPage + p), pageCount: UInt32(q - p), isZero: zero))
                if zero {
                    zeroPages += q - p
                } else {
                    dataPages += q - p
                    let start = source.range.lowerBound + p * pageSize
                    data.append(BufferSlice(source.buffer, start..<start + (q - p) * pageSize))
                }
                p = q
            }
            bitOffset += run.pageCount
        }
        let frame: StreamEncoder.PagesFrame
        do {
            frame = try encoder.framePages(region: index, phase: phase, round: round, runs: table, dataCRC: checksums ? crc : 0, into: control, at: controlStart)
        } catch {
            throw .invalidUse("pages record of region \(region.name): \(error)")
        }
        return PackedPages(
            slices: [BufferSlice(control, controlStart..<controlStart + frame.controlLength)] + data,
            recordLength: frame.recordLength, dataPages: dataPages, zeroPages: zeroPages)
    }
}
