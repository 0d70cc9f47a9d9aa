// type1 container dirty tracking (VFIO_IOMMU_DIRTY_PAGES): START once, GET_BITMAP every read,
// STOP at the end, and UNMAP_DMA with GET_DIRTY_BITMAP for a mapping that goes away while
// tracking, so its last bits are not lost. The kernel's rules shape each read: the bitmap's
// page size is the smallest the MIGRATION capability offers, one bitmap may not exceed the
// capability's maximum size, and a range may not bisect a mapping, so reads are split at
// mapping boundaries into pieces under the cap.
import VFIOCore
import VFIOSyscalls

public final class Type1DirtyTracker: DirtyPageTracker {
    public let containers: [VFIOContainer]
    public let memory: GuestMemory
    public private(set) var report: DirtyTrackerReport
    private var started = false
    /// Per container, from its MIGRATION capability at start.
    private var geometry: [(pageSize: UInt64, maxPages: UInt64)] = []
    /// Bits harvested by unmaps, handed out with the next read.
    private var unmapped: [DirtyBitmap]

    /// `precise` says whether every group of the containers is in the pinned-page scope
    /// (emulated-IOMMU mdevs): otherwise the kernel reports every mapped page dirty.
    public init(containers: [VFIOContainer], memory: GuestMemory, precise: Bool, reason: String) throws(VFIOError) {
        var unique: [VFIOContainer] = []
        for c in containers where !unique.contains(where: { $0 === c }) { unique.append(c) }
        guard !unique.isEmpty else { throw VFIOError(.invalidArgument, "type1 dirty tracking needs at least one container") }
        self.containers = unique
        self.memory = memory
        var text = reason
        if !precise {
            text += "; imprecise: a group outside the pinned-page scope (a physical device) makes the kernel report every mapped page dirty at every read"
        }
        report = DirtyTrackerReport(kind: .type1Container, reason: text, precise: precise)
        unmapped = try Self.emptyBitmaps(memory)
    }

    static func emptyBitmaps(_ memory: GuestMemory) throws(VFIOError) -> [DirtyBitmap] {
        var result: [DirtyBitmap] = []
        for r in memory.regions {
            do { result.append(try DirtyBitmap(pageCount: r.pageCount, pageSize: r.pageSize)) } catch {
                throw VFIOError(.invalidArgument, "guest memory region \(r.name): \(error)")
            }
        }
        return result
    }

    public func start() throws(VFIOError) {
        guard !started else { return }
        geometry = []
        for container in containers {
            let info = try container.iommuInfo()
            guard let migration = info.migration, migration.pageSizes != 0 else {
                throw VFIOError(.notSupported, "the container's IOMMU has no MIGRATION capability, so it cannot track dirty pages (an iommufd compatibility container, or a kernel before 5.8)", device: "container")
            }
            let pageSize = UInt64(1) << UInt64(migration.pageSizes.trailingZeroBitCount)
            geometry.append((pageSize, migration.maxDirtyBitmapBytes * 8))
        }
        report.pageSize = geometry.map(\.pageSize).max()
        for container in containers { try container.startDirtyTracking() }
        started = true
        var scope: [String] = []
        for c in containers.indices {
            for piece in try pieces(container: c) { scope.append("container \(c): \(piece.range) in region \(piece.region)") }
        }
        report.scope = scope
    }

    public func collect(into bitmaps: inout [DirtyBitmap]) throws(VFIOError) {
        guard started else { throw .invalidUse("collect before the type1 tracker was started") }
        try requireShape(bitmaps)
        for i in bitmaps.indices where !unmapped[i].isEmpty {
            try merge(unmapped[i], into: &bitmaps[i])
            unmapped[i].removeAll()
        }
        for c in containers.indices {
            for piece in try pieces(container: c) {
                var words = [UInt64](repeating: 0, count: Self.words(piece.range.length / geometry[c].pageSize))
                try containers[c].dirtyBitmap(of: piece.range, pageSize: geometry[c].pageSize, into: &words)
                try place(words, of: piece, pageSize: geometry[c].pageSize, into: &bitmaps)
            }
        }
        report.reads += 1
    }

    public func stop() throws(VFIOError) {
        guard started else { return }
        for container in containers { try container.stopDirtyTracking() }
        started = false
    }

    /// Unmaps `range` (whole mappings) of `container` while tracking, keeping the bits the
    /// kernel hands back with the unmap for the next read. Returns the bytes unmapped.
    @discardableResult
    public func unmap(_ range: DMARange, from container: VFIOContainer) throws(VFIOError) -> UInt64 {
        guard let c = containers.firstIndex(where: { $0 === container }) else {
            throw .invalidUse("unmap through a type1 tracker of a container it does not track")
        }
        guard started else { return try container.unmap(range) }
        var total: UInt64 = 0
        for piece in try pieces(container: c, within: range) {
            var words = [UInt64](repeating: 0, count: Self.words(piece.range.length / geometry[c].pageSize))
            total += try container.unmap(piece.range, pageSize: geometry[c].pageSize, dirtyBitmap: &words)
            try place(words, of: piece, pageSize: geometry[c].pageSize, into: &unmapped)
        }
        return total
    }

    // MARK: pieces

    /// One GET_BITMAP (or unmap) range and the region it lies in.
    package struct Piece: Equatable, Sendable {
        package var region: Int
        package var range: DMARange
    }

    static func words(_ pages: UInt64) -> Int { Int((pages + 63) / 64) }

    func pieces(container c: Int, within limit: DMARange? = nil) throws(VFIOError) -> [Piece] {
        try Self.plan(mappings: containers[c].mappings, memory: memory, pageSize: geometry[c].pageSize, maxPages: geometry[c].maxPages, within: limit)
    }

    /// The GET_BITMAP ranges for `mappings`: grouped, per region, into runs that never cut a
    /// mapping and whose bitmaps stay within `maxPages` bits. A region with no known mappings
    /// (the VMM mapped it itself) is read whole when it fits. With `limit`, only the mappings
    /// inside it (an unmap).
    package static func plan(
        mappings known: [DMARange], memory: GuestMemory, pageSize: UInt64, maxPages cap: UInt64, within limit: DMARange? = nil
    ) throws(VFIOError) -> [Piece] {
        var result: [Piece] = []
        for (index, region) in memory.regions.enumerated() {
            if let limit, limit.end <= region.iova || limit.iova >= region.end { continue }
            let inside = known.filter { $0.iova < region.end && $0.end > region.iova }
                .filter { limit == nil || ($0.iova >= limit!.iova && $0.end <= limit!.end) }
            for m in inside where m.iova < region.iova || m.end > region.end {
                throw VFIOError(.invalidArgument, "mapping \(m) straddles the edge of guest memory region \(region.name): map each region on its own")
            }
            if inside.isEmpty {
                if limit != nil { continue }
                guard region.length / pageSize <= cap else {
                    throw VFIOError(.invalidArgument, "guest memory region \(region.name) needs a bitmap above the kernel's cap of \(cap) pages and was not mapped through this container, so it cannot be split at its mappings")
                }
                result.append(Piece(region: index, range: DMARange(iova: region.iova, length: region.length)))
                continue
            }
            var start = inside[0].iova, end = inside[0].end
            for m in inside {
                guard m.length / pageSize <= cap else {
                    throw VFIOError(.notSupported, "mapping \(m) needs a dirty bitmap of \(m.length / pageSize) pages, above the kernel's cap of \(cap)")
                }
                if (m.end - start) / pageSize > cap {
                    result.append(Piece(region: index, range: DMARange(iova: start, length: end - start)))
                    start = m.iova
                }
                end = m.end
            }
            result.append(Piece(region: index, range: DMARange(iova: start, length: end - start)))
        }
        return result
    }

    /// ORs a piece's kernel bitmap (bits at `pageSize`, relative to the piece) into its region.
    private func place(_ words: [UInt64], of piece: Piece, pageSize: UInt64, into bitmaps: inout [DirtyBitmap]) throws(VFIOError) {
        let region = memory.regions[piece.region]
        do {
            let bits = try DirtyBitmap(words: words, pageCount: Int(piece.range.length / pageSize), pageSize: pageSize)
            let offset = piece.range.iova - region.iova
            guard offset % region.pageSize == 0 else {
                throw VFIOError(.invalidArgument, "mapping \(piece.range) does not start on a page of region \(region.name) (\(region.pageSize) B)")
            }
            var local = bits.pageSize == region.pageSize ? bits : try bits.converted(toPageSize: region.pageSize)
            let first = Int(offset / region.pageSize)
            if local.pageCount > region.pageCount - first { local = try local.slice(pages: 0..<(region.pageCount - first)) }
            try bitmaps[piece.region].insert(local, atPage: first)
        } catch let error as DirtyBitmapError {
            throw VFIOError(.invalidArgument, "type1 dirty bitmap of \(piece.range): \(error)")
        } catch let error as VFIOError {
            throw error
        } catch {
            preconditionFailure("unexpected \(error)")
        }
    }

    private func merge(_ bits: DirtyBitmap, into bitmap: inout DirtyBitmap) throws(VFIOError) {
        do { try bitmap.formUnion(bits) } catch { throw .invalidUse("dirty bitmaps do not match the memory: \(error)") }
    }

    private func requireShape(_ bitmaps: [DirtyBitmap]) throws(VFIOError) {
        guard bitmaps.count == memory.regions.count,
              zip(bitmaps, memory.regions).allSatisfy({ $0.pageCount == $1.pageCount && $0.pageSize == $1.pageSize }) else {
            throw .invalidUse("dirty bitmaps do not match the tracker's \(memory.regions.count) memory regions")
        }
    }
}
