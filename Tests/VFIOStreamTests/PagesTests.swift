// Pages records (type 3): every table rule refused at the record, through both decoder
// paths; the zero-copy send and receive paths moving guest memory between two "hosts".
import Testing
import VFIOBuffers
@testable import VFIOStream

/// A pages payload from raw fields, so a test can write any table, valid or not.
func pagesPayload(region: UInt32, runCount: UInt32? = nil, runs: [(UInt64, UInt32, UInt32)], data: [UInt8] = []) -> [UInt8] {
    var bytes: [UInt8] = []
    bytes.appendLittleEndian(region)
    bytes.appendLittleEndian(runCount ?? UInt32(runs.count))
    for (firstPage, pageCount, flags) in runs {
        bytes.appendLittleEndian(firstPage)
        bytes.appendLittleEndian(pageCount)
        bytes.appendLittleEndian(flags)
    }
    return bytes + data
}

func pagesHeader(phase: UInt8 = 1, round: UInt64 = 0, device: UInt16 = StreamFormat.noDevice) -> RecordHeader {
    RecordHeader(type: .pages, device: device, phase: phase, payloadLength: 0, sequence: 0, offset: round)
}

let zeroFlag = PageRunFlags.zero

@Suite("Pages records")
struct PagesTests {
    /// The error of a stream whose last record is `payload` (after `before`), read both ways,
    /// which must agree; and the offset of that record.
    func refusal(
        _ payload: [UInt8], header record: RecordHeader = pagesHeader(), regions: [MemoryRegionDescriptor] = Samples.regions,
        before: (inout StreamEncoder, inout [UInt8]) throws -> Void = { _, _ in }
    ) throws -> (error: StreamError?, at: UInt64) {
        var at = 0
        let stream = try build(Samples.header11([Samples.mdevDevice], regions: regions)) { encoder, bytes in
            try before(&encoder, &bytes)
            at = bytes.count
            encoder.appendUncheckedRecord(record, payload: payload, to: &bytes)
        }
        let whole = read(stream).error
        let split = read(stream, pagesInPieces: true).error
        #expect(whole == split, "whole payload: \(String(describing: whole)); in pieces: \(String(describing: split))")
        return (whole, UInt64(at))
    }

    /// A valid pages record: the stream then only lacks its end (no end records follow).
    func expectAccepted(_ payload: [UInt8], regions: [MemoryRegionDescriptor] = Samples.regions) throws {
        let (error, at) = try refusal(payload, regions: regions)
        #expect(error == StreamError(offset: at + 32 + UInt64(payload.count), kind: .missingEndOfStream))
    }

    func expectTable(_ problem: PageTableProblem, _ payload: [UInt8], regions: [MemoryRegionDescriptor] = Samples.regions) throws {
        let (error, at) = try refusal(payload, regions: regions)
        #expect(error == StreamError(offset: at, kind: .invalidPageTable(problem)), "\(problem)")
    }

    @Test("region index, run count, table length and payload length")
    func tableBounds() throws {
        try expectTable(.regionOutOfRange(region: 2, regionCount: 2), pagesPayload(region: 2, runs: [(0, 1, zeroFlag)]))
        try expectTable(.regionOutOfRange(region: .max, regionCount: 2), pagesPayload(region: .max, runs: [(0, 1, zeroFlag)]))
        try expectTable(.noRuns, pagesPayload(region: 0, runs: []) + Array(repeating: 0, count: 16))
        try expectTable(.tableExceedsPayload(runCount: 2, payloadLength: 24), pagesPayload(region: 0, runCount: 2, runs: [(0, 1, zeroFlag)]))
        try expectTable(.tableExceedsPayload(runCount: .max, payloadLength: 24), pagesPayload(region: 0, runCount: .max, runs: [(0, 1, zeroFlag)]))
        try expectTable(.payloadTooShort(length: 8), pagesPayload(region: 0, runs: []))
        try expectTable(.payloadTooShort(length: 0), [])
        try expectTable(.noRegions, pagesPayload(region: 0, runs: [(0, 1, zeroFlag)]), regions: [])
    }

    @Test("runs: page count 0, reserved flags, order, overlap, past the region, overflow")
    func runRules() throws {
        try expectTable(.emptyRun(run: 1), pagesPayload(region: 0, runs: [(0, 1, zeroFlag), (4, 0, zeroFlag)]))
        try expectTable(.reservedRunFlags(run: 0, flags: 2), pagesPayload(region: 0, runs: [(0, 1, zeroFlag | 2)]))
        try expectTable(.reservedRunFlags(run: 0, flags: 0x8000_0000), pagesPayload(region: 0, runs: [(0, 1, 0x8000_0000)]))
        // Out of order, and overlapping by one page.
        try expectTable(.runOutOfOrder(run: 1, firstPage: 3, previousEnd: 11), pagesPayload(region: 0, runs: [(10, 1, zeroFlag), (3, 1, zeroFlag)]))
        try expectTable(.runOutOfOrder(run: 1, firstPage: 4, previousEnd: 5), pagesPayload(region: 0, runs: [(2, 3, zeroFlag), (4, 2, zeroFlag)]))
        // Adjacent runs are fine; a run ending exactly at the region's end is fine; one page more is not.
        let regionPages = Samples.regions[0].pageCount
        try expectAccepted(pagesPayload(region: 0, runs: [(0, 2, zeroFlag), (2, UInt32(regionPages - 2), zeroFlag)]))
        try expectTable(
            .runBeyondRegion(run: 0, firstPage: regionPages - 1, pageCount: 2, regionPages: regionPages),
            pagesPayload(region: 0, runs: [(regionPages - 1, 2, zeroFlag)]))
        try expectTable(.runBeyondRegion(run: 0, firstPage: 0, pageCount: 3, regionPages: 2), pagesPayload(region: 1, runs: [(0, 3, zeroFlag)]))
        // firstPage + pageCount wraps past 2^64: refused, never wrapped into range.
        try expectTable(
            .runBeyondRegion(run: 0, firstPage: .max - 1, pageCount: 4, regionPages: regionPages),
            pagesPayload(region: 0, runs: [(.max - 1, 4, 0)]))
        try expectTable(
            .runBeyondRegion(run: 1, firstPage: .max, pageCount: .max, regionPages: regionPages),
            pagesPayload(region: 0, runs: [(0, 1, zeroFlag), (.max, .max, zeroFlag)]))
    }

    @Test("the runs must describe exactly the data the record carries")
    func dataLength() throws {
        let page = Samples.page(1)
        // One data page described, none carried; two carried for one; half a page.
        try expectTable(.dataLengthMismatch(described: 4096, carried: 0, atLeast: true), pagesPayload(region: 0, runs: [(0, 1, 0)]))
        try expectTable(.dataLengthMismatch(described: 4096, carried: 8192, atLeast: false), pagesPayload(region: 0, runs: [(0, 1, 0)], data: page + page))
        try expectTable(.dataLengthMismatch(described: 0, carried: 2048, atLeast: false), pagesPayload(region: 0, runs: [(0, 1, zeroFlag)], data: Array(page[0..<2048])))
        // A run count that does not match the bytes: one run declared, two written.
        try expectTable(.dataLengthMismatch(described: 0, carried: 16, atLeast: false), pagesPayload(region: 0, runCount: 1, runs: [(0, 1, zeroFlag), (1, 1, zeroFlag)]))
        // A huge page count on a data run stops counting as soon as it passes the payload.
        let huge = [MemoryRegionDescriptor(start: 0, length: 1 << 62, pageSize: 1 << 30)]
        try expectTable(.dataLengthMismatch(described: UInt64(UInt32.max) << 30, carried: 0, atLeast: true), pagesPayload(region: 0, runs: [(0, .max, 0)]), regions: huge)
        // And a valid one passes both ways.
        try expectAccepted(pagesPayload(region: 0, runs: [(0, 1, 0), (1, 5, zeroFlag)], data: page))
    }

    @Test("record header: device 0xFFFF, phase 1 or 2, rounds never back, no phase 1 after phase 2")
    func order() throws {
        let valid = pagesPayload(region: 0, runs: [(0, 1, zeroFlag)])
        var (error, at) = try refusal(valid, header: pagesHeader(device: 0))
        #expect(error == StreamError(offset: at, kind: .unexpectedFieldValue(field: "device", expected: 0xFFFF, found: 0)))
        for phase: UInt8 in [0, 3] {
            (error, at) = try refusal(valid, header: pagesHeader(phase: phase))
            #expect(error == StreamError(offset: at, kind: .invalidPhase(phase)))
        }
        let five: (inout StreamEncoder, inout [UInt8]) throws -> Void = { encoder, bytes in
            try encoder.appendPages(region: 0, phase: .preCopy, round: 5, runs: [PageRun(firstPage: 0, pageCount: 1, isZero: true)], data: [], to: &bytes)
        }
        (error, at) = try refusal(valid, header: pagesHeader(round: 4), before: five)
        #expect(error == StreamError(offset: at, kind: .pageRoundRegression(previous: 5, found: 4)))
        (error, _) = try refusal(valid, header: pagesHeader(round: 5), before: five)
        #expect(error?.kind == .missingEndOfStream)  // same round again is fine
        let final: (inout StreamEncoder, inout [UInt8]) throws -> Void = { encoder, bytes in
            try encoder.appendPages(region: 1, phase: .stopCopy, round: 5, runs: [PageRun(firstPage: 1, pageCount: 1, isZero: true)], data: [], to: &bytes)
        }
        (error, at) = try refusal(valid, header: pagesHeader(phase: 1, round: 6), before: final)
        #expect(error == StreamError(offset: at, kind: .pagePhaseRegression))
    }

    @Test("the encoder refuses what the decoder would refuse, before writing anything")
    func encoderRules() throws {
        var encoder = try StreamEncoder(header: Samples.header11([Samples.mdevDevice], maxPayload: 8192, regions: Samples.regions))
        var bytes = encoder.encodeHeader()
        let zero = [PageRun(firstPage: 0, pageCount: 1, isZero: true)]
        func refused(_ kind: StreamUsageError.Kind, _ call: (inout StreamEncoder, inout [UInt8]) throws -> Void) {
            let before = bytes
            #expect(throws: StreamUsageError(kind)) { try call(&encoder, &bytes) }
            #expect(bytes == before && encoder.nextSequence == 0)
        }
        refused(.invalidPageTable(.regionOutOfRange(region: 2, regionCount: 2))) { try $0.appendPages(region: 2, phase: .preCopy, round: 0, runs: zero, data: [], to: &$1) }
        refused(.invalidPageTable(.noRuns)) { try $0.appendPages(region: 0, phase: .preCopy, round: 0, runs: [], data: [], to: &$1) }
        refused(.invalidPageTable(.emptyRun(run: 0))) { try $0.appendPages(region: 0, phase: .preCopy, round: 0, runs: [PageRun(firstPage: 0, pageCount: 0)], data: [], to: &$1) }
        refused(.invalidPageTable(.runOutOfOrder(run: 1, firstPage: 0, previousEnd: 1))) { try $0.appendPages(region: 0, phase: .preCopy, round: 0, runs: zero + zero, data: [], to: &$1) }
        refused(.invalidPageTable(.runBeyondRegion(run: 0, firstPage: 2, pageCount: 1, regionPages: 2))) {
            try $0.appendPages(region: 1, phase: .preCopy, round: 0, runs: [PageRun(firstPage: 2, pageCount: 1, isZero: true)], data: [], to: &$1)
        }
        refused(.payloadTooLarge(24 + 8192, maxPayload: 8192)) { try $0.appendPages(region: 0, phase: .preCopy, round: 0, runs: [PageRun(firstPage: 0, pageCount: 2)], data: [], to: &$1) }
        refused(.dataLength(expected: 4096, given: 10)) { try $0.appendPages(region: 0, phase: .preCopy, round: 0, runs: [PageRun(firstPage: 0, pageCount: 1)], data: [UInt8](repeating: 1, count: 10), to: &$1) }
        refused(.bufferTooSmall(needed: 56, capacity: 55)) { encoder, _ in
            try encoder.framePages(region: 0, phase: .preCopy, round: 0, runs: zero, dataCRC: 0, into: IOBuffer(capacity: 55), at: 0)
        }
        try encoder.appendPages(region: 0, phase: .stopCopy, round: 3, runs: zero, data: [], to: &bytes)
        let after = bytes
        #expect(throws: StreamUsageError(.pageOrder(reason: "round 2 after round 3; rounds never decrease"))) {
            try encoder.appendPages(region: 0, phase: .stopCopy, round: 2, runs: zero, data: [], to: &bytes)
        }
        #expect(throws: StreamUsageError(.pageOrder(reason: "phase 1 pages after phase 2 pages"))) {
            try encoder.appendPages(region: 0, phase: .preCopy, round: 3, runs: zero, data: [], to: &bytes)
        }
        #expect(bytes == after)
        var none = try StreamEncoder(header: Samples.header11([Samples.mdevDevice]))
        var ignored: [UInt8] = []
        #expect(throws: StreamUsageError(.invalidPageTable(.noRegions))) {
            try none.appendPages(region: 0, phase: .preCopy, round: 0, runs: zero, data: [], to: &ignored)
        }
    }

    @Test("framePages writes exactly the bytes appendPages writes, control part in place")
    func frameMatchesAppend() throws {
        let header = Samples.header11([Samples.mdevDevice], regions: Samples.regions)
        var arrayEncoder = try StreamEncoder(header: header)
        var frameEncoder = try StreamEncoder(header: header)
        var expected: [UInt8] = []
        let control = IOBuffer(capacity: 256)
        let runs = [PageRun(firstPage: 3, pageCount: 1), PageRun(firstPage: 4, pageCount: 2, isZero: true), PageRun(firstPage: 9, pageCount: 1)]
        let data = Samples.page(3) + Samples.page(9)
        try arrayEncoder.appendPages(region: 0, phase: .preCopy, round: 7, runs: runs, data: data, to: &expected)
        let frame = try frameEncoder.framePages(
            region: 0, phase: .preCopy, round: 7, runs: runs, dataCRC: CRC32C.checksum(data), into: control, at: 100)
        #expect(frame.controlLength == 32 + 8 + 48 && frame.dataLength == 8192 && frame.recordLength == frame.controlLength + 8192)
        #expect(control.bytes(100..<(100 + frame.controlLength)) + data == expected)
    }

    @Test("zero-copy: guest memory sent from its pages and received into a target's pages")
    func zeroCopyMemory() throws {
        var rng = SplitMix64(state: 2024)
        let regions = randomRegions
        // The source guest: random pages, some all zero.
        let source = regions.map { IOBuffer(capacity: Int($0.length)) }
        for (index, memory) in source.enumerated() {
            for page in 0..<Int(regions[index].pageCount) {
                let bytes = page % 3 == 0 ? [UInt8](repeating: 0, count: 4096) : (0..<4096).map { _ in UInt8.random(in: 0...255, using: &rng) }
                memory.write(bytes, at: page * 4096)
            }
        }
        // Sender: per region, runs of up to 2 data pages or any number of zero pages; the
        // control bytes go out of a small buffer, the data straight from `source` (writev).
        var encoder = try StreamEncoder(header: Samples.header11([Samples.mdevDevice], maxPayload: 16384, regions: regions))
        var wire = encoder.encodeHeader()
        let control = IOBuffer(capacity: 4096)
        var round: UInt64 = 0
        for (index, region) in regions.enumerated() {
            var page = 0
            while page < Int(region.pageCount) {
                var runs: [PageRun] = []
                var dataPages = 0
                while page < Int(region.pageCount) && runs.count < 8 && dataPages < 2 {
                    let isZero = source[index].bytes((page * 4096)..<((page + 1) * 4096)).allSatisfy { $0 == 0 }
                    runs.append(PageRun(firstPage: UInt64(page), pageCount: 1, isZero: isZero))
                    if !isZero { dataPages += 1 }
                    page += 1
                }
                var crc: UInt32 = 0
                for run in runs where !run.isZero {
                    let range = Int(run.firstPage) * 4096..<(Int(run.firstPage) + 1) * 4096
                    crc = CRC32C.update(crc, source[index], range)
                }
                let frame = try encoder.framePages(region: index, phase: .preCopy, round: round, runs: runs, dataCRC: crc, into: control, at: 0)
                wire += control.bytes(0..<frame.controlLength)
                for run in runs where !run.isZero { wire += source[index].bytes(Int(run.firstPage) * 4096..<(Int(run.firstPage) + 1) * 4096) }
                round += 1
            }
        }
        try encoder.appendDeviceState(device: 0, phase: .stopCopy, payload: [1], to: &wire)
        try encoder.appendDeviceDigest(device: 0, to: &wire)
        try encoder.appendEndOfDevice(device: 0, to: &wire)
        try encoder.appendEndOfStream(to: &wire)

        // Receiver: record header and table into a small buffer, data straight into the target.
        let target = regions.map { region -> IOBuffer in
            let memory = IOBuffer(capacity: Int(region.length))
            memory.write([UInt8](repeating: 0xEE, count: Int(region.length)), at: 0)  // stale contents
            return memory
        }
        var socket = PieceSource(bytes: wire, seed: 9)
        var decoder = StreamDecoder(limits: StreamLimits(maxPayload: 16384))
        let prefix = socket.readExactly(16)
        _ = try decoder.decodeHeader(prefix + socket.readExactly(try decoder.decodeHeaderPrefix(prefix) - 16))
        let small = IOBuffer(capacity: 32 + 16384)
        var pagesRecords = 0
        while !decoder.isComplete {
            small.write(socket.readExactly(32), at: 0)
            let header = try decoder.decodeRecordHeader(from: small, at: 0)
            guard header.type == .pages else {
                small.write(socket.readExactly(Int(header.payloadLength)), at: 32)
                _ = try decoder.decodePayload(in: small, range: 32..<(32 + Int(header.payloadLength)))
                continue
            }
            small.write(socket.readExactly(8), at: 32)
            let tableLength = try decoder.decodePageTableLength(in: small, range: 32..<40)
            #expect(decoder.expectation == .pageTable(tableLength))
            small.write(socket.readExactly(tableLength - 8), at: 40)
            let table = try decoder.decodePageTable(in: small, range: 32..<(32 + tableLength))
            #expect(decoder.expectation == .pageData(table.dataLength))
            var crc: UInt32 = 0
            for placement in table.placements {
                let range = Int(placement.regionBytes.lowerBound)..<Int(placement.regionBytes.upperBound)
                if placement.run.isZero {
                    target[table.region].write([UInt8](repeating: 0, count: range.count), at: range.lowerBound)
                } else {
                    target[table.region].write(socket.readExactly(range.count), at: range.lowerBound)
                    crc = CRC32C.update(crc, target[table.region], range)
                }
            }
            try decoder.finishPages(dataCRC: crc)
            pagesRecords += 1
        }
        try decoder.endOfInput(available: 0)
        #expect(pagesRecords > 10)
        for index in regions.indices {
            #expect(target[index].bytes(0..<target[index].capacity) == source[index].bytes(0..<source[index].capacity), "region \(index)")
        }
        let summary = try #require(decoder.summary)
        #expect(summary.regions.map { $0.preCopy.dataPages + $0.preCopy.zeroPages } == regions.map(\.pageCount))
    }

    @Test("a data byte corrupted in flight: placed, then refused at finishPages")
    func corruptedDataRefusedAfterPlacement() throws {
        var stream = try Samples.pagesStream()
        let starts = try recordOffsets(stream)
        let tableEnd = starts[0] + 32 + 8 + 32
        stream[tableEnd + 100] ^= 0x01
        var reader = StreamReader(stream, pagesInPieces: true)
        _ = try reader.readHeader()
        let error = #expect(throws: StreamError.self) { try reader.next() }
        #expect(error?.offset == UInt64(starts[0]))
        guard case .checksumMismatch? = error?.kind else {
            Issue.record("\(String(describing: error))")
            return
        }
        // The decoder stays failed: nothing after the bad record is accepted.
        #expect(reader.decoder.expectation == .failed)
    }

    @Test("a pages stream cut inside the table or the data names the record and counts its payload")
    func truncatedPages() throws {
        let stream = try Samples.pagesStream()
        let start = try recordOffsets(stream)[0]
        let recordLength = 32 + 8 + 32 + 4096
        for cut in [start + 32 + 3, start + 32 + 8 + 10, start + 32 + 8 + 32 + 1000] {
            for inPieces in [false, true] {
                #expect(read(Array(stream[0..<cut]), pagesInPieces: inPieces).error
                    == StreamError(offset: UInt64(start), kind: .truncated(needed: recordLength, available: cut - start)), "cut \(cut)")
            }
        }
    }
}
