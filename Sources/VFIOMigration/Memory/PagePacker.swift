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

    /// Bytes copied and scanned at a time for live pages: small enough to stay in L1/L2.
    static let copyPiece = 64 << 10

    /// Control space (record header and run table) for a record of `pages` pages.
    static func controlSpace(pages: Int) -> Int { StreamFormat.recordHeaderSize + PageTable.prefixSize + PageTable.runSize * pages }


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
        let prepared = try Self.prepare(region, runs: runs, checksums: encoder.header.hasRecordChecksums, bounce: bounce)
        return try Self.frame(prepared, region: index, regionName: region.name, phase: phase, round: round, encoder: &encoder, control: control, controlStart: controlStart)
    }

    /// The expensive half, safe to run for several records at once: the copy (with
    /// `bounce`), the fused zero scan and CRC32C, and the run table.
    static func prepare(_ region: GuestMemoryRegion, runs: [DirtyRun], checksums: Bool, bounce: BufferSlice?) throws(VFIOError) -> PreparedPages {
        let pageSize = Int(region.pageSize)
        let pageCount = runs.reduce(0) { $0 + $1.pageCount }
        var zeroBits = [UInt64](repeating: 0, count: (pageCount + 63) / 64)
        var scratch: [UInt64] = []

        // Where each run's bytes are read from: guest memory, or the copy.
        var sources: [BufferSlice] = []
        sources.reserveCapacity(runs.count)
        var copied = bounce?.range.lowerBound ?? 0
        for run in runs {
            let bytes = try region.bytes(pages: run.pages)
            if let bounce {
                precondition(copied + bytes.range.count <= bounce.range.upperBound, "bounce space sized for the record")
                sources.append(BufferSlice(bounce.buffer, copied..<copied + bytes.range.count))
                copied += bytes.range.count
            } else {
                sources.append(bytes)
            }
        }

        // One pass: zero pages found and the data's CRC32C computed (data = non-zero pages, in
        // order). A copy goes a piece at a time, so the scan reads what was just copied from
        // the nearest cache.
        var crc: UInt32 = 0
        var bitOffset = 0
        let piecePages = bounce == nil ? Int.max : max(1, Self.copyPiece / pageSize)
        for (run, source) in zip(runs, sources) {
            var done = 0
            while done < run.pageCount {
                let count = min(piecePages, run.pageCount - done)
                let range = source.range.lowerBound + done * pageSize..<source.range.lowerBound + (done + count) * pageSize
                if bounce != nil {
                    let from = (run.firstPage + done) * pageSize
                    source.buffer.copy(from: region.buffer, from..<from + count * pageSize, to: range.lowerBound)
                }
                let words = (count + 63) / 64
                if scratch.count < words { scratch = Array(repeating: 0, count: words) }
                for i in 0..<words { scratch[i] = 0 }
                do {
                    if checksums {
                        crc = try CRC32C.updateNonzeroPages(crc, source.buffer, range, pageSize: pageSize, zeroBitmap: &scratch)
                    } else {
                        _ = try CRC32C.findZeroPages(source.buffer, range, pageSize: pageSize, zeroBitmap: &scratch)
                    }
                } catch {
                    preconditionFailure("page scan of whole pages refused: \(error)")
                }
                for p in 0..<count where scratch[p >> 6] & (1 << UInt64(p & 63)) != 0 {
                    let bit = bitOffset + done + p
                    zeroBits[bit >> 6] |= 1 << UInt64(bit & 63)
                }
                done += count
            }
            bitOffset += run.pageCount
        }

        // The run table: each dirty run split where pages turn zero or back.
        var prepared = PreparedPages(table: [], data: [], crc: checksums ? crc : 0, dataPages: 0, zeroPages: 0)
        bitOffset = 0
        func isZero(_ bit: Int) -> Bool { zeroBits[bit >> 6] & (1 << UInt64(bit & 63)) != 0 }
        for (run, source) in zip(runs, sources) {
            var p = 0
            while p < run.pageCount {
                let zero = isZero(bitOffset + p)
                var q = p + 1
                while q < run.pageCount, isZero(bitOffset + q) == zero { q += 1 }
                prepared.table.append(PageRun(firstPage: UInt64(run.firstPage + p), pageCount: UInt32(q - p), isZero: zero))
                if zero {
                    prepared.zeroPages += q - p
                } else {
                    prepared.dataPages += q - p
                    let start = source.range.lowerBound + p * pageSize
                    prepared.data.append(BufferSlice(source.buffer, start..<start + (q - p) * pageSize))
                }
                p = q
            }
            bitOffset += run.pageCount
        }
        return prepared
    }

    /// The cheap half, in stream order: the record header (sequence number, CRC) and table.
    static func frame(
        _ prepared: PreparedPages, region index: Int, regionName: String, phase: StatePhase, round: UInt64,
        encoder: inout StreamEncoder, control: IOBuffer, controlStart: Int
    ) throws(VFIOError) -> PackedPages {
        let frame: StreamEncoder.PagesFrame
        do {
            frame = try encoder.framePages(region: index, phase: phase, round: round, runs: prepared.table, dataCRC: prepared.crc, into: control, at: controlStart)
        } catch {
            throw .invalidUse("pages record of region \(regionName): \(error)")
        }
        return PackedPages(
            slices: [BufferSlice(control, controlStart..<controlStart + frame.controlLength)] + prepared.data,
            recordLength: frame.recordLength, dataPages: prepared.dataPages, zeroPages: prepared.zeroPages)
    }
}

/// A record's pages scanned and checksummed, not yet framed.
struct PreparedPages {
    var table: [PageRun]
    var data: [BufferSlice]
    var crc: UInt32
    var dataPages: Int
    var zeroPages: Int
}
