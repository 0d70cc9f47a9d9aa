// Pages records end to end: dirty runs of source memory through the stream writers (single
// and pipelined), zero pages as ZERO runs, data straight from memory, loaded straight into
// target memory, which ends equal to the source.
import Testing
import VFIOBuffers
import VFIOCore
import VFIOMigration
import VFIOStream

@Suite struct PageStreamTests {
    func source() throws -> GuestMemory {
        try GuestMemory([
            try patterned(0x10_0000, pages: 600, seed: 3, zeroPages: [0, 1, 7, 300, 599], name: "low"),
            try patterned(0x1_0000_0000, pages: 40, seed: 9, zeroPages: Set(0..<40).filter { $0 % 3 == 0 }, name: "high"),
        ])
    }

    func allRuns(_ region: GuestMemoryRegion) -> [DirtyRun] { [DirtyRun(firstPage: 0, pageCount: region.pageCount)] }

    func load(_ bytes: [UInt8], into memory: GuestMemory, limits: StreamLimits = .default) throws -> MemoryLoadReport {
        let loader = try GuestMemoryLoader(memory: memory)
        let input = try StreamInput(from: BytesSource(bytes), limits: limits, memory: loader)
        guard case .endOfStream = try input.next() else { throw VFIOError(.streamCorrupt, "no end") }
        return loader.report
    }

    @Test(arguments: [(true, true), (true, false), (false, true)])
    func everyPageArrivesAndZeroPagesTravelAsZeroRuns(checksums: Bool, copy: Bool) throws {
        let memory = try source()
        let sink = BytesSink()
        let output = try StreamOutput(header: memoryHeader(memory, checksums: checksums), to: sink)
        output.copiesLivePages = copy
        for (i, region) in memory.regions.enumerated() {
            try output.writePages(region: i, runs: allRuns(region), phase: .preCopy, round: 1, of: memory)
        }
        try output.endStream()
        // 600 pages of 4 KiB need three records at 255 pages a record, the 40 pages one.
        #expect(output.pageCounts.records == 4)
        #expect(output.pageCounts.zeroPages == 5 + 14)
        #expect(output.pageCounts.dataPages == 595 + 26)
        #expect(sink.gatherCalls == 4, "one gather write a record")
        let summary = try StreamReader.verify(sink.bytes, limits: StreamLimits(acceptsNoRecordChecksums: !checksums))
        #expect(summary.regions.map { $0.preCopy.zeroPages } == [5, 14])
        let targetMemory = try target(like: memory)
        let report = try load(sink.bytes, into: targetMemory, limits: StreamLimits(acceptsNoRecordChecksums: !checksums))
        #expect(report.dataPages == 621 && report.zeroPages == 19)
        #expect(contents(targetMemory) == contents(memory))
    }

    /// Later rounds overwrite earlier ones; the final phase carries the last version.
    @Test func laterRoundsWin() throws {
        let memory = try GuestMemory([try patterned(0x10_0000, pages: 16, seed: 1, name: "ram")])
        let region = memory.regions[0]
        let sink = BytesSink()
        let output = try StreamOutput(header: memoryHeader(memory), to: sink)
        try output.writePages(region: 0, runs: allRuns(region), phase: .preCopy, round: 1, of: memory)
        region.buffer.write([UInt8](repeating: 0x5A, count: 4096), at: 4 * 4096)
        region.buffer.zero(9 * 4096..<10 * 4096)
        try output.writePages(region: 0, runs: [DirtyRun(firstPage: 4, pageCount: 1), DirtyRun(firstPage: 9, pageCount: 1)], phase: .preCopy, round: 2, of: memory)
        region.buffer.write([UInt8](repeating: 0x77, count: 4096), at: 15 * 4096)
        try output.writePages(region: 0, runs: [DirtyRun(firstPage: 15, pageCount: 1)], phase: .stopCopy, round: 3, of: memory)
        try output.endStream()
        let targetMemory = try target(like: memory)
        _ = try load(sink.bytes, into: targetMemory)
        #expect(contents(targetMemory) == contents(memory))
    }

    /// The pipelined writers: page work on the writer thread; with two channels each stripe of
    /// 2 MiB always goes to the same channel, and the two streams together hold all memory.
    @Test(arguments: [1, 2])
    func pipelinedChannelsCarryEveryPage(channels: Int) throws {
        let memory = try GuestMemory([try patterned(0x20_0000, pages: 2048, seed: 5, zeroPages: [3, 1000], name: "ram")])
        let device = DeviceDescriptor(name: "d", deviceAPI: "vfio-pci", driverName: "x", driverVersion: "1", migrationFlags: [.stopCopy])
        let sinks = (0..<channels).map { _ in BytesSink() }
        let output = try PipelinedStreamOutput(header: memoryHeader(memory, devices: [device]), to: sinks,
                                               options: PipelineOptions(bufferSize: 4 << 20, bufferCount: 3, lockMemory: false))
        try output.writePages(region: 0, runs: allRuns(memory.regions[0]), phase: .preCopy, round: 1, of: memory)
        try output.writePages(region: 0, runs: [DirtyRun(firstPage: 10, pageCount: 600)], phase: .preCopy, round: 2, of: memory)
        try output.endDevice(0)
        try output.endStream()
        let targetMemory = try target(like: memory)
        var loaded: UInt64 = 0
        for (c, sink) in sinks.enumerated() {
            let loader = try GuestMemoryLoader(memory: targetMemory)
            let input = try StreamInput(from: BytesSource(sink.bytes), memory: loader)
            while true {
                if case .endOfStream = try input.next() { break }
            }
            loaded += loader.report.dataPages + loader.report.zeroPages
            // Channel c holds only pages of the stripes routed to it.
            #expect((output.metrics.channels[c].pages?.records ?? 0) > 0)
        }
        #expect(loaded == 2048 + 600)
        #expect(contents(targetMemory) == contents(memory))
        #expect(output.metrics.channels.reduce(0) { $0 + ($1.pages?.zeroPages ?? 0) } == 2)
    }

    @Test func recordsNeverCrossAStripe() {
        let groups = PagePackerProbe.records([DirtyRun(firstPage: 500, pageCount: 30)], maxPages: 255, stripePages: 512)
        #expect(groups == [[DirtyRun(firstPage: 500, pageCount: 12)], [DirtyRun(firstPage: 512, pageCount: 18)]])
        let packed = PagePackerProbe.records([DirtyRun(firstPage: 0, pageCount: 3), DirtyRun(firstPage: 10, pageCount: 300)], maxPages: 255, stripePages: nil)
        #expect(packed == [[DirtyRun(firstPage: 0, pageCount: 3), DirtyRun(firstPage: 10, pageCount: 252)], [DirtyRun(firstPage: 262, pageCount: 48)]])
    }
}
