// Header field 8: one guest memory region that page records refer to by index.

/// A guest memory region (an IOVA or guest-physical range). Page records name a region by
/// its index (the order of the fields) and pages by their index within it.
public struct MemoryRegionDescriptor: Sendable, Hashable, Codable, CustomStringConvertible {
    /// First byte address; a multiple of `pageSize`.
    public var start: UInt64
    /// Bytes; a multiple of `pageSize`, more than 0; `start + length` fits in 64 bits.
    public var length: UInt64
    /// A power of two in 4096 ... 1 GiB.
    public var pageSize: UInt32
    /// Reserved: 0.
    public var flags: UInt32

    public init(start: UInt64, length: UInt64, pageSize: UInt32, flags: UInt32 = 0) {
        self.start = start
        self.length = length
        self.pageSize = pageSize
        self.flags = flags
    }

    /// Pages in the region.
    public var pageCount: UInt64 { pageSize == 0 ? 0 : length / UInt64(pageSize) }
    /// One past the last byte (only meaningful for a valid region).
    public var end: UInt64 { start &+ length }

    /// Why this region is invalid on its own, or nil.
    var problem: String? {
        let size = Int(pageSize)
        guard size >= StreamFormat.minimumPageSize && size <= StreamFormat.maximumPageSize && size & (size - 1) == 0 else {
            return "page size \(pageSize) is not a power of two in \(StreamFormat.minimumPageSize)...\(StreamFormat.maximumPageSize)"
        }
        if flags != 0 { return "reserved flags \(hex(flags)) set" }
        if length == 0 { return "length is 0" }
        if start % UInt64(pageSize) != 0 { return "start \(hex(start)) is not a multiple of the page size \(pageSize)" }
        if length % UInt64(pageSize) != 0 { return "length \(length) is not a multiple of the page size \(pageSize)" }
        if length > UInt64.max - start { return "start \(hex(start)) + length \(length) wraps past 2^64" }
        return nil
    }

    public var description: String {
        "\(hex(start))..<\(hex(end)) (\(pageCount) pages of \(pageSize) B)"
    }
}

/// Size of the memoryRegion field value: start u64, length u64, pageSize u32, flags u32.
let memoryRegionFieldSize = 24

/// One pair of overlapping regions (occurrence indices), or nil. O(n log n), so a header
/// full of regions costs no more than sorting them.
func overlappingRegions(in regions: [MemoryRegionDescriptor]) -> (later: Int, earlier: Int)? {
    let order = regions.indices.sorted { (regions[$0].start, $0) < (regions[$1].start, $1) }
    // Sorted by start, a region overlaps an earlier-starting one exactly when it starts
    // before the furthest end seen so far.
    var furthest: Int?
    for index in order {
        if let previous = furthest, regions[index].start < regions[previous].end {
            return (later: max(index, previous), earlier: min(index, previous))
        }
        if furthest == nil || regions[index].end > regions[furthest!].end { furthest = index }
    }
    return nil
}
