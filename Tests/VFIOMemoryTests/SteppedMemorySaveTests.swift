// The steppable save with guest memory, as a VMM drives it: bounded memory iterations, syncs
// that bring back what the devices wrote, the final sync after the stop, phase-2 pages in
// complete, and steps out of order refused.
import Testing
import VFIOBuffers
import VFIOCore
import VFIOKernel
import VFIOMigration
import VFIOMockDevices
import VFIOStream
import VFIOSyscalls

@Suite struct SteppedMemorySaveTests {
    @Test func aVMMDrivesMemoryRoundsStepByStep() throws {
        let rig = try MemoryRig(devices: ["state=64KiB"], pages: 256, workload: nil)
        let device = rig.sources[0]
        let tracker = try DirtyTrackerChoice.choose(for: rig.sources, memory: rig.memory)
        let session = try SaveSession(devices: rig.sources, options: SaveOptions(chunkSize: 256 << 10), memory: SaveMemory(memory: rig.memory, tracker: tracker))
        let header = try Migration.header(for: session.drivers, devices: rig.sources, chunkSize: 256 << 10, memory: rig.memory)
        let sink = BytesSink()
        let output = try StreamOutput(header: header, to: sink)
        #expect(throws: VFIOError.self) { try session.iterateMemory(into: output) }   // before setup
        try session.setup()
        #expect(session.memoryPendingBytes == 256 * 4096)

        let first = try session.iterateMemory(byteBudget: 100 * 4096, into: output)
        #expect(first.pages == 100 && !first.drained)
        #expect(session.memoryPendingBytes == 156 * 4096)
        try device.mock!.dmaWrite(iova: rig.memory.regions[0].iova + 3 * 4096, bytes: [0xEE, 0xEE])
        try device.mock!.dmaWrite(iova: rig.memory.regions[0].iova + 200 * 4096, bytes: [0xDD])
        let sync = try session.syncMemory()
        #expect(sync.newlyDirtyBytes == 4096, "page 3 was sent and written again; page 200 was still waiting")
        #expect(sync.pendingBytes == 157 * 4096)
        let rest = try session.iterateMemory(into: output)
        #expect(rest.pages == 157 && rest.drained)
        _ = try session.iterate(device: 0, into: output)

        try device.mock!.dmaWrite(iova: rig.memory.regions[0].iova + 9 * 4096, bytes: [0xCC])
        try session.stop()   // the final sync finds page 9
        #expect(session.memoryPendingBytes == 4096)
        #expect(throws: VFIOError.self) { try session.iterateMemory(into: output) }
        try session.complete(into: output)
        try session.finish(leaving: .stopped)
        #expect(session.report.memory?.finalBytes == 4096)
        #expect(session.report.memory?.finalDirtyBytes == 4096)
        #expect(device.isLoggingLeftOn() == false, "tracking stopped with the save")

        let summary = try StreamReader.verify(sink.bytes)
        #expect(summary.regions[0].stopCopy.dataPages == 1)
        _ = try Migration.load(rig.targets, from: BytesSource(sink.bytes), memory: rig.targetMemory)
        #expect(rig.memoryMatches)
    }
}

extension VFIODevice {
    /// True when a DMA logging session is still open (a second START is refused).
    func isLoggingLeftOn() -> Bool {
        do {
            _ = try startDMALogging(ranges: [DMARange(iova: 0x20_0000, length: 4096)], pageSize: 4096)
            try stopDMALogging()
            return false
        } catch {
            return true
        }
    }
}
