// The guest memory of a migration: its regions in the order the stream numbers them. The
// regions may not overlap in IOVA space; a load checks the stream's region table against
// these before any page is written.
import VFIOStream

public final class GuestMemory: Sendable, CustomStringConvertible {
    public let regions: [GuestMemoryRegion]

    public init(_ regions: [GuestMemoryRegion]) throws(VFIOError) {
        guard !regions.isEmpty else { throw VFIOError(.invalidArgument, "guest memory needs at least one region") }
        let order = regions.indices.sorted { regions[$0].iova < regions[$1].iova }
        for (a, b) in zip(order, order.dropFirst()) where regions[b].iova < regions[a].end {
            throw VFIOError(.invalidArgument, "guest memory regions \(regions[a].name) and \(regions[b].name) overlap in IOVA space")
        }
        self.regions = regions
    }

    /// What a stream header records: one descriptor per region, in order.
    public var descriptors: [MemoryRegionDescriptor] { regions.map(\.descriptor) }

    public var totalBytes: UInt64 { regions.reduce(0) { $0 + $1.length } }
    public var largestPageSize: UInt64 { regions.map(\.pageSize).max() ?? 4096 }

    /// Throws unless `stream` lists exactly these regions (same start, length and page size,
    /// in the same order): what a load checks before it writes a single page.
    public func requireMatching(_ stream: [MemoryRegionDescriptor], source: String) throws(VFIOError) {
        guard stream.count == regions.count else {
            throw VFIOError(.streamIncompatible, "the stream carries \(stream.count) memory region(s) but the target has \(regions.count)", device: source)
        }
        for (i, (theirs, ours)) in zip(stream, regions).enumerated() {
            var differences: [String] = []
            if theirs.start != ours.iova { differences.append("start 0x\(String(theirs.start, radix: 16)) vs 0x\(String(ours.iova, radix: 16))") }
            if theirs.length != ours.length { differences.append("length \(theirs.length) vs \(ours.length)") }
            if UInt64(theirs.pageSize) != ours.pageSize { differences.append("page size \(theirs.pageSize) vs \(ours.pageSize)") }
            guard differences.isEmpty else {
                throw VFIOError(.streamIncompatible, "memory region \(i) of the stream does not match the target's \(ours.name): " + differences.joined(separator: ", ") + " (stream vs target)", device: source)
            }
        }
    }

    public var description: String { regions.map(\.description).joined(separator: "; ") }
}
