// The target side of guest memory: pages arriving from a stream are read straight into the
// target region (no copy), ZERO runs zero-filled. The stream's region table is checked against
// the target's regions first, so a page can only land where the same page lives on the
// source; every placement is checked again against the region's bounds before a byte is
// written. Several receiving threads may load pages at once (different channels carry
// different pages); the counts sit behind a lock.
import Synchronization
import VFIOBuffers
import VFIOStream

/// What a load put into guest memory.
public struct MemoryLoadReport: Sendable, Hashable, Codable {
    public var records: UInt64 = 0
    public var dataPages: UInt64 = 0
    public var zeroPages: UInt64 = 0
    /// Page bytes written (data and zero fill).
    public var bytes: UInt64 = 0
    /// The last memory round that arrived.
    public var lastRound: UInt64?

    public init() {}
}

public final class GuestMemoryLoader: Sendable {
    public let memory: GuestMemory
    private let counts = Mutex(MemoryLoadReport())

    /// Every region must be writable.
    public init(memory: GuestMemory) throws(VFIOError) {
        for region in memory.regions where !region.writable {
            throw VFIOError(.permissionDenied, "guest memory region \(region.name) is read-only: a load cannot write pages into it", device: region.name)
        }
        self.memory = memory
    }

    public var report: MemoryLoadReport { counts.withLock { $0 } }

    /// Refuses a stream whose regions are not exactly the target's (start, length, page size).
    public func accept(regions: [MemoryRegionDescriptor], source: String) throws(VFIOError) {
        try memory.requireMatching(regions, source: source)
    }

    /// Loads one pages record whose table was validated against the stream header (and so,
    /// after `accept`, against the target): reads each data run from `source` straight into
    /// the region and zero-fills each ZERO run. Returns the CRC32C of the data read (0 when
    /// `checksums` is false) and how many data bytes arrived (fewer than the table's when the
    /// input ended inside the record).
    package func receive(_ table: PageTable, from source: any ByteSource, checksums: Bool) throws(VFIOError) -> (crc: UInt32, dataBytes: Int) {
        guard memory.regions.indices.contains(table.region) else {
            throw VFIOError(.streamCorrupt, "pages for region \(table.region), which the target does not have", device: source.name)
        }
        let region = memory.regions[table.region]
        guard UInt64(table.pageSize) == region.pageSize else {
            throw VFIOError(.streamCorrupt, "pages of \(table.pageSize) bytes for region \(region.name) of \(region.pageSize)-byte pages", device: source.name)
        }
        var crc: UInt32 = 0
        var arrived = 0
        var written: UInt64 = 0
        for placement in table.placements {
            let range = try region.writableRange(placement.regionBytes)
            if placement.run.isZero {
                region.buffer.zero(range)
                written += UInt64(range.count)
                continue
            }
            let got = try source.readFully(into: region.buffer, range)
            if checksums { crc = CRC32C.update(crc, region.buffer, range.lowerBound..<range.lowerBound + got) }
            arrived += got
            written += UInt64(got)
            if got < range.count { break }
        }
        counts.withLock {
            $0.records += 1
            $0.dataPages += table.dataPageCount
            $0.zeroPages += table.zeroPageCount
            $0.bytes += written
            $0.lastRound = max($0.lastRound ?? 0, table.round)
        }
        return (crc, arrived)
    }

    /// The push form, for a VMM with its own transport: `buffer[range]` holds whole pages of
    /// region `region` from `firstPage` on.
    public func write(region index: Int, firstPage: Int, from buffer: IOBuffer, range: Range<Int>) throws(VFIOError) {
        let region = try self.region(index)
        guard range.count % Int(region.pageSize) == 0, range.lowerBound >= 0, range.upperBound <= buffer.capacity else {
            throw .invalidUse("\(range.count) bytes are not whole \(region.pageSize)-byte pages inside the buffer")
        }
        let target = try region.byteRange(pages: firstPage..<firstPage + range.count / Int(region.pageSize))
        guard region.writable else { throw VFIOError(.permissionDenied, "guest memory region \(region.name) is read-only", device: region.name) }
        region.buffer.copy(from: buffer, range, to: target.lowerBound)
        counts.withLock {
            $0.dataPages += UInt64(range.count) / region.pageSize
            $0.bytes += UInt64(range.count)
        }
    }

    /// The push form of a ZERO run.
    public func zero(region index: Int, pages: Range<Int>) throws(VFIOError) {
        let region = try self.region(index)
        region.buffer.zero(try region.byteRange(pages: pages))
        counts.withLock {
            $0.zeroPages += UInt64(pages.count)
            $0.bytes += UInt64(pages.count) * region.pageSize
        }
    }

    private func region(_ index: Int) throws(VFIOError) -> GuestMemoryRegion {
        guard memory.regions.indices.contains(index) else { throw .invalidUse("memory region \(index) outside the target's \(memory.regions.count)") }
        return memory.regions[index]
    }
}
