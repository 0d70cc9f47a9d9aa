// The source side's guest memory during a save: which pages still have to go (one dirty
// bitmap per region, all set at setup), the tracker and the VMM's own log that add to it at
// every sync, and bounded sends that take dirty runs off it and hand them to the sink. A
// page's bit is cleared before its bytes are read, so a write after that is sent again.
import VFIOStream

/// What the embedder gives a save about its guest memory.
public struct SaveMemory {
    public var memory: GuestMemory
    /// Reports the pages devices write (DirtyTrackerChoice in the kernel backend).
    public var tracker: any DirtyPageTracker
    /// The VMM's own log of the pages its vCPUs wrote, merged at every sync.
    public var vmmLog: (any VMMDirtyLog)?

    public init(memory: GuestMemory, tracker: any DirtyPageTracker, vmmLog: (any VMMDirtyLog)? = nil) {
        self.memory = memory
        self.tracker = tracker
        self.vmmLog = vmmLog
    }
}

/// One bounded memory send.
public struct MemoryIterationResult: Sendable, Hashable {
    public var bytes: UInt64
    public var pages: Int
    /// Nothing dirty is left to send until the next sync.
    public var drained: Bool
}

/// One sync of the dirty logs.
public struct MemorySyncResult: Sendable, Hashable {
    /// Bytes the logs reported dirty that were not already waiting to be sent.
    public var newlyDirtyBytes: UInt64
    /// Bytes waiting to be sent after the sync.
    public var pendingBytes: UInt64
    /// `newlyDirtyBytes` per second since the previous sync (nil for the first).
    public var dirtyRate: Double?
}

/// What a save did with guest memory.
public struct MemorySaveReport: Sendable, Hashable, Codable {
    public var tracker: DirtyTrackerReport
    public var vmmLogMerged: Bool
    public var regions: Int
    public var totalBytes: UInt64
    /// Page bytes handed to the sink while the guest ran, and after the stop.
    public var preCopyBytes: UInt64 = 0
    public var finalBytes: UInt64 = 0
    public var syncs = 0
    /// Pages the final sync (after the devices stopped) found dirty, in bytes.
    public var finalDirtyBytes: UInt64?
}

final class MemoryPreCopy {
    let memory: GuestMemory
    let tracker: any DirtyPageTracker
    let vmmLog: (any VMMDirtyLog)?
    private(set) var dirty: [DirtyBitmap]
    /// The round the next pages belong to (pages records' round numbers never decrease).
    private(set) var round: UInt64 = 1
    private(set) var report: MemorySaveReport
    private var lastSync: ContinuousClock.Instant?
    private var tracking = false
    private let clock = ContinuousClock()
    /// Runs handed to the sink per call.
    private static let runsPerCall = 512

    init(_ configuration: SaveMemory) throws(VFIOError) {
        memory = configuration.memory
        tracker = configuration.tracker
        vmmLog = configuration.vmmLog
        var bitmaps: [DirtyBitmap] = []
        for region in memory.regions {
            do { bitmaps.append(try DirtyBitmap(pageCount: region.pageCount, pageSize: region.pageSize)) } catch {
                throw VFIOError(.invalidArgument, "guest memory region \(region.name): \(error)")
            }
        }
        dirty = bitmaps
        report = MemorySaveReport(tracker: tracker.report, vmmLogMerged: vmmLog != nil, regions: memory.regions.count, totalBytes: memory.totalBytes)
    }

    /// Starts tracking and marks every page dirty: everything goes at least once.
    func start() throws(VFIOError) {
        try tracker.start()
        tracking = true
        for i in dirty.indices { dirty[i].insertAll() }
        lastSync = clock.now
        report.tracker = tracker.report
    }

    var pendingBytes: UInt64 {
        zip(dirty, memory.regions).reduce(0) { $0 + UInt64($1.0.dirtyPageCount) * $1.1.pageSize }
    }

    /// Sends dirty pages, lowest first, until `budget` bytes went (whole pages; at least one
    /// page when anything is dirty) or nothing is left.
    func send(budget: UInt64, phase: StatePhase, into sink: any SaveSink) throws(VFIOError) -> MemoryIterationResult {
        guard sink.carriesMemory else {
            throw VFIOError(.notSupported, "the save has guest memory but its sink (\(type(of: sink))) does not carry memory")
        }
        var sent: UInt64 = 0
        var pages = 0
        for r in memory.regions.indices {
            let pageSize = memory.regions[r].pageSize
            while sent < budget {
                let allowed = Int(min(UInt64(Int.max), max(1, (budget - sent) / pageSize)))
                var runs: [DirtyRun] = []
                var taken = 0
                for run in DirtyRuns(words: dirty[r].words, maxPages: .max) {
                    let take = min(run.pageCount, allowed - taken)
                    runs.append(DirtyRun(firstPage: run.firstPage, pageCount: take))
                    taken += take
                    if taken == allowed || runs.count == Self.runsPerCall { break }
                }
                guard !runs.isEmpty else { break }
                for run in runs {
                    do { try dirty[r].remove(pages: run.pages) } catch { preconditionFailure("a run of the bitmap outside it: \(error)") }
                }
                try sink.writePages(region: r, runs: runs, phase: phase, round: round, of: memory)
                sent += UInt64(taken) * pageSize
                pages += taken
            }
        }
        if phase == .stopCopy { report.finalBytes += sent } else { report.preCopyBytes += sent }
        return MemoryIterationResult(bytes: sent, pages: pages, drained: pendingBytes == 0)
    }

    /// Collects the tracker's and the VMM's logs into the pages still to send; the next pages
    /// belong to a new round.
    func sync() throws(VFIOError) -> MemorySyncResult {
        let before = pendingBytes
        var collected = try emptyBitmaps()
        try tracker.collect(into: &collected)
        if let vmmLog {
            for r in collected.indices { try collected[r].formUnion(converting: try vmmLog.harvest(region: r)) }
        }
        var newly: UInt64 = 0
        // The tracker may be the embedder's: bitmaps it reshaped are its error, not a crash.
        guard collected.count == dirty.count else {
            throw VFIOError(.invalidArgument, "the dirty page tracker returned \(collected.count) bitmap(s) for \(dirty.count) region(s)", operation: "collect dirty pages")
        }
        for r in dirty.indices {
            do { try dirty[r].formUnion(collected[r]) } catch {
                throw VFIOError(.invalidArgument, "the dirty page tracker's bitmap for region \(r) has another shape than the region: \(error)", operation: "collect dirty pages")
            }
        }
        let after = pendingBytes
        newly = after - before
        let now = clock.now
        let rate = lastSync.map { (now - $0).seconds }.flatMap { $0 > 0 ? Double(newly) / $0 : nil }
        lastSync = now
        round += 1
        report.syncs += 1
        report.tracker = tracker.report
        return MemorySyncResult(newlyDirtyBytes: newly, pendingBytes: after, dirtyRate: rate)
    }

    /// The last sync, after every device stopped: then tracking ends.
    func finalSync() throws(VFIOError) -> MemorySyncResult {
        let result = try sync()
        report.finalDirtyBytes = result.newlyDirtyBytes
        try stopTracking()
        return result
    }

    func stopTracking() throws(VFIOError) {
        guard tracking else { return }
        tracking = false
        try tracker.stop()
        report.tracker = tracker.report
    }

    private func emptyBitmaps() throws(VFIOError) -> [DirtyBitmap] {
        var result: [DirtyBitmap] = []
        for b in dirty {
            do { result.append(try DirtyBitmap(pageCount: b.pageCount, pageSize: b.pageSize)) } catch { preconditionFailure("\(error)") }
        }
        return result
    }
}
