// Device DMA logging (VFIO_DEVICE_FEATURE DMA_LOGGING_START / REPORT / STOP), every device of
// the migration. START takes the IOVA ranges to log; a device may take fewer than the core's
// 256, so the ranges are folded when it answers E2BIG, the way QEMU folds them: first one
// range per stretch of regions, then at most three (below 4 GiB, above 4 GiB, and the 64-bit
// PCI hole the embedder names), then one. Each read REPORTs every region at its own page size
// into a zeroed bitmap. Any REPORT failure means the log can no longer be trusted: every page
// is treated as dirty, logging is restarted, and the report says so.
import VFIOCore
import VFIOSyscalls

/// The device side of DMA logging, as the tracker uses it (VFIODevice, or a test's wrapper).
public protocol DMALoggingDevice: AnyObject {
    var name: String { get }
    func supports(_ feature: DeviceFeature, for access: FeatureAccess) throws(VFIOError) -> Bool
    func startDMALogging(ranges: [DMARange], pageSize: UInt64) throws(VFIOError) -> UInt64
    func stopDMALogging() throws(VFIOError)
    func dmaLoggingReport(of range: DMARange, pageSize: UInt64, into bitmap: inout [UInt64]) throws(VFIOError)
}

extension VFIODevice: DMALoggingDevice {}

public final class DMALoggingTracker: DirtyPageTracker {
    public let devices: [any DMALoggingDevice]
    public let memory: GuestMemory
    /// Ranges logged besides guest memory (the 64-bit PCI hole, for peer-to-peer DMA).
    public let extraRanges: [DMARange]
    public private(set) var report: DirtyTrackerReport
    /// Per device, while started: the ranges it took and the page size it settled on.
    private var active: [(ranges: [DMARange], pageSize: UInt64)?]
    private var unusable = false

    public init(devices: [any DMALoggingDevice], memory: GuestMemory, extraRanges: [DMARange] = [], reason: String) throws(VFIOError) {
        guard !devices.isEmpty else { throw VFIOError(.invalidArgument, "DMA logging needs at least one device") }
        self.devices = devices
        self.memory = memory
        self.extraRanges = extraRanges
        report = DirtyTrackerReport(kind: .deviceDMALogging, reason: reason, precise: true)
        active = Array(repeating: nil, count: devices.count)
    }

    /// The range lists START is tried with, finest first.
    public static func rangePlans(memory: GuestMemory, extra: [DMARange], pageSize: UInt64) -> [[DMARange]] {
        func aligned(_ r: DMARange) -> DMARange {
            let start = r.iova / pageSize * pageSize
            let end = (r.end + pageSize - 1) / pageSize * pageSize
            return DMARange(iova: start, length: end - start)
        }
        let regions = memory.regions.map { DMARange(iova: $0.iova, length: $0.length) }.sorted { $0.iova < $1.iova }
        var exact: [DMARange] = []
        for r in regions {
            if let last = exact.last, last.end == r.iova {
                exact[exact.count - 1] = DMARange(iova: last.iova, length: r.end - last.iova)
            } else {
                exact.append(r)
            }
        }
        exact += extra
        func span(_ rs: [DMARange]) -> DMARange? {
            guard let lo = rs.map(\.iova).min(), let hi = rs.map(\.end).max() else { return nil }
            return DMARange(iova: lo, length: hi - lo)
        }
        let below = regions.filter { $0.end <= 1 << 32 }, above = regions.filter { $0.end > 1 << 32 }
        let three = [span(below), span(above), span(extra)].compactMap { $0 }
        var plans: [[DMARange]] = []
        for plan in [exact, three, [span(regions + extra)].compactMap { $0 }] {
            let cleaned = plan.map(aligned).sorted { $0.iova < $1.iova }
            // Folding can make ranges touch or overlap (START refuses overlaps): join them.
            var joined: [DMARange] = []
            for r in cleaned {
                if let last = joined.last, r.iova <= last.end {
                    joined[joined.count - 1] = DMARange(iova: last.iova, length: max(last.end, r.end) - last.iova)
                } else {
                    joined.append(r)
                }
            }
            if joined.count <= 256 && !plans.contains(joined) { plans.append(joined) }
        }
        return plans
    }

    public func start() throws(VFIOError) {
        for i in devices.indices where active[i] == nil { try start(device: i) }
        report.pageSize = active.compactMap { $0?.pageSize }.max()
        report.scope = devices.indices.map { i in
            "\(devices[i].name): \(active[i]!.ranges.map(\.description).joined(separator: ", ")) at \(active[i]!.pageSize) B"
        }
    }

    private func start(device i: Int) throws(VFIOError) {
        let hint = memory.regions.map(\.pageSize).min() ?? 4096
        var lastError: VFIOError?
        for plan in Self.rangePlans(memory: memory, extra: extraRanges, pageSize: hint) {
            do {
                let granted = try devices[i].startDMALogging(ranges: plan, pageSize: hint)
                active[i] = (plan, granted)
                return
            } catch where error.errno == .argumentListTooLong {
                lastError = error
                continue // the device takes fewer ranges: fold further
            }
        }
        throw VFIOError(
            .notSupported, "DMA logging: the device refused every folding of the guest memory's ranges with E2BIG (\(lastError?.description ?? "no plan"))",
            device: devices[i].name, errno: .argumentListTooLong)
    }

    /// One REPORT of a single page after START: a kernel that accepts START but answers REPORT
    /// with EOPNOTSUPP (built without IOMMUFD_DRIVER, as Debian's 6.12) cannot track anything.
    public func probeReport() throws(VFIOError) {
        guard let region = memory.regions.first else { return }
        var words = [UInt64](repeating: 0, count: 1)
        for device in devices {
            do {
                try device.dmaLoggingReport(of: DMARange(iova: region.iova, length: region.pageSize), pageSize: region.pageSize, into: &words)
            } catch where error.errno == .notSupported {
                throw Self.reportUnsupported(device.name, error)
            }
        }
    }

    static func reportUnsupported(_ device: String, _ error: VFIOError) -> VFIOError {
        VFIOError(
            .notSupported,
            "DMA logging is unusable: the kernel accepts DMA_LOGGING_START but answers DMA_LOGGING_REPORT with EOPNOTSUPP (a kernel built without IOMMUFD_DRIVER, as Debian's 6.12)",
            device: device, operation: error.operation, errno: .notSupported)
    }

    public func collect(into bitmaps: inout [DirtyBitmap]) throws(VFIOError) {
        guard bitmaps.count == memory.regions.count else { throw .invalidUse("dirty bitmaps do not match the tracker's memory regions") }
        report.reads += 1
        if unusable {
            for i in bitmaps.indices { bitmaps[i].insertAll() }
            return
        }
        for d in devices.indices {
            guard active[d] != nil else { throw .invalidUse("collect before DMA logging was started on \(devices[d].name)") }
            for (r, region) in memory.regions.enumerated() {
                var words = [UInt64](repeating: 0, count: (region.pageCount + 63) / 64)
                do {
                    try devices[d].dmaLoggingReport(of: DMARange(iova: region.iova, length: region.length), pageSize: region.pageSize, into: &words)
                } catch {
                    try logCorrupt(device: d, read: report.reads, error: error, bitmaps: &bitmaps)
                    break
                }
                do {
                    try bitmaps[r].formUnion(try DirtyBitmap(words: words, pageCount: region.pageCount, pageSize: region.pageSize))
                } catch {
                    throw .invalidUse("dirty bitmaps do not match region \(region.name): \(error)")
                }
            }
        }
    }

    /// A failed REPORT: the log is corrupt. Everything counts as dirty and the device's logging
    /// restarts; EOPNOTSUPP makes the tracker unusable (every later read reports everything).
    private func logCorrupt(device d: Int, read: Int, error: VFIOError, bitmaps: inout [DirtyBitmap]) throws(VFIOError) {
        for i in bitmaps.indices { bitmaps[i].insertAll() }
        let name = devices[d].name
        if error.errno == .notSupported {
            unusable = true
            report.usable = false
            report.events.append("read \(read): \(Self.reportUnsupported(name, error).message); every page is treated as dirty from now on")
            return
        }
        let errno = error.errno.map { "errno \($0.rawValue)" } ?? "no errno"
        do {
            try devices[d].stopDMALogging()
        } catch {
            // Restarting below says whether the device is still usable.
        }
        active[d] = nil
        do {
            try start(device: d)
            report.events.append("read \(read): DMA_LOGGING_REPORT on \(name) failed (\(errno): \(error.message)); the log is corrupt: every page treated as dirty, logging restarted")
        } catch let restart {
            report.events.append("read \(read): DMA_LOGGING_REPORT on \(name) failed (\(errno)) and logging could not be restarted: \(restart.message)")
            report.usable = false
            throw VFIOError(.deviceError, "DMA logging on \(name) failed and could not be restarted: \(restart.message)", device: name, errno: restart.errno)
        }
    }

    public func stop() throws(VFIOError) {
        for d in devices.indices where active[d] != nil {
            try devices[d].stopDMALogging()
            active[d] = nil
        }
    }
}
