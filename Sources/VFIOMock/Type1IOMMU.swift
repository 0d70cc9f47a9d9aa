// The type1 IOMMU backend of an emulated container: DMA mappings, the IOVA ranges a
// QEMU intel-iommu guest reports, and dirty tracking with the kernel's two scopes.
import SystemPackage

final class Type1IOMMU {
    struct Mapping {
        var iova: UInt64
        var size: UInt64
        var vaddr: UInt64
        var readable: Bool
        var writable: Bool
        var vaddrInvalid = false
        var end: UInt64 { iova + size }
    }

    static let pageSize: UInt64 = 4096
    /// Every power of two from 4 KiB up, as intel-iommu reports through type1.
    static let pageSizeBitmap: UInt64 = ~(pageSize - 1)
    /// Valid IOVA ranges (inclusive ends): below the MSI window and above it up to 39 bits.
    static let iovaRanges: [(start: UInt64, last: UInt64)] = [(0, 0xFEDF_FFFF), (0xFEF0_0000, 0x7F_FFFF_FFFF)]

    let v2: Bool
    private(set) var mappings: [Mapping] = [] // sorted by iova, never overlapping
    private(set) var tracking = false
    /// Page numbers (iova / 4096) written by emulated devices since the last harvest.
    private var dirtyPages: Set<UInt64> = []

    init(v2: Bool) { self.v2 = v2 }

    var dmaAvail: Int { Type1Info.dmaEntryLimit - mappings.count }

    /// Index of the mapping containing `address`.
    func mappingIndex(containing address: UInt64) -> Int? {
        var lo = 0, hi = mappings.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if mappings[mid].end <= address { lo = mid + 1 } else { hi = mid }
        }
        return lo < mappings.count && mappings[lo].iova <= address ? lo : nil
    }

    /// Indexes of mappings overlapping `[start, end)`.
    func overlapping(_ start: UInt64, _ end: UInt64) -> Range<Int> {
        var lo = 0, hi = mappings.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if mappings[mid].end <= start { lo = mid + 1 } else { hi = mid }
        }
        var upper = lo
        while upper < mappings.count && mappings[upper].iova < end { upper += 1 }
        return lo..<upper
    }

    // MARK: MAP_DMA

    func map(iova: UInt64, size: UInt64, vaddr: UInt64, flags: UInt32, checkRanges: Bool = true) throws(Errno) {
        let readable = flags & DMAMapFlag.read != 0
        let writable = flags & DMAMapFlag.write != 0
        let setVaddr = flags & DMAMapFlag.vaddr != 0
        let prot = readable || writable
        if prot == setVaddr { throw .invalidArgument }
        let mask = Self.pageSize - 1
        if size == 0 || (size | iova | vaddr) & mask != 0 { throw .invalidArgument }
        if iova &+ size &- 1 < iova || vaddr &+ size &- 1 < vaddr { throw .invalidArgument }
        let hits = overlapping(iova, iova + size)
        if setVaddr {
            guard let i = hits.first else { throw .noSuchFileOrDirectory }
            guard mappings[i].vaddrInvalid, mappings[i].iova == iova, mappings[i].size == size else { throw .invalidArgument }
            mappings[i].vaddr = vaddr
            mappings[i].vaddrInvalid = false
            return
        }
        if !hits.isEmpty { throw .fileExists }
        if dmaAvail == 0 { throw .noSpace }
        let last = iova + size - 1
        guard !checkRanges || Self.iovaRanges.contains(where: { $0.start <= iova && last <= $0.last }) else { throw .invalidArgument }
        mappings.insert(Mapping(iova: iova, size: size, vaddr: vaddr, readable: readable, writable: writable), at: hits.lowerBound)
    }

    // MARK: UNMAP_DMA

    /// Checks the no-bisect rule of v2 for `[iova, iova + size)`.
    func checkNotBisecting(_ iova: UInt64, _ size: UInt64) throws(Errno) {
        if let i = mappingIndex(containing: iova), mappings[i].iova != iova { throw .invalidArgument }
        if let i = mappingIndex(containing: iova + size - 1), mappings[i].end != iova + size { throw .invalidArgument }
    }

    /// Unmaps; returns the bytes unmapped. `harvest` is called for each mapping with dirty bits
    /// to report before it goes away (it may throw EFAULT, which stops the walk).
    func unmap(iova: UInt64, size requested: UInt64, all: Bool, invalidateVaddr: Bool,
               harvest: ((Mapping, [UInt64]) throws(Errno) -> Void)?) throws(Errno) -> UInt64 {
        let mask = Self.pageSize - 1
        if iova & mask != 0 { throw .invalidArgument }
        var size = requested
        if all {
            if iova != 0 || size != 0 { throw .invalidArgument }
            size = UInt64.max
        } else if size == 0 || size & mask != 0 || iova &+ size &- 1 < iova {
            throw .invalidArgument
        }
        if harvest != nil && !tracking { throw .invalidArgument }
        if v2 && !all { try checkNotBisecting(iova, size) }
        let end = all ? UInt64.max : iova + size
        var unmapped: UInt64 = 0
        var i = overlapping(iova, end).lowerBound
        while i < mappings.count && mappings[i].iova < end {
            let m = mappings[i]
            if !v2 && iova > m.iova { break }
            if invalidateVaddr {
                if m.vaddrInvalid { throw .invalidArgument }
                mappings[i].vaddrInvalid = true
                unmapped += m.size
                i += 1
                continue
            }
            if let harvest { try harvest(m, takeDirty(of: m)) }
            unmapped += m.size
            dropDirty(of: m)
            mappings.remove(at: i)
        }
        return unmapped
    }

    /// The writable mappings a device can DMA into now (a vaddr being updated is skipped).
    var writableMappings: [Mapping] { mappings.filter { $0.writable && !$0.vaddrInvalid } }

    // MARK: dirty tracking

    func startTracking() { tracking = true }

    func stopTracking() {
        tracking = false
        dirtyPages.removeAll()
    }

    /// Marks pages an emulated device wrote (only recorded while tracking, like the kernel's bitmaps).
    func markDirty(iova: UInt64, length: UInt64) {
        guard tracking, length > 0 else { return }
        var page = iova / Self.pageSize
        let last = (iova + length - 1) / Self.pageSize
        while page <= last {
            dirtyPages.insert(page)
            page += 1
        }
    }

    /// Page numbers of `m` written since the last harvest, cleared by this call.
    func takeDirty(of m: Mapping) -> [UInt64] {
        let first = m.iova / Self.pageSize, end = m.end / Self.pageSize
        let pages = dirtyPages.filter { $0 >= first && $0 < end }.sorted()
        for p in pages { dirtyPages.remove(p) }
        return pages
    }

    private func dropDirty(of m: Mapping) {
        _ = takeDirty(of: m)
    }
}
