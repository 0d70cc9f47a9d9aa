// What the page writers share: the checks that a region index names a region of both the
// memory and the stream header, the counts they keep, and the stripe that routes a page to
// its channel (so every version of a page travels on the same channel, in order).
import VFIOCore
import VFIOStream

/// Pages and records a writer sent.
public struct PageTransferCounts: Sendable, Hashable, Codable {
    public var records: UInt64 = 0
    public var dataPages: UInt64 = 0
    public var zeroPages: UInt64 = 0
    /// Bytes of the records (control and data).
    public var bytes: UInt64 = 0

    public init() {}

    mutating func add(_ packed: PackedPages) {
        records += 1
        dataPages += UInt64(packed.dataPages)
        zeroPages += UInt64(packed.zeroPages)
        bytes += UInt64(packed.recordLength)
    }

    func adding(_ packed: PackedPages) -> PageTransferCounts {
        var sum = self
        sum.add(packed)
        return sum
    }

    mutating func add(_ other: PageTransferCounts) {
        records += other.records
        dataPages += other.dataPages
        zeroPages += other.zeroPages
        bytes += other.bytes
    }
}

enum PageRouting {
    /// Bytes of guest memory per stripe: pages of one stripe always use one channel.
    static let stripeBytes: UInt64 = 2 << 20

    static func region(_ index: Int, of memory: GuestMemory, header: StreamHeader) throws(VFIOError) -> GuestMemoryRegion {
        guard memory.regions.indices.contains(index), header.regions.indices.contains(index) else {
            throw .invalidUse("memory region \(index) is not one of the stream's \(header.regions.count) regions")
        }
        let region = memory.regions[index]
        guard header.regions[index] == region.descriptor else {
            throw .invalidUse("memory region \(index) (\(region)) is not the stream header's \(header.regions[index])")
        }
        guard PagePacker.maxPages(pageSize: region.pageSize, maxPayload: header.maxPayload) >= 1 else {
            throw .invalidUse("pages of \(region.pageSize) bytes do not fit the stream's \(header.maxPayload)-byte records")
        }
        return region
    }

    /// The channel of the stripe holding `page` of `region`.
    static func channel(of page: Int, in region: GuestMemoryRegion, channels: Int) -> Int {
        Int(((region.iova + UInt64(page) * region.pageSize) / stripeBytes) % UInt64(channels))
    }

    /// Pages per stripe in `region` (at least one page).
    static func stripePages(_ region: GuestMemoryRegion) -> Int { max(1, Int(stripeBytes / region.pageSize)) }
}
