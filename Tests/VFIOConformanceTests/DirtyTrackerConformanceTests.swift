// One check every dirty page tracker passes, as one bitmap test runs over every bitmap kind:
// a device writes known pages of mapped guest memory and the tracker finds exactly those
// (every mapped page, for a tracker that says it is imprecise), a read clears what it
// returned, and (type1) a mapping unmapped through the tracker keeps its last bits. It runs
// against the mock (type1 in both scopes, DMA logging, the all-dirty fallback) and, in the
// guest suite, against the real kernel with the test mdev's DMA engine.
import Foundation
import Testing
import VFIOBuffers
import VFIOCore
import VFIOKernel
import VFIOMockDevices
import VFIOSyscalls

private let page: UInt64 = 4096

struct TrackerTarget: Sendable, CustomStringConvertible {
    enum Make: Sendable { case type1, dmaLogging, allDirty, chosen }
    let spec: String
    let make: Make
    /// What the tracker should report: exactly the written pages, or every page.
    let precise: Bool
    let isMock: Bool
    var description: String { "\(make) on \(spec)" }

    static var all: [TrackerTarget] {
        var targets = [
            TrackerTarget(spec: "mock:tmdev?mdev-type=mock-1&dma-logging=no", make: .type1, precise: true, isMock: true),
            TrackerTarget(spec: "mock:tpci?dma-logging=no", make: .type1, precise: false, isMock: true),
            TrackerTarget(spec: "mock:tlog", make: .dmaLogging, precise: true, isMock: true),
            TrackerTarget(spec: "mock:tall?dma-logging=no", make: .allDirty, precise: false, isMock: true),
            TrackerTarget(spec: "mock:tchosen", make: .chosen, precise: true, isMock: true),
        ]
        if let first = environment["VFIO_TEST_MDEV"]?.split(separator: ",").first {
            targets.append(TrackerTarget(spec: String(first), make: .type1, precise: true, isMock: false))
            if !kernelRelease().hasPrefix("6.12") {
                targets.append(TrackerTarget(spec: String(first), make: .dmaLogging, precise: true, isMock: false))
            }
            // DMA logging works on 6.1; on 6.12 REPORT answers EOPNOTSUPP and the choice says so.
            targets.append(TrackerTarget(spec: String(first), make: .chosen, precise: true, isMock: false))
        }
        return targets
    }
}

/// Two regions, one below and one above 4 GiB, mapped into the device's container.
func mappedGuestMemory(for device: VFIODevice) throws -> GuestMemory {
    let low = try GuestMemoryRegion(iova: 0x20_0000, length: 64 * page, buffer: IOBuffer(capacity: Int(64 * page)), writable: true, name: "low")
    let high = try GuestMemoryRegion(iova: 0x1_0000_0000, length: 32 * page, buffer: IOBuffer(capacity: Int(32 * page)), writable: true, name: "high")
    try device.container.map(low)
    try device.container.map(high)
    return try GuestMemory([low, high])
}

func emptyBitmaps(_ memory: GuestMemory) throws -> [DirtyBitmap] {
    try memory.regions.map { try DirtyBitmap(pageCount: $0.pageCount, pageSize: $0.pageSize) }
}

func kernelRelease() -> String {
    (try? String(contentsOfFile: "/proc/sys/kernel/osrelease", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
}

@Suite(.serialized) struct DirtyTrackerConformanceTests {
    func tracker(_ target: TrackerTarget, _ device: VFIODevice, _ memory: GuestMemory) throws -> any DirtyPageTracker {
        switch target.make {
        case .type1:
            return try Type1DirtyTracker(containers: [device.container], memory: memory, precise: target.precise, reason: "test")
        case .dmaLogging:
            return try DMALoggingTracker(devices: [device], memory: memory, reason: "test")
        case .allDirty:
            return AllDirtyTracker(reason: "test")
        case .chosen:
            return try DirtyTrackerChoice.choose(for: [device], memory: memory)
        }
    }

    @Test(arguments: TrackerTarget.all)
    func findsExactlyThePagesTheDeviceWrote(target: TrackerTarget) throws {
        let device = try DeviceEnvironment.withMockDevices().open(target.spec)
        let memory = try mappedGuestMemory(for: device)
        let tracker = try tracker(target, device, memory)
        let precise = tracker.report.precise
        #expect(precise == target.precise, "\(tracker.report)")
        try tracker.start()
        defer { try? tracker.stop() }
        var bitmaps = try emptyBitmaps(memory)
        try tracker.collect(into: &bitmaps)
        if precise { #expect(bitmaps.allSatisfy { $0.isEmpty }, "nothing written yet: \(bitmaps)") }

        let writer = DMAWriter(device: device)
        try writer.write(iova: memory.regions[0].iova + 3 * page, length: 2 * page)
        try writer.write(iova: memory.regions[1].iova + 7 * page, length: page)
        bitmaps = try emptyBitmaps(memory)
        try tracker.collect(into: &bitmaps)
        if precise {
            #expect(Array(bitmaps[0].dirtyPages) == [3, 4])
            #expect(Array(bitmaps[1].dirtyPages) == [7])
        } else {
            #expect(bitmaps[0].dirtyPageCount == 64 && bitmaps[1].dirtyPageCount == 32, "every page, read after read")
        }

        bitmaps = try emptyBitmaps(memory)
        try tracker.collect(into: &bitmaps)
        if precise { #expect(bitmaps.allSatisfy { $0.isEmpty }, "a read clears what it returned: \(bitmaps)") }
        #expect(tracker.report.reads == 3)
        #expect(tracker.report.usable)
    }

    /// A mapping that goes away while tracking hands its last bits back with the unmap.
    @Test(arguments: TrackerTarget.all.filter { $0.make == .type1 })
    func unmapThroughTheTrackerKeepsTheLastBits(target: TrackerTarget) throws {
        let device = try DeviceEnvironment.withMockDevices().open(target.spec)
        let memory = try mappedGuestMemory(for: device)
        let tracker = try Type1DirtyTracker(containers: [device.container], memory: memory, precise: target.precise, reason: "test")
        try tracker.start()
        defer { try? tracker.stop() }
        let high = memory.regions[1]
        try DMAWriter(device: device).write(iova: high.iova + 5 * page, length: page)
        let unmapped = try tracker.unmap(DMARange(iova: high.iova, length: high.length), from: device.container)
        #expect(unmapped == high.length)
        #expect(device.container.mappings == [DMARange(iova: memory.regions[0].iova, length: memory.regions[0].length)])
        var bitmaps = try emptyBitmaps(memory)
        try tracker.collect(into: &bitmaps)
        if target.precise {
            #expect(Array(bitmaps[1].dirtyPages) == [5])
            #expect(bitmaps[0].isEmpty)
        } else {
            #expect(bitmaps[1].dirtyPageCount == 32)
        }
        bitmaps = try emptyBitmaps(memory)
        try tracker.collect(into: &bitmaps)
        #expect(bitmaps[1].isEmpty, "the unmapped region is no longer read")
    }

    /// QEMU's choice: DMA logging when every device offers it and it works, else type1; the
    /// report says why. On a kernel whose REPORT answers EOPNOTSUPP (Debian's 6.12) the choice
    /// falls back to type1 and names it.
    @Test(arguments: TrackerTarget.all.filter { $0.make == .chosen })
    func theChoiceSaysWhy(target: TrackerTarget) throws {
        let device = try DeviceEnvironment.withMockDevices().open(target.spec)
        let memory = try mappedGuestMemory(for: device)
        let tracker = try DirtyTrackerChoice.choose(for: [device], memory: memory)
        let report = tracker.report
        if !target.isMock && kernelRelease().hasPrefix("6.12") {
            #expect(report.kind == .type1Container, "\(report)")
            #expect(report.reason.contains("EOPNOTSUPP"), "\(report.reason)")
        } else {
            #expect(report.kind == .deviceDMALogging, "\(report)")
            #expect(report.reason.contains("offers it"), "\(report.reason)")
        }
        #expect(!device.isLoggingLeftOn(), "choosing leaves no logging session behind")
    }
}

extension VFIODevice {
    /// True when a DMA logging session is still open (a second START is refused with EINVAL).
    func isLoggingLeftOn() -> Bool {
        guard (try? supports(.dmaLoggingStart, for: .set)) == true else { return false }
        do {
            _ = try startDMALogging(ranges: [DMARange(iova: 0x20_0000, length: 4096)], pageSize: 4096)
            try stopDMALogging()
            return false
        } catch {
            return error.errno == .invalidArgument || error.errno == .busy
        }
    }
}
