import Foundation
import Testing
import VFIOBuffers
@testable import VFIOStream

/// Deterministic generator so failures reproduce.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// What a test wrote, to compare with what the decoder read back.
enum Written: Equatable {
    case state(device: Int, phase: StatePhase, bytes: [UInt8])
    case progress(device: Int, initial: UInt64, dirty: UInt64)
    case pages(region: Int, phase: StatePhase, round: UInt64, runs: [PageRun], data: [UInt8])
    case digest(Int)
    case endOfDevice(Int)
    case endOfStream
}

/// The regions of random 1.1 streams: small, so runs land on both ends of them.
let randomRegions = [
    MemoryRegionDescriptor(start: 0, length: 64 * 4096, pageSize: 4096),
    MemoryRegionDescriptor(start: 1 << 30, length: 8 * 4096, pageSize: 4096),
]

/// Random ascending runs inside `region`, at most two pages of data in all.
func randomRuns(_ region: MemoryRegionDescriptor, using rng: inout SplitMix64) -> (runs: [PageRun], data: [UInt8]) {
    var runs: [PageRun] = []
    var data: [UInt8] = []
    var page = UInt64.random(in: 0..<region.pageCount, using: &rng)
    var dataPages = 0
    while page < region.pageCount && runs.count < 6 {
        let zero = dataPages >= 2 || Bool.random(using: &rng)
        let count = zero ? UInt32.random(in: 1...UInt32(region.pageCount - page), using: &rng) : 1
        runs.append(PageRun(firstPage: page, pageCount: count, isZero: zero))
        if !zero {
            data += (0..<Int(region.pageSize)).map { _ in .random(in: 0...255, using: &rng) }
            dataPages += 1
        }
        page += UInt64(count) + UInt64.random(in: 0...3, using: &rng)
    }
    return (runs, data)
}

/// Builds a random valid stream for `deviceCount` devices, every record type included. A
/// 1.1 stream also has memory regions, pages records of both phases and device digests.
func randomStream(deviceCount: Int, seed: UInt64, v11: Bool = false) throws -> (bytes: [UInt8], written: [Written]) {
    var rng = SplitMix64(state: seed)
    let devices = (0..<deviceCount).map { Samples.device($0, flags: $0 % 2 == 0 ? [.stopCopy, .preCopy] : [.stopCopy]) }
    let header = v11
        ? Samples.header11(devices, maxPayload: 16384, migrationID: .random(), regions: randomRegions)
        : Samples.header(devices, maxPayload: 4096)
    var encoder = try StreamEncoder(header: header)
    var bytes = encoder.encodeHeader()
    var written: [Written] = []
    // Each device: (pre-copy steps if allowed), stop-copy steps, (digest), end. Pages: rounds
    // of phase 1, then phase 2. Interleave at random.
    var plans: [[Written]] = devices.indices.map { index in
        var plan: [Written] = []
        if devices[index].migrationFlags.contains(.preCopy) {
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                plan.append(.progress(device: index, initial: .random(in: 0...1 << 40, using: &rng), dirty: .random(in: 0...4096, using: &rng)))
                let length = Int.random(in: 1...4096, using: &rng)
                plan.append(.state(device: index, phase: .preCopy, bytes: (0..<length).map { _ in .random(in: 0...255, using: &rng) }))
            }
        }
        for _ in 0..<Int.random(in: 0...3, using: &rng) {
            let length = Int.random(in: 1...4096, using: &rng)
            plan.append(.state(device: index, phase: .stopCopy, bytes: (0..<length).map { _ in .random(in: 0...255, using: &rng) }))
        }
        if v11 { plan.append(.digest(index)) }
        plan.append(.endOfDevice(index))
        return plan
    }
    if v11 {
        var pages: [Written] = []
        var round: UInt64 = 0
        for phase in [StatePhase.preCopy, .stopCopy] {
            for _ in 0..<Int.random(in: 0...4, using: &rng) {
                let region = Int.random(in: 0..<randomRegions.count, using: &rng)
                let (runs, data) = randomRuns(randomRegions[region], using: &rng)
                pages.append(.pages(region: region, phase: phase, round: round, runs: runs, data: data))
                round += UInt64.random(in: 0...2, using: &rng)
            }
        }
        plans.append(pages)
    }
    while let pick = plans.indices.filter({ !plans[$0].isEmpty }).randomElement(using: &rng) {
        let step = plans[pick].removeFirst()
        switch step {
        case let .state(device, phase, payload): try encoder.appendDeviceState(device: device, phase: phase, payload: payload, to: &bytes)
        case let .progress(device, initial, dirty): try encoder.appendPreCopyProgress(device: device, initialBytes: initial, dirtyBytes: dirty, to: &bytes)
        case let .pages(region, phase, round, runs, data):
            try encoder.appendPages(region: region, phase: phase, round: round, runs: runs, data: data, to: &bytes)
        case let .digest(device): try encoder.appendDeviceDigest(device: device, to: &bytes)
        case let .endOfDevice(device): try encoder.appendEndOfDevice(device: device, to: &bytes)
        case .endOfStream: break
        }
        written.append(step)
    }
    try encoder.appendEndOfStream(to: &bytes)
    written.append(.endOfStream)
    return (bytes, written)
}

/// What the decoder handed out, as Written (payload bytes taken from `payload`).
func asWritten(_ record: Record, payload: [UInt8]) -> Written? {
    switch record {
    case let .deviceState(chunk): return .state(device: chunk.device, phase: chunk.phase, bytes: payload)
    case let .preCopyProgress(p): return .progress(device: p.device, initial: p.initialBytes, dirty: p.dirtyBytes)
    case let .pages(table):
        return .pages(region: table.region, phase: table.phase, round: table.round, runs: table.runs, data: Array(payload[table.tableLength...]))
    case let .deviceDigest(digest): return .digest(digest.device)
    case let .endOfDevice(totals): return .endOfDevice(totals.device)
    case .endOfStream: return .endOfStream
    case .skipped: return nil
    }
}

func readBack(_ bytes: [UInt8], pagesInPieces: Bool = false) throws -> [Written] {
    var reader = StreamReader(bytes, limits: StreamLimits(maxPayload: 16384), pagesInPieces: pagesInPieces)
    _ = try reader.readHeader()
    var result: [Written] = []
    while let item = try reader.next() {
        guard let step = asWritten(item.record, payload: Array(bytes[item.payload])) else {
            Issue.record("nothing is skippable in these streams")
            continue
        }
        result.append(step)
    }
    return result
}

@Suite("Round trips")
struct RoundTripTests {
    @Test("every record type, 0 to 3 devices, 1.0 and 1.1", arguments: 0...3, [false, true])
    func streams(deviceCount: Int, v11: Bool) throws {
        for seed in 0..<8 as Range<UInt64> {
            let (bytes, written) = try randomStream(deviceCount: deviceCount, seed: seed &* 7919 &+ UInt64(deviceCount), v11: v11)
            #expect(try readBack(bytes) == written, "seed \(seed)")
            #expect(try readBack(bytes, pagesInPieces: true) == written, "seed \(seed)")
            let summary = try StreamReader.verify(bytes, limits: StreamLimits(maxPayload: 16384))
            #expect(summary.complete && summary.devices.count == deviceCount && summary.devices.allSatisfy(\.ended))
            let stateBytes = written.reduce(0) { total, step in
                if case let .state(_, _, payload) = step { return total + payload.count }
                return total
            }
            #expect(summary.totalStateBytes == UInt64(stateBytes))
        }
    }

    @Test("IOBuffer framing writes the same bytes as array framing, in place, with or without record CRCs", arguments: [true, false])
    func ioBufferFraming(checksums: Bool) throws {
        let header = Samples.header11([Samples.pciDevice], maxPayload: 8192, flags: checksums ? [] : .noRecordChecksums)
        var arrayEncoder = try StreamEncoder(header: header)
        var bufferEncoder = try StreamEncoder(header: header)
        var expected = arrayEncoder.encodeHeader()
        var produced = bufferEncoder.encodeHeader()
        let buffer = IOBuffer(capacity: 32 + 8192)
        var rng = SplitMix64(state: 42)
        func chunk(_ phase: StatePhase, _ length: Int) throws {
            let payload = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            try arrayEncoder.appendDeviceState(device: 0, phase: phase, payload: payload, to: &expected)
            buffer.write(payload, at: 32)  // what a read(2) from the data fd would do
            let record = try bufferEncoder.frameDeviceState(device: 0, phase: phase, payloadLength: length, in: buffer, at: 0)
            #expect(buffer.bytes(32..<(32 + length)) == payload, "payload must stay where it was read")
            produced += buffer.bytes(0..<record.recordLength)
        }
        try chunk(.preCopy, 8192)
        try chunk(.preCopy, 1)
        try arrayEncoder.appendPreCopyProgress(device: 0, initialBytes: 1, dirtyBytes: 2, to: &expected)
        // The progress record is written at an offset inside the buffer to exercise `at:`.
        var record = try bufferEncoder.framePreCopyProgress(device: 0, initialBytes: 1, dirtyBytes: 2, in: buffer, at: 100)
        produced += buffer.bytes(100..<(100 + record.recordLength))
        try chunk(.stopCopy, 4000)
        // A chunk whose CRC the caller computed: the record CRC is joined, not recomputed.
        let payload = (0..<3000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        try arrayEncoder.appendDeviceState(device: 0, phase: .stopCopy, payload: payload, to: &expected)
        buffer.write(payload, at: 32)
        record = try bufferEncoder.frameDeviceState(
            device: 0, phase: .stopCopy, payloadLength: 3000, payloadCRC: CRC32C.checksum(payload), in: buffer, at: 0)
        produced += buffer.bytes(0..<record.recordLength)
        try arrayEncoder.appendDeviceDigest(device: 0, to: &expected)
        record = try bufferEncoder.frameDeviceDigest(device: 0, in: buffer, at: 50)
        produced += buffer.bytes(50..<(50 + record.recordLength))
        try arrayEncoder.appendEndOfDevice(device: 0, to: &expected)
        record = try bufferEncoder.frameEndOfDevice(device: 0, in: buffer, at: 0)
        produced += buffer.bytes(0..<record.recordLength)
        try arrayEncoder.appendEndOfStream(to: &expected)
        record = try bufferEncoder.frameEndOfStream(in: buffer, at: 0)
        produced += buffer.bytes(0..<record.recordLength)
        #expect(produced == expected)
        let limits = StreamLimits(acceptsNoRecordChecksums: !checksums)
        #expect(throws: Never.self) { try StreamReader.verify(produced, limits: limits) }
        let crcs = try StreamReader(produced, limits: limits).allRecords().map(\.header.checksum)
        #expect(crcs.allSatisfy { $0 == 0 } == !checksums && crcs.count == 8)
    }

    @Test("pull decoding through an IOBuffer with input arriving in odd pieces")
    func pullDecoding() throws {
        let (bytes, written) = try randomStream(deviceCount: 3, seed: 99)
        var source = PieceSource(bytes: bytes, seed: 5)
        var decoder = StreamDecoder(limits: StreamLimits(maxPayload: 4096))
        let buffer = IOBuffer(capacity: 32 + 4096)

        let prefix = source.readExactly(StreamFormat.headerPrefixSize)
        let length = try decoder.decodeHeaderPrefix(prefix)
        #expect(decoder.expectation == .header(length))
        _ = try decoder.decodeHeader(prefix + source.readExactly(length - prefix.count))
        var result: [Written] = []
        while !decoder.isComplete {
            #expect(decoder.expectation == .recordHeader(32))
            buffer.write(source.readExactly(32), at: 0)
            let header = try decoder.decodeRecordHeader(from: buffer, at: 0)
            let payloadLength = Int(header.payloadLength)
            buffer.write(source.readExactly(payloadLength), at: 32)
            let record = try decoder.decodePayload(in: buffer, range: 32..<(32 + payloadLength))
            guard let step = asWritten(record, payload: buffer.bytes(32..<(32 + payloadLength))) else {
                Issue.record("unexpected skip")
                continue
            }
            result.append(step)
        }
        #expect(decoder.expectation == .endOfInput)
        try decoder.endOfInput(available: 0)
        #expect(result == written)
        #expect(decoder.position == UInt64(bytes.count))
    }

    @Test("header fields: empty strings omitted, optionals absent, all round-trip")
    func headerVariants() throws {
        var minimal = DeviceDescriptor(deviceAPI: "vfio-pci", driverName: "", driverVersion: "", migrationFlags: [.stopCopy])
        var header = StreamHeader(creationTimeNanoseconds: -5, maxPayload: 4096, devices: [minimal])
        var decoder = StreamDecoder()
        #expect(try decoder.decodeHeader(header.encoded()) == header)
        minimal.migrationFlags = MigrationFlags(rawValue: 0x8000_0000_0000_0007)  // unknown bits carried
        minimal.expectedStateSize = 0
        header.devices = [minimal, Samples.mdevDevice, Samples.pciDevice]
        header.flags = 0x0001_0000  // an optional flag this reader does not know: ignored, kept
        decoder = StreamDecoder()
        #expect(try decoder.decodeHeader(header.encoded()) == header)
        header.devices = []
        decoder = StreamDecoder()
        #expect(try decoder.decodeHeader(header.encoded()) == header)
        #expect(try header.encoded().count == StreamFormat.minimumHeaderLength)
    }

    @Test("JSON: header round-trips; mdev uses mdevctl's attrs shape; flags by name")
    func json() throws {
        let header = Samples.header([Samples.pciDevice, Samples.mdevDevice])
        let data = try JSONEncoder().encode(header)
        #expect(try JSONDecoder().decode(StreamHeader.self, from: data) == header)

        let mdev = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(Samples.mdevDevice.mdev)) as? [String: Any]
        #expect(mdev?["mdev_type"] as? String == "vfio_ap-passthrough")
        let attrs = mdev?["attrs"] as? [[String: String]]
        #expect(attrs == [["assign_adapter": "5"], ["assign_domain": "0x47"], ["assign_domain": "0xff"]])

        let device = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(Samples.pciDevice)) as? [String: Any]
        #expect(device?["migrationFlags"] as? [String] == ["STOP_COPY", "PRE_COPY"])
        let pci = device?["pci"] as? [String: String]
        #expect(pci?["vendor"] == "0x15b3" && pci?["class"] == "0x020000" && pci?["revision"] == "0x00")
    }

    @Test("summary JSON for inspect")
    func summaryJSON() throws {
        let summary = try StreamReader.verify(try Samples.oneDeviceStream())
        let decoded = try JSONDecoder().decode(StreamSummary.self, from: try JSONEncoder().encode(summary))
        #expect(decoded == summary)
        #expect(summary.devices[0].progressRecords == 1)
        #expect(summary.devices[0].lastProgress?.initialBytes == 8)
    }
}

/// Hands out a byte array in pieces of random size, like a socket would.
struct PieceSource {
    let bytes: [UInt8]
    var index = 0
    var rng: SplitMix64

    init(bytes: [UInt8], seed: UInt64) {
        self.bytes = bytes
        self.rng = SplitMix64(state: seed)
    }

    mutating func readExactly(_ count: Int) -> [UInt8] {
        var out: [UInt8] = []
        while out.count < count {
            let piece = min(count - out.count, Int.random(in: 1...7, using: &rng), bytes.count - index)
            precondition(piece > 0, "source exhausted")
            out += bytes[index..<(index + piece)]
            index += piece
        }
        return out
    }
}
