// Parallel channels (per-channel offsets, channel-0-only records) and device digests
// (required from minor 1, checked, refused out of place).
import Testing
@testable import VFIOStream

func digestPayload(_ descriptor: DeviceDescriptor, data: [UInt8]) -> [UInt8] {
    var payload: [UInt8] = []
    payload.appendLittleEndian(CRC32C.checksum(descriptor.encodedFields()))
    payload.appendLittleEndian(CRC32C.checksum(data))
    return payload
}

func digestRecord(device: UInt16 = 0, phase: UInt8 = 0, offset: UInt64) -> RecordHeader {
    RecordHeader(type: .deviceDigest, flags: .skippable, device: device, phase: phase, payloadLength: 0, sequence: 0, offset: offset)
}

func endRecord(device: UInt16 = 0, offset: UInt64) -> RecordHeader {
    RecordHeader(type: .endOfDevice, device: device, payloadLength: 0, sequence: 0, offset: offset)
}

@Suite("Channels and device digests")
struct ChannelDigestTests {
    static let parallel1 = Samples.header11([Samples.pciDevice], channel: StreamChannel(index: 1, count: 3))
    static let parallel0 = Samples.header11([Samples.pciDevice], channel: StreamChannel(index: 0, count: 3))

    /// The error of a stream built by `body` and where the last record began.
    func outcome(_ header: StreamHeader, _ body: (inout StreamEncoder, inout [UInt8]) throws -> Void) throws -> (StreamError?, UInt64) {
        var last = 0
        let bytes = try build(header) { encoder, bytes in
            var recorded: [UInt8] = []
            try body(&encoder, &recorded)
            // Each appended piece is one record; remember where the final one began.
            last = bytes.count + (try lastRecordStart(in: recorded))
            bytes += recorded
        }
        return (read(bytes).error, UInt64(last))
    }

    @Test("one of several channels: gaps between a device's chunks are fine, overlap and going back are not")
    func parallelOffsets() throws {
        var (error, at) = try outcome(Self.parallel1) { encoder, bytes in
            try encoder.appendDeviceState(device: 0, phase: .stopCopy, payload: [1, 2], dataOffset: 10, to: &bytes)
            try encoder.appendDeviceState(device: 0, phase: .stopCopy, payload: [3], dataOffset: 40, to: &bytes)
        }
        #expect(error?.kind == .missingEndOfStream)
        (error, at) = try outcome(Self.parallel1) { encoder, bytes in
            try encoder.appendDeviceState(device: 0, phase: .stopCopy, payload: [1, 2], dataOffset: 10, to: &bytes)
            encoder.appendUncheckedRecord(stateRecord(offset: 11), payload: [3], to: &bytes)
        }
        #expect(error == StreamError(offset: at, kind: .offsetBelowChannelEnd(device: 0, channelEnd: 12, found: 11)))
        (error, at) = try outcome(Self.parallel1) { encoder, bytes in
            try encoder.appendDeviceState(device: 0, phase: .stopCopy, payload: [1, 2], dataOffset: 10, to: &bytes)
            encoder.appendUncheckedRecord(endRecord(offset: 11), payload: words(0, 2, 1), to: &bytes)
        }
        #expect(error == StreamError(offset: at, kind: .offsetBelowChannelEnd(device: 0, channelEnd: 12, found: 11)))
        // The totals of an end record count this channel's records only; its offset is the total.
        (error, _) = try outcome(Self.parallel1) { encoder, bytes in
            try encoder.appendDeviceState(device: 0, phase: .stopCopy, payload: [1, 2], dataOffset: 10, to: &bytes)
            try encoder.appendEndOfDevice(device: 0, totalLength: 100, to: &bytes)
            try encoder.appendEndOfStream(to: &bytes)
        }
        #expect(error == nil)
        // Channel 0 of 1 is a single stream: chunks stay contiguous.
        (error, at) = try outcome(Samples.header11([Samples.pciDevice], channel: .single)) { encoder, bytes in
            encoder.appendUncheckedRecord(stateRecord(offset: 3), payload: [3], to: &bytes)
        }
        #expect(error == StreamError(offset: at, kind: .offsetMismatch(device: 0, expected: 0, found: 3)))
    }

    @Test("progress and digests travel on channel 0 only")
    func primaryOnly() throws {
        var (error, at) = try outcome(Self.parallel1) { encoder, bytes in
            encoder.appendUncheckedRecord(
                RecordHeader(type: .preCopyProgress, device: 0, payloadLength: 0, sequence: 0, offset: 0), payload: words(1, 2), to: &bytes)
        }
        #expect(error == StreamError(offset: at, kind: .notPrimaryChannel(recordType: 2, channel: 1)))
        (error, at) = try outcome(Self.parallel1) { encoder, bytes in
            encoder.appendUncheckedRecord(digestRecord(offset: 0), payload: digestPayload(Samples.pciDevice, data: []), to: &bytes)
        }
        #expect(error == StreamError(offset: at, kind: .notPrimaryChannel(recordType: 6, channel: 1)))
        var encoder = try StreamEncoder(header: Self.parallel1)
        var bytes: [UInt8] = []
        #expect(throws: StreamUsageError(.notPrimaryChannel(record: .preCopyProgress))) {
            try encoder.appendPreCopyProgress(device: 0, initialBytes: 0, dirtyBytes: 0, dataOffset: 0, to: &bytes)
        }
        #expect(throws: StreamUsageError(.notPrimaryChannel(record: .deviceDigest))) {
            try encoder.appendDeviceDigest(device: 0, dataCRC: 0, totalLength: 0, to: &bytes)
        }
        #expect(throws: StreamUsageError(.parameter(what: "dataOffset", reason: "required on one of several channels"))) {
            try encoder.appendDeviceState(device: 0, phase: .stopCopy, payload: [1], to: &bytes)
        }
    }

    @Test("channel 0 of several: the digest's descriptor CRC is checked, its data CRC left to the reassembler")
    func parallelDigest() throws {
        var (error, at) = try outcome(Self.parallel0) { encoder, bytes in
            try encoder.appendDeviceState(device: 0, phase: .stopCopy, payload: [1, 2], dataOffset: 4, to: &bytes)
            try encoder.appendDeviceDigest(device: 0, dataCRC: 0xDEAD_BEEF, totalLength: 9, to: &bytes)
            try encoder.appendEndOfDevice(device: 0, totalLength: 9, to: &bytes)
            try encoder.appendEndOfStream(to: &bytes)
        }
        #expect(error == nil)
        (error, at) = try outcome(Self.parallel0) { encoder, bytes in
            try encoder.appendDeviceDigest(device: 0, dataCRC: 0, totalLength: 9, to: &bytes)
            encoder.appendUncheckedRecord(endRecord(offset: 10), payload: words(0, 0, 0), to: &bytes)
        }
        #expect(error == StreamError(offset: at, kind: .offsetMismatch(device: 0, expected: 9, found: 10)))
        var encoder = try StreamEncoder(header: Self.parallel0)
        var bytes: [UInt8] = []
        #expect(throws: StreamUsageError(.parameter(what: "dataCRC", reason: "required on channel 0 of several"))) {
            try encoder.appendDeviceDigest(device: 0, totalLength: 0, to: &bytes)
        }
        #expect(throws: StreamUsageError(.parameter(what: "totalLength", reason: "required on one of several channels"))) {
            try encoder.appendDeviceDigest(device: 0, dataCRC: 0, to: &bytes)
        }
    }

    @Test("from minor 1 every device needs its digest before its end; in minor 0 it is optional but checked")
    func digestRequired() throws {
        var (error, at) = try outcome(Samples.header11([Samples.pciDevice])) { encoder, bytes in
            try encoder.appendDeviceState(device: 0, phase: .stopCopy, payload: [1], to: &bytes)
            encoder.appendUncheckedRecord(endRecord(offset: 1), payload: words(0, 1, 1), to: &bytes)
        }
        #expect(error == StreamError(offset: at, kind: .missingDeviceDigest(device: 0)))
        // A 1.0 header: no digest needed, and one that is there must be right.
        (error, _) = try outcome(Samples.header([Samples.pciDevice])) { encoder, bytes in
            try encoder.appendDeviceState(device: 0, phase: .stopCopy, payload: [1], to: &bytes)
            try encoder.appendDeviceDigest(device: 0, to: &bytes)
            try encoder.appendEndOfDevice(device: 0, to: &bytes)
            try encoder.appendEndOfStream(to: &bytes)
        }
        #expect(error == nil)
        (error, at) = try outcome(Samples.header([Samples.pciDevice])) { encoder, bytes in
            try encoder.appendDeviceState(device: 0, phase: .stopCopy, payload: [1], to: &bytes)
            encoder.appendUncheckedRecord(digestRecord(offset: 1), payload: digestPayload(Samples.pciDevice, data: [2]), to: &bytes)
        }
        #expect(error == StreamError(offset: at, kind: .deviceDigestMismatch(
            device: 0, part: .data, declared: CRC32C.checksum([2]), computed: CRC32C.checksum([1]))))
    }

    @Test("digests out of place: twice, before more state or progress, after the end, malformed")
    func digestOutOfPlace() throws {
        let header = Samples.header11([Samples.pciDevice])
        let digest: (inout StreamEncoder, inout [UInt8]) throws -> Void = { encoder, bytes in
            try encoder.appendDeviceState(device: 0, phase: .preCopy, payload: [1], to: &bytes)
            try encoder.appendDeviceDigest(device: 0, to: &bytes)
        }
        let valid = digestPayload(Samples.pciDevice, data: [1])
        let cases: [(RecordHeader, [UInt8], StreamError.Kind)] = [
            (digestRecord(offset: 1), valid, .duplicateDeviceDigest(device: 0)),
            (stateRecord(offset: 1), [2], .recordAfterDeviceDigest(device: 0)),
            (RecordHeader(type: .preCopyProgress, device: 0, payloadLength: 0, sequence: 0, offset: 1), words(0, 0), .recordAfterDeviceDigest(device: 0)),
        ]
        for (record, payload, kind) in cases {
            let (error, at) = try outcome(header) { encoder, bytes in
                try digest(&encoder, &bytes)
                encoder.appendUncheckedRecord(record, payload: payload, to: &bytes)
            }
            #expect(error == StreamError(offset: at, kind: kind))
        }
        let malformed: [(RecordHeader, [UInt8], StreamError.Kind)] = [
            (digestRecord(offset: 1), Array(valid.dropLast()), .invalidPayloadLength(type: 6, expected: 8, found: 7)),
            (digestRecord(phase: 2, offset: 1), valid, .unexpectedFieldValue(field: "phase", expected: 0, found: 2)),
            (digestRecord(offset: 0), valid, .offsetMismatch(device: 0, expected: 1, found: 0)),
            (digestRecord(device: 1, offset: 1), valid, .deviceIndexOutOfRange(1, deviceCount: 1)),
        ]
        for (record, payload, kind) in malformed {
            let (error, at) = try outcome(header) { encoder, bytes in
                try encoder.appendDeviceState(device: 0, phase: .preCopy, payload: [1], to: &bytes)
                encoder.appendUncheckedRecord(record, payload: payload, to: &bytes)
            }
            #expect(error == StreamError(offset: at, kind: kind))
        }
        let (error, at) = try outcome(Samples.header([Samples.pciDevice])) { encoder, bytes in
            try encoder.appendEndOfDevice(device: 0, to: &bytes)
            encoder.appendUncheckedRecord(digestRecord(offset: 0), payload: digestPayload(Samples.pciDevice, data: []), to: &bytes)
        }
        #expect(error == StreamError(offset: at, kind: .recordAfterEndOfDevice(device: 0)))
    }

    @Test("without record checksums the digest's descriptor CRC is still checked")
    func noChecksumDigest() throws {
        var stream = try Samples.noChecksumStream()
        let starts = try recordOffsets(stream, limits: acceptingUnchecked)
        stream[starts[1] + 32] ^= 1  // descriptorCRC's first byte; no record CRC to reseal
        #expect(read(stream, limits: acceptingUnchecked).error?.offset == UInt64(starts[1]))
        guard case .deviceDigestMismatch(0, .descriptor, _, _)? = read(stream, limits: acceptingUnchecked).error?.kind else {
            Issue.record("descriptor CRC not checked")
            return
        }
    }
}

/// Where the last record of `bytes` (records only, no header) begins.
func lastRecordStart(in bytes: [UInt8]) throws -> Int {
    var at = 0
    var last = 0
    while at + 32 <= bytes.count {
        last = at
        at += 32 + (Int(bytes[at + 8]) | Int(bytes[at + 9]) << 8 | Int(bytes[at + 10]) << 16 | Int(bytes[at + 11]) << 24)
    }
    try #require(at == bytes.count, "records do not fill the bytes")
    return last
}
