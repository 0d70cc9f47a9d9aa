// Hostile pages records against the receiver (StreamInput loading into guest memory), not
// only the decoder: a region table that differs from the target's, runs outside the region or
// across its end, a region index the stream does not have, a table that describes more or
// fewer bytes than the record carries. Each is refused before a byte of target memory is
// written; the target's memory keeps its fill.
import Testing
import VFIOBuffers
import VFIOCore
import VFIOMigration
import VFIOStream

@Suite struct HostilePagesTests {
    let ramStart: UInt64 = 0x10_0000

    func targetMemory(pages: Int = 32, pageSize: UInt64 = 4096) throws -> GuestMemory {
        let buffer = IOBuffer(capacity: pages * Int(pageSize))
        buffer.write([UInt8](repeating: 0xAB, count: pages * Int(pageSize)), at: 0)
        return try GuestMemory([try GuestMemoryRegion(iova: ramStart, length: UInt64(pages) * pageSize, pageSize: pageSize, buffer: buffer, writable: true, name: "ram")])
    }

    func untouched(_ memory: GuestMemory) -> Bool {
        memory.regions.allSatisfy { r in r.buffer.bytes(0..<Int(r.length)).allSatisfy { $0 == 0xAB } }
    }

    /// A header naming `regions`, then records framed for `recordRegions` (a laxer header),
    /// so the records can break rules the real header sets.
    func stream(header regions: [MemoryRegionDescriptor], records recordRegions: [MemoryRegionDescriptor],
                _ body: (inout StreamEncoder, inout [UInt8]) throws -> Void) throws -> [UInt8] {
        let header = StreamHeader(creationTimeNanoseconds: 1, maxPayload: 1 << 20, devices: [], regions: regions)
        var bytes = try StreamEncoder(header: header).encodeHeader()
        var lax = try StreamEncoder(header: StreamHeader(creationTimeNanoseconds: 1, maxPayload: 1 << 20, devices: [], regions: recordRegions))
        try body(&lax, &bytes)
        try lax.appendEndOfStream(to: &bytes)
        return bytes
    }

    func load(_ bytes: [UInt8], into memory: GuestMemory) -> VFIOError? {
        do {
            let input = try StreamInput(from: BytesSource(bytes), memory: try GuestMemoryLoader(memory: memory))
            while true {
                if case .endOfStream = try input.next() { return nil }
            }
        } catch {
            return error
        }
    }

    func page(_ byte: UInt8, count: Int = 1) -> [UInt8] { [UInt8](repeating: byte, count: 4096 * count) }

    @Test(arguments: [
        ("start", MemoryRegionDescriptor(start: 0x20_0000, length: 32 * 4096, pageSize: 4096)),
        ("length", MemoryRegionDescriptor(start: 0x10_0000, length: 64 * 4096, pageSize: 4096)),
        ("page size", MemoryRegionDescriptor(start: 0x10_0000, length: 32 * 4096, pageSize: 8192)),
    ])
    func aRegionTableThatDiffersIsRefusedBeforeAnyPage(what: String, region: MemoryRegionDescriptor) throws {
        let memory = try targetMemory()
        let bytes = try stream(header: [region], records: [region]) { e, b in
            try e.appendPages(region: 0, phase: .preCopy, round: 1, runs: [PageRun(firstPage: 0, pageCount: 1)], data: page(1, count: Int(region.pageSize) / 4096), to: &b)
        }
        let error = try #require(load(bytes, into: memory))
        #expect(error.code == .streamIncompatible, "\(error)")
        #expect(error.message.contains(what), "\(error)")
        #expect(untouched(memory))
    }

    @Test func twoRegionsForOneIsRefused() throws {
        let memory = try targetMemory()
        let regions = [memory.regions[0].descriptor, MemoryRegionDescriptor(start: 0x100_0000, length: 4096, pageSize: 4096)]
        let bytes = try stream(header: regions, records: regions) { _, _ in }
        let error = try #require(load(bytes, into: memory))
        #expect(error.code == .streamIncompatible && error.message.contains("2 memory region"), "\(error)")
    }

    @Test func aRunPastTheRegionsEndIsRefused() throws {
        let memory = try targetMemory()
        let real = memory.regions[0].descriptor
        let wider = MemoryRegionDescriptor(start: real.start, length: 64 * 4096, pageSize: 4096)
        // Pages 30..<34 cross the end of the 32-page region; 40..<41 lie outside it.
        for run in [PageRun(firstPage: 30, pageCount: 4), PageRun(firstPage: 40, pageCount: 1)] {
            let bytes = try stream(header: [real], records: [wider]) { e, b in
                try e.appendPages(region: 0, phase: .preCopy, round: 1, runs: [run], data: page(7, count: Int(run.pageCount)), to: &b)
            }
            let error = try #require(load(bytes, into: memory))
            #expect(error.code == .streamCorrupt && error.message.contains("past the region"), "\(error)")
            #expect(untouched(memory))
        }
    }

    @Test func aZeroRunOutsideTheRegionWritesNothing() throws {
        let memory = try targetMemory()
        let real = memory.regions[0].descriptor
        let wider = MemoryRegionDescriptor(start: real.start, length: 1 << 30, pageSize: 4096)
        let bytes = try stream(header: [real], records: [wider]) { e, b in
            try e.appendPages(region: 0, phase: .preCopy, round: 1, runs: [PageRun(firstPage: 0, pageCount: 100_000, isZero: true)], data: [], to: &b)
        }
        let error = try #require(load(bytes, into: memory))
        #expect(error.code == .streamCorrupt, "\(error)")
        #expect(untouched(memory))
    }

    @Test func aRegionTheStreamDoesNotHaveIsRefused() throws {
        let memory = try targetMemory()
        let real = memory.regions[0].descriptor
        let more = [real, MemoryRegionDescriptor(start: 0x1000_0000, length: 4096, pageSize: 4096)]
        let bytes = try stream(header: [real], records: more) { e, b in
            try e.appendPages(region: 1, phase: .preCopy, round: 1, runs: [PageRun(firstPage: 0, pageCount: 1)], data: page(2), to: &b)
        }
        let error = try #require(load(bytes, into: memory))
        #expect(error.code == .streamCorrupt && error.message.contains("region 1"), "\(error)")
        #expect(untouched(memory))
    }

    /// The table says two data pages but the record carries one, and the other way round.
    @Test(arguments: [UInt32(2), UInt32(1)])
    func aByteCountMismatchIsRefused(claimed: UInt32) throws {
        let memory = try targetMemory()
        let real = memory.regions[0].descriptor
        let carried = claimed == 2 ? 1 : 2
        var bytes = try stream(header: [real], records: [real]) { e, b in
            try e.appendPages(region: 0, phase: .preCopy, round: 1, runs: [PageRun(firstPage: 3, pageCount: UInt32(carried))], data: page(9, count: carried), to: &b)
        }
        // The first record follows the header; its run's pageCount is at 32 + 8 + 8.
        let header = try StreamEncoder(header: StreamHeader(creationTimeNanoseconds: 1, maxPayload: 1 << 20, devices: [], regions: [real])).encodeHeader().count
        let at = header + 32 + 8 + 8
        #expect(bytes[at] == UInt8(carried))
        bytes[at] = UInt8(claimed)
        let error = try #require(load(bytes, into: memory))
        #expect(error.code == .streamCorrupt && error.message.contains("data bytes"), "\(error)")
        #expect(untouched(memory))
    }

    /// Flipped page data: the pages are already in target memory when the CRC is checked, so
    /// the load fails as a whole (the target must not run with them).
    @Test func aBadChecksumFailsTheLoad() throws {
        let memory = try targetMemory()
        let real = memory.regions[0].descriptor
        var bytes = try stream(header: [real], records: [real]) { e, b in
            try e.appendPages(region: 0, phase: .preCopy, round: 1, runs: [PageRun(firstPage: 0, pageCount: 1)], data: page(9), to: &b)
        }
        bytes[bytes.count - 56 - 100] ^= 0x40
        let error = try #require(load(bytes, into: memory))
        #expect(error.code == .streamCorrupt && error.message.contains("CRC"), "\(error)")
    }

    @Test func pagesWithoutTargetMemoryAreRefused() throws {
        let memory = try targetMemory()
        let real = memory.regions[0].descriptor
        let bytes = try stream(header: [real], records: [real]) { e, b in
            try e.appendPages(region: 0, phase: .preCopy, round: 1, runs: [PageRun(firstPage: 0, pageCount: 1)], data: page(9), to: &b)
        }
        let input = try StreamInput(from: BytesSource(bytes))
        #expect(throws: VFIOError.self) { _ = try input.next() }
        // Verifying reads them without memory.
        let summary = try StreamInput(from: BytesSource(bytes)).validateToEnd()
        #expect(summary.regions.first?.preCopy.dataPages == 1)
    }

    @Test func readOnlyTargetMemoryIsRefused() throws {
        let ro = try GuestMemory([try GuestMemoryRegion(iova: ramStart, length: 4096, buffer: IOBuffer(capacity: 4096), writable: false, name: "ro")])
        #expect(throws: VFIOError.self) { try GuestMemoryLoader(memory: ro) }
    }
}
