// One region of guest memory as the engine sees it: where it sits in the devices' IOVA space,
// its page size (the unit of dirty tracking and of pages records) and its bytes. Every access
// the engine makes goes through `bytes(pages:)`, which checks the pages against the region,
// so no page number from a tracker or a stream can reach memory outside it.
import VFIOBuffers
import VFIOStream

public final class GuestMemoryRegion: @unchecked Sendable, CustomStringConvertible {
    // Sendable by contract: the engine reads the bytes on several threads and writes only
    // disjoint pages from several threads (one channel each); the guest and its devices write
    // them anyway, which is what dirty tracking is for. `buffer.count` is never used.

    /// First IOVA (guest-physical address as the devices see it); a multiple of `pageSize`.
    public let iova: UInt64
    /// Bytes; a non-zero multiple of `pageSize`.
    public let length: UInt64
    /// A power of two in 4 KiB ... 1 GiB.
    public let pageSize: UInt64
    /// The region's memory, `length` bytes from offset 0.
    public let buffer: IOBuffer
    /// False for memory mapped read-only (a save): the engine refuses to load pages into it.
    public let writable: Bool
    /// How messages name it (a file path, "vmm ram 0").
    public let name: String

    public init(iova: UInt64, length: UInt64, pageSize: UInt64 = 4096, buffer: IOBuffer, writable: Bool, name: String) throws(VFIOError) {
        func refuse(_ why: String) -> VFIOError { VFIOError(.invalidArgument, "guest memory region \(name): \(why)", device: name) }
        guard pageSize >= UInt64(StreamFormat.minimumPageSize), pageSize <= UInt64(StreamFormat.maximumPageSize), pageSize.nonzeroBitCount == 1 else {
            throw refuse("page size \(pageSize) is not a power of two in 4 KiB...1 GiB")
        }
        guard length > 0, length % pageSize == 0 else { throw refuse("length \(length) is not a non-zero multiple of the page size \(pageSize)") }
        guard iova % pageSize == 0 else { throw refuse("IOVA 0x\(String(iova, radix: 16)) is not a multiple of the page size \(pageSize)") }
        guard length <= UInt64.max - iova else { throw refuse("IOVA 0x\(String(iova, radix: 16)) + length \(length) wraps past 2^64") }
        guard UInt64(buffer.capacity) >= length else { throw refuse("the memory holds \(buffer.capacity) bytes, fewer than the region's \(length)") }
        self.iova = iova
        self.length = length
        self.pageSize = pageSize
        self.buffer = buffer
        self.writable = writable
        self.name = name
    }

    public var pageCount: Int { Int(length / pageSize) }
    public var end: UInt64 { iova + length }

    /// What a stream header records about the region.
    public var descriptor: MemoryRegionDescriptor {
        MemoryRegionDescriptor(start: iova, length: length, pageSize: UInt32(pageSize))
    }

    /// The byte range of `pages` in the region's memory, checked against the region.
    public func byteRange(pages: Range<Int>) throws(VFIOError) -> Range<Int> {
        guard pages.lowerBound >= 0, pages.upperBound <= pageCount else {
            throw VFIOError(.invalidArgument, "pages \(pages.lowerBound)..<\(pages.upperBound) are outside region \(name)'s \(pageCount) pages", device: name)
        }
        let size = Int(pageSize)
        return pages.lowerBound * size..<pages.upperBound * size
    }

    /// `pages` of the region as a slice of its memory.
    public func bytes(pages: Range<Int>) throws(VFIOError) -> BufferSlice {
        BufferSlice(buffer, try byteRange(pages: pages))
    }

    /// The byte range of `offsets` (relative to the region's start), checked, for a load.
    public func writableRange(_ offsets: Range<UInt64>) throws(VFIOError) -> Range<Int> {
        guard writable else { throw VFIOError(.permissionDenied, "guest memory region \(name) is read-only: pages cannot be loaded into it", device: name) }
        guard offsets.upperBound <= length else {
            throw VFIOError(.streamCorrupt, "bytes \(offsets.lowerBound)..<\(offsets.upperBound) lie outside region \(name)'s \(length) bytes", device: name)
        }
        return Int(offsets.lowerBound)..<Int(offsets.upperBound)
    }

    public var description: String {
        "\(name): IOVA 0x\(String(iova, radix: 16))..<0x\(String(end, radix: 16)) (\(pageCount) pages of \(pageSize) B\(writable ? "" : ", read-only"))"
    }
}
