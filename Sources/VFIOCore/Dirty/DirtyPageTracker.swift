// Who knows which guest pages changed: a tracker reports, per memory region and at that
// region's page size, the pages written since its last read, and forgets them as it reports
// them. The kernel backend implements it over type1 container tracking and device DMA
// logging; `AllDirtyTracker` is the fallback that knows nothing and says so.

/// What a tracker is, why it was chosen and what happened to it.
public struct DirtyTrackerReport: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Hashable, Codable {
        /// Device DMA logging (DMA_LOGGING_START/REPORT), every device.
        case deviceDMALogging = "device-dma-logging"
        /// type1 container tracking (VFIO_IOMMU_DIRTY_PAGES).
        case type1Container = "type1-container"
        /// No tracker: every page counts as dirty at every read.
        case allDirty = "all-dirty"
    }

    public var kind: Kind
    /// Why this tracker (and not a better one), in words.
    public var reason: String
    /// False when reads report more than was written (every mapped page).
    public var precise: Bool
    /// The granularity the tracker works at (the IOMMU's smallest page, the device's choice).
    public var pageSize: UInt64?
    /// What is tracked: ranges, per device or container.
    public var scope: [String] = []
    /// Reads so far.
    public var reads = 0
    /// What went wrong on the way and what was done about it (a corrupt log treated as all
    /// dirty, tracking restarted), in order.
    public var events: [String] = []
    /// False once the tracker can no longer tell anything (every read then reports everything).
    public var usable = true

    public init(kind: Kind, reason: String, precise: Bool, pageSize: UInt64? = nil) {
        self.kind = kind
        self.reason = reason
        self.precise = precise
        self.pageSize = pageSize
    }
}

/// Reports the guest pages devices wrote.
public protocol DirtyPageTracker: AnyObject {
    /// What the tracker is and what it did so far.
    var report: DirtyTrackerReport { get }
    /// Starts tracking; writes from now on are reported. A second call does nothing.
    func start() throws(VFIOError)
    /// ORs into `bitmaps[i]` (region i of the memory the tracker was made for, at that region's
    /// page size) every page written since the last read, which the tracker then forgets.
    func collect(into bitmaps: inout [DirtyBitmap]) throws(VFIOError)
    /// Stops tracking (after the final read). Safe to call when not started.
    func stop() throws(VFIOError)
}

/// The VMM's own record of the pages it (its vCPUs, its emulated devices) wrote: KVM's dirty
/// bitmap, say. The session merges it with the device tracker's at every sync.
public protocol VMMDirtyLog: AnyObject {
    /// The pages written in region `region` since the last call (which clears them), as a
    /// bitmap of the region's bytes at any page size (KVM's is 4 KiB).
    func harvest(region: Int) throws(VFIOError) -> DirtyBitmap
}

/// The tracker of last resort: every page is dirty at every read (what type1 reports for a
/// container with a physical device, without asking the kernel). Only used when the embedder
/// said all pages may be treated as dirty.
public final class AllDirtyTracker: DirtyPageTracker {
    public private(set) var report: DirtyTrackerReport

    public init(reason: String) {
        report = DirtyTrackerReport(kind: .allDirty, reason: reason, precise: false)
    }

    public func start() throws(VFIOError) {}

    public func collect(into bitmaps: inout [DirtyBitmap]) throws(VFIOError) {
        for i in bitmaps.indices { bitmaps[i].insertAll() }
        report.reads += 1
    }

    public func stop() throws(VFIOError) {}
}

extension DirtyBitmap {
    /// ORs a bitmap of the same bytes at any page size into this one (a VMM's 4 KiB log into
    /// a region of 2 MiB pages, or the other way round).
    public mutating func formUnion(converting other: DirtyBitmap) throws(VFIOError) {
        guard other.byteCount == byteCount else {
            throw VFIOError(.invalidArgument, "a dirty log of \(other.byteCount) bytes (\(other.pageCount) pages of \(other.pageSize)) does not cover the region's \(byteCount) bytes")
        }
        do {
            try formUnion(other.pageSize == pageSize ? other : other.converted(toPageSize: pageSize))
        } catch {
            throw VFIOError(.invalidArgument, "merging a dirty log: \(error)")
        }
    }
}
