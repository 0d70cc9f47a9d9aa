// The trackers' own rules, beyond the conformance check every tracker passes: how type1 reads
// are split, how DMA logging ranges are folded and backed off, what a failed REPORT does, and
// how the VMM's own log is merged.
import Testing
import VFIOBuffers
import VFIOCore
import VFIOKernel
import VFIOMock
import VFIOMockDevices
import VFIOSyscalls

@Suite struct Type1SplittingTests {
    /// Pieces never cut a mapping and keep every bitmap within the cap.
    @Test func readsAreSplitAtMappingsUnderTheCap() throws {
        let memory = try GuestMemory([try region(0x10_0000, pages: 64, name: "r0")])
        let maps = (0..<4).map { DMARange(iova: 0x10_0000 + UInt64($0) * 16 * page, length: 16 * page) }
        let pieces = try Type1DirtyTracker.plan(mappings: maps, memory: memory, pageSize: page, maxPages: 40)
        #expect(pieces.map(\.range) == [DMARange(iova: 0x10_0000, length: 32 * page), DMARange(iova: 0x10_0000 + 32 * page, length: 32 * page)])
        for piece in pieces {
            #expect(piece.range.length / page <= 40)
            #expect(maps.allSatisfy { $0.end <= piece.range.iova || $0.iova >= piece.range.end || ($0.iova >= piece.range.iova && $0.end <= piece.range.end) })
        }
        let whole = try Type1DirtyTracker.plan(mappings: maps, memory: memory, pageSize: page, maxPages: 64)
        #expect(whole.map(\.range) == [DMARange(iova: 0x10_0000, length: 64 * page)])
    }

    @Test func aMappingAboveTheCapIsRefused() throws {
        let memory = try GuestMemory([try region(0x10_0000, pages: 64, name: "r0")])
        #expect(throws: VFIOError.self) {
            try Type1DirtyTracker.plan(mappings: [DMARange(iova: 0x10_0000, length: 64 * page)], memory: memory, pageSize: page, maxPages: 32)
        }
        // Without known mappings the region is read whole when it fits, refused when it does not.
        #expect(try Type1DirtyTracker.plan(mappings: [], memory: memory, pageSize: page, maxPages: 64).count == 1)
        #expect(throws: VFIOError.self) { try Type1DirtyTracker.plan(mappings: [], memory: memory, pageSize: page, maxPages: 63) }
    }

    @Test func aMappingAcrossARegionEdgeIsRefused() throws {
        let memory = try GuestMemory([try region(0x10_0000, pages: 16, name: "a"), try region(0x10_0000 + 16 * page, pages: 16, name: "b")])
        do {
            _ = try Type1DirtyTracker.plan(mappings: [DMARange(iova: 0x10_0000, length: 32 * page)], memory: memory, pageSize: page, maxPages: 1 << 20)
            Issue.record("a mapping over two regions was accepted")
        } catch {
            #expect(error.message.contains("straddles"), "\(error)")
        }
    }

    /// Bits come back at the region's page size when the region's pages are larger than the
    /// IOMMU's (2 MiB regions over 4 KiB IOMMU pages).
    @Test func bitsAreConvertedToTheRegionsPageSize() throws {
        let device = try DeviceEnvironment.withMockDevices().open("mock:hp?mdev-type=mock-1")
        let huge: UInt64 = 2 << 20
        let r = try region(0x4000_0000, pages: 4, name: "huge", pageSize: huge)
        try device.container.map(r)
        let memory = try GuestMemory([r])
        let tracker = try Type1DirtyTracker(containers: [device.container], memory: memory, precise: true, reason: "test")
        try tracker.start()
        try device.mock!.dmaWrite(iova: r.iova + 2 * huge + 5 * page, length: page)
        var bitmaps = try emptyBitmaps(memory)
        try tracker.collect(into: &bitmaps)
        #expect(Array(bitmaps[0].dirtyPages) == [2])
        #expect(tracker.report.pageSize == page)
        try tracker.stop()
    }
}

@Suite struct DMALoggingTrackerTests {
    func memory() throws -> GuestMemory {
        try GuestMemory([
            try region(0x10_0000, pages: 16, name: "a"), try region(0x10_0000 + 16 * page, pages: 16, name: "b"),
            try region(0x80_0000, pages: 16, name: "c"), try region(0x2_0000_0000, pages: 16, name: "d"),
            try region(0x3_0000_0000, pages: 16, name: "e"),
        ])
    }

    @Test func rangesFoldTheWayQEMUFoldsThem() throws {
        let hole = DMARange(iova: 0x80_0000_0000, length: 1 << 30)
        let plans = DMALoggingTracker.rangePlans(memory: try memory(), extra: [hole], pageSize: page)
        #expect(plans.count == 3)
        // Adjacent regions a and b are one range; c, d, e and the hole stay apart.
        #expect(plans[0] == [DMARange(iova: 0x10_0000, length: 32 * page), DMARange(iova: 0x80_0000, length: 16 * page),
                             DMARange(iova: 0x2_0000_0000, length: 16 * page), DMARange(iova: 0x3_0000_0000, length: 16 * page), hole])
        // Below 4 GiB, above 4 GiB, the 64-bit PCI hole.
        #expect(plans[1] == [DMARange(iova: 0x10_0000, length: 0x80_0000 + 16 * page - 0x10_0000),
                             DMARange(iova: 0x2_0000_0000, length: 0x1_0000_0000 + 16 * page), hole])
        #expect(plans[2] == [DMARange(iova: 0x10_0000, length: hole.end - 0x10_0000)])
    }

    /// A device that takes fewer ranges answers E2BIG: the tracker folds and still finds the
    /// exact pages (the log covers more, the report reads only the regions).
    @Test func startBacksOffOnE2BIG() throws {
        let device = try DeviceEnvironment.withMockDevices().open("mock:few")
        let memory = try memory()
        for r in memory.regions { try device.container.map(r) }
        let scripted = ScriptedLoggingDevice(device, maxRanges: 3)
        let tracker = try DMALoggingTracker(devices: [scripted], memory: memory, reason: "test")
        try tracker.start()
        #expect(scripted.startedWith.map(\.count) == [4, 2])
        #expect(tracker.report.scope.count == 1 && tracker.report.scope[0].contains("at 4096 B"), "\(tracker.report.scope)")
        try device.mock!.dmaWrite(iova: 0x3_0000_0000 + 3 * page, length: page)
        try device.mock!.dmaWrite(iova: 0x10_0000 + 17 * page, length: page)
        var bitmaps = try emptyBitmaps(memory)
        try tracker.collect(into: &bitmaps)
        #expect(bitmaps.map { Array($0.dirtyPages) } == [[], [1], [], [], [3]])
        try tracker.stop()
        let none = ScriptedLoggingDevice(device, maxRanges: 0)
        let refused = try DMALoggingTracker(devices: [none], memory: memory, reason: "test")
        #expect(throws: VFIOError.self) { try refused.start() }
    }

    /// A failed REPORT means the log is corrupt: every page is dirty, logging restarts, the
    /// report says so, and the next read is precise again.
    @Test func aFailedReportMarksEverythingDirtyAndRestarts() throws {
        let env = DeviceEnvironment.withMockDevices()
        let device = try env.open("mock:corrupt")
        let memory = try GuestMemory([try region(0x10_0000, pages: 32, name: "ram")])
        try device.container.map(memory.regions[0])
        let tracker = try DMALoggingTracker(devices: [device], memory: memory, reason: "test")
        try tracker.start()
        // Another descriptor of the same device stops its logging behind the tracker's back:
        // the next REPORT fails (EINVAL, logging not started) as on a real kernel.
        let other = try VFIODevice(vfioName: device.vfioName, group: device.group, name: "other fd", identity: device.identity)
        try other.stopDMALogging()
        var bitmaps = try emptyBitmaps(memory)
        try tracker.collect(into: &bitmaps)
        #expect(bitmaps[0].dirtyPageCount == 32)
        #expect(tracker.report.events.count == 1)
        #expect(tracker.report.events[0].contains("corrupt") && tracker.report.events[0].contains("restarted"), "\(tracker.report.events)")
        #expect(tracker.report.usable)
        try device.mock!.dmaWrite(iova: 0x10_0000 + 9 * page, length: page)
        bitmaps = try emptyBitmaps(memory)
        try tracker.collect(into: &bitmaps)
        #expect(Array(bitmaps[0].dirtyPages) == [9], "logging was restarted")
        try tracker.stop()
    }

    /// EOPNOTSUPP from REPORT (Debian's 6.12): the tracker is unusable and says so.
    @Test func reportEOPNOTSUPPMakesTheTrackerUnusable() throws {
        let device = try DeviceEnvironment.withMockDevices().open("mock:noreport")
        let memory = try GuestMemory([try region(0x10_0000, pages: 8, name: "ram")])
        try device.container.map(memory.regions[0])
        let scripted = ScriptedLoggingDevice(device)
        scripted.failReportsWith = .notSupported
        let tracker = try DMALoggingTracker(devices: [scripted], memory: memory, reason: "test")
        try tracker.start()
        do {
            try tracker.probeReport()
            Issue.record("the probe accepted EOPNOTSUPP")
        } catch {
            #expect(error.code == .notSupported && error.message.contains("EOPNOTSUPP"), "\(error)")
        }
        var bitmaps = try emptyBitmaps(memory)
        try tracker.collect(into: &bitmaps)
        #expect(!tracker.report.usable)
        #expect(tracker.report.events.last?.contains("unusable") == true, "\(tracker.report.events)")
        scripted.failReportsWith = nil
        bitmaps = try emptyBitmaps(memory)
        try tracker.collect(into: &bitmaps)
        #expect(bitmaps[0].dirtyPageCount == 8, "an unusable tracker reports everything")
        try tracker.stop()
    }
}

@Suite struct TrackerChoiceTests {
    /// Without DMA logging the container tracks; a physical device makes it imprecise, and the
    /// reason says both.
    @Test func withoutLoggingTheContainerTracksAndSaysWhy() throws {
        let device = try DeviceEnvironment.withMockDevices().open("mock:nolog?dma-logging=no")
        let memory = try GuestMemory([try region(0x10_0000, pages: 8, name: "ram")])
        try device.container.map(memory.regions[0])
        let tracker = try DirtyTrackerChoice.choose(for: [device], memory: memory)
        #expect(tracker.report.kind == .type1Container)
        #expect(!tracker.report.precise)
        #expect(tracker.report.reason.contains("no DMA logging on mock:nolog"), "\(tracker.report.reason)")
        #expect(tracker.report.reason.contains("every mapped page dirty"), "\(tracker.report.reason)")
    }

    @Test func mixedDevicesFallBackToTheContainers() throws {
        let env = DeviceEnvironment.withMockDevices()
        let a = try env.open("mock:mixa"), b = try env.open("mock:mixb?dma-logging=no&mdev-type=mock-1")
        let memory = try GuestMemory([try region(0x10_0000, pages: 8, name: "ram")])
        try a.container.map(memory.regions[0])
        try b.container.map(memory.regions[0])
        let tracker = try DirtyTrackerChoice.choose(for: [a, b], memory: memory)
        #expect(tracker.report.kind == .type1Container)
        try tracker.start()
        try a.mock!.dmaWrite(iova: 0x10_0000 + 2 * page, length: page)
        var bitmaps = try emptyBitmaps(memory)
        try tracker.collect(into: &bitmaps)
        #expect(bitmaps[0].dirtyPageCount == 8, "a's container holds a physical device: every page")
        try tracker.stop()
    }
}

@Suite struct VMMLogMergeTests {
    @Test func aFinerLogIsMergedAtTheRegionsPageSize() throws {
        var region = try DirtyBitmap(pageCount: 4, pageSize: 2 << 20)
        var kvm = try DirtyBitmap(pageCount: 4 * 512, pageSize: 4096)
        try kvm.insert(3 * 512 + 7)
        try region.formUnion(converting: kvm)
        #expect(Array(region.dirtyPages) == [3])
        var coarse = try DirtyBitmap(pageCount: 2, pageSize: 8192)
        var fine = try DirtyBitmap(pageCount: 4, pageSize: 4096)
        try fine.insert(0)
        try coarse.formUnion(converting: fine)
        #expect(Array(coarse.dirtyPages) == [0])
        let wrong = try DirtyBitmap(pageCount: 3, pageSize: 4096)
        #expect(throws: VFIOError.self) { try coarse.formUnion(converting: wrong) }
    }
}
