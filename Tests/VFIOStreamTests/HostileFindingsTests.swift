// The findings of the hostile-stream campaign against v1.0, each pinned: repeated unknown
// skippable fields, the truncation numbers, empty deviceAPI, records tied to their
// descriptor (device digests), and encoder misuse that must throw.
import Testing
import VFIOBuffers
@testable import VFIOStream

/// A header whose fields area is `body`'s output (after the fixed part), sealed.
func headerWithFields(deviceCount: Int = 0, _ body: (inout [UInt8]) -> Void) throws -> [UInt8] {
    var bytes = Array(try Samples.header([]).encoded().prefix(StreamFormat.fixedHeaderSize))
    bytes.storeLittleEndian(UInt16(deviceCount), at: 18)
    body(&bytes)
    bytes.storeLittleEndian(UInt32(bytes.count + 4), at: 12)
    bytes.appendLittleEndian(CRC32C.checksum(bytes))
    return bytes
}

/// A two-device 1.1 stream: device 0 "AAAA", device 1 "wxyz" (equal lengths, so offsets
/// and totals cannot tell them apart), both stop-copy, digests, ends.
func twoDeviceStream11(swapStateIndices: Bool = false, swapAllIndices: Bool = false) throws -> [UInt8] {
    try build(Samples.header11([Samples.pciDevice, Samples.mdevDevice])) { encoder, bytes in
        let first: UInt16 = swapStateIndices || swapAllIndices ? 1 : 0
        encoder.appendUncheckedRecord(stateRecord(device: first, offset: 0), payload: Array("AAAA".utf8), to: &bytes)
        encoder.appendUncheckedRecord(stateRecord(device: 1 - first, offset: 0), payload: Array("wxyz".utf8), to: &bytes)
        let digest = swapAllIndices ? 1 : 0
        for (device, data) in [(0, "AAAA"), (1, "wxyz")] {
            var payload: [UInt8] = []
            payload.appendLittleEndian(CRC32C.checksum(Samples.header11([Samples.pciDevice, Samples.mdevDevice]).devices[device].encodedFields()))
            payload.appendLittleEndian(CRC32C.checksum(Array(data.utf8)))
            encoder.appendUncheckedRecord(
                RecordHeader(type: .deviceDigest, flags: .skippable, device: UInt16(device ^ digest), payloadLength: 0, sequence: 0,
                             offset: UInt64(data.count)),
                payload: payload, to: &bytes)
        }
        for (device, length) in [(0, 4), (1, 4)] {
            encoder.appendUncheckedRecord(
                RecordHeader(type: .endOfDevice, device: UInt16(device ^ digest), payloadLength: 0, sequence: 0, offset: UInt64(length)),
                payload: words(0, UInt64(length), 1), to: &bytes)
        }
        encoder.appendUncheckedRecord(
            RecordHeader(type: .endOfStream, device: StreamFormat.noDevice, payloadLength: 0, sequence: 0, offset: 0),
            payload: [2, 0, 0, 0, 0, 0, 0, 0] + words(8, 6), to: &bytes)
    }
}

@Suite("Hostile-stream findings")
struct HostileFindingsTests {
    // MARK: A.1 The duplicate rule is for known tags only

    @Test("a repeated unknown SKIPPABLE field is skipped, in the header and in a descriptor")
    func repeatedUnknownSkippable() throws {
        let header = try headerWithFields { bytes in
            bytes.appendField(0x7F01, [1], flags: .skippable)
            bytes.appendField(0x7F01, [2, 2], flags: .skippable)
        }
        var encoder = try StreamEncoder(header: Samples.header([]))
        var stream = header
        try encoder.appendEndOfStream(to: &stream)
        #expect(read(stream).error == nil)

        var fields = Samples.pciDevice.encodedFields()
        fields.appendField(0x7F02, [1, 2, 3], flags: .skippable)
        fields.appendField(0x7F02, [4], flags: .skippable)
        let withDevice = try headerWithFields(deviceCount: 1) { $0.appendField(HeaderFieldTag.device, fields) }
        var decoder = StreamDecoder()
        #expect(try decoder.decodeHeader(withDevice).devices == [Samples.pciDevice])
    }

    @Test("a repeated known field is still refused, at the repeat")
    func repeatedKnown() throws {
        var fields = Samples.pciDevice.encodedFields()
        let repeatAt = fields.count
        fields.appendStringField(DescriptorFieldTag.driverName, "other", omitIfEmpty: false)
        let bytes = try headerWithFields(deviceCount: 1) { $0.appendField(HeaderFieldTag.device, fields) }
        let fieldsStart = StreamFormat.fixedHeaderSize + 8
        #expect(read(bytes).error == StreamError(offset: UInt64(fieldsStart + repeatAt), kind: .duplicateField(tag: DescriptorFieldTag.driverName)))
        // Both new once-only header fields, too.
        for tag in [HeaderFieldTag.migrationID, HeaderFieldTag.channel] {
            let value: [UInt8] = tag == HeaderFieldTag.channel ? [0, 0, 1, 0] : Array(repeating: 7, count: 16)
            let twice = try headerWithFields { bytes in
                bytes.appendField(tag, value, flags: .skippable)
                bytes.appendField(tag, value, flags: .skippable)
            }
            #expect(read(twice).error == StreamError(offset: UInt64(StreamFormat.fixedHeaderSize + 8 + value.count), kind: .duplicateField(tag: tag)))
        }
    }

    // MARK: A.2 Truncation counts the record header once

    @Test("a stream one byte short: the record at X needs 56 bytes, input ends after 55")
    func truncatedByOne() throws {
        let stream = try Samples.oneDeviceStream()
        let last = try recordOffsets(stream).last!
        let error = try #require(read(Array(stream.dropLast())).error)
        #expect(error == StreamError(offset: UInt64(last), kind: .truncated(needed: 56, available: 55)))
        #expect(error.description == "record at offset \(last) needs 56 bytes, input ends after 55 (truncated stream)")
        // The header, cut: the same shape of message, naming the header.
        let headerLength = try recordOffsets(stream)[0]
        let headerCut = try #require(read(Array(stream.prefix(100))).error)
        #expect(headerCut.description == "stream header needs \(headerLength) bytes, input ends after 100 (truncated stream)")
    }

    @Test("endOfInput in the payload stage takes the payload bytes that arrived")
    func endOfInputCountsPayloadOnly() throws {
        let stream = try Samples.oneDeviceStream()
        let starts = try recordOffsets(stream)
        var decoder = StreamDecoder()
        _ = try decoder.decodeHeader(stream)
        let header = try decoder.decodeRecordHeader(Array(stream[starts[0]..<(starts[0] + 32)]))
        #expect(header.payloadLength == 16)
        #expect(throws: StreamError(offset: UInt64(starts[0]), kind: .truncated(needed: 48, available: 32 + 15))) {
            try decoder.endOfInput(available: 15)
        }
        #expect(throws: StreamError(offset: UInt64(starts[0]), kind: .truncated(needed: 48, available: 32))) {
            try decoder.endOfInput(available: 0)
        }
    }

    // MARK: A.3 deviceAPI occurs once with a value

    @Test("an empty deviceAPI is refused by the decoder, at its field, and by the encoder")
    func emptyDeviceAPI() throws {
        var descriptor = Samples.pciDevice
        descriptor.deviceAPI = ""
        var fields: [UInt8] = []
        fields.appendStringField(DescriptorFieldTag.deviceAPI, "", omitIfEmpty: false)
        fields.appendStringField(DescriptorFieldTag.driverName, "d", omitIfEmpty: false)
        fields.appendStringField(DescriptorFieldTag.driverVersion, "1", omitIfEmpty: false)
        fields.appendField(DescriptorFieldTag.migrationFlags, words(1))
        let bytes = try headerWithFields(deviceCount: 1) { $0.appendField(HeaderFieldTag.device, fields) }
        #expect(read(bytes).error == StreamError(
            offset: UInt64(StreamFormat.fixedHeaderSize + 8), kind: .malformedField(tag: DescriptorFieldTag.deviceAPI, reason: "deviceAPI is empty")))

        let header = Samples.header11([Samples.mdevDevice, descriptor])
        #expect(throws: StreamUsageError(.invalidHeader(reason: "device 1: deviceAPI is empty"))) { try header.encoded() }
        #expect(throws: StreamUsageError(.invalidHeader(reason: "device 1: deviceAPI is empty"))) { try StreamEncoder(header: header) }
    }

    // MARK: A.4 Records are tied to their descriptor

    @Test("a 1.0 stream with every device index swapped passes: nothing ties data to descriptor")
    func swappedIndicesPassIn10() throws {
        var stream = try build([Samples.pciDevice, Samples.mdevDevice]) { encoder, bytes in
            try encoder.appendDeviceState(device: 0, phase: .stopCopy, payload: Array("AAAA".utf8), to: &bytes)
            try encoder.appendDeviceState(device: 1, phase: .stopCopy, payload: Array("AAAA".utf8), to: &bytes)
            try encoder.appendEndOfDevice(device: 0, to: &bytes)
            try encoder.appendEndOfDevice(device: 1, to: &bytes)
            try encoder.appendEndOfStream(to: &bytes)
        }
        for start in try recordOffsets(stream).dropLast() {
            stream[start + 4] ^= 1
            resealRecord(&stream, at: start)
        }
        #expect(read(stream).error == nil)
    }

    @Test("1.1: data under the wrong index fail the data CRC; a digest under the wrong index fails the descriptor CRC")
    func digestsCatchSwaps() throws {
        #expect(read(try twoDeviceStream11()).error == nil)

        let stateSwapped = try twoDeviceStream11(swapStateIndices: true)
        let digestAt = UInt64(try recordOffsets(try twoDeviceStream11())[2])
        #expect(read(stateSwapped).error == StreamError(offset: digestAt, kind: .deviceDigestMismatch(
            device: 0, part: .data, declared: CRC32C.checksum(Array("AAAA".utf8)), computed: CRC32C.checksum(Array("wxyz".utf8)))))

        let allSwapped = try twoDeviceStream11(swapAllIndices: true)
        let pci = CRC32C.checksum(Samples.pciDevice.encodedFields()), mdev = CRC32C.checksum(Samples.mdevDevice.encodedFields())
        #expect(read(allSwapped).error == StreamError(offset: digestAt, kind: .deviceDigestMismatch(
            device: 1, part: .descriptor, declared: pci, computed: mdev)))
    }

    @Test("1.1: descriptors swapped in the header fail the descriptor CRC")
    func swappedDescriptors() throws {
        let stream = try twoDeviceStream11()
        let swappedHeader = try Samples.header11([Samples.mdevDevice, Samples.pciDevice]).encoded()
        let original = try Samples.header11([Samples.pciDevice, Samples.mdevDevice]).encoded()
        #expect(swappedHeader.count == original.count)
        let spliced = swappedHeader + stream[original.count...]
        let digestAt = UInt64(try recordOffsets(stream)[2])
        let error = try #require(read(spliced).error)
        #expect(error.offset == digestAt)
        guard case .deviceDigestMismatch(0, .descriptor, _, _) = error.kind else {
            Issue.record("\(error)")
            return
        }
    }

    // MARK: A.5 Encoder misuse throws

    @Test("every forbidden encoder call throws StreamUsageError and leaves the encoder as it was")
    func encoderMisuseThrows() throws {
        let header = Samples.header11([Samples.pciDevice, Samples.mdevDevice], maxPayload: 4096, regions: Samples.regions)
        var encoder = try StreamEncoder(header: header)
        var bytes = encoder.encodeHeader()
        let small = IOBuffer(capacity: 40)
        func refused(_ expected: StreamUsageError.Kind, _ call: (inout StreamEncoder, inout [UInt8]) throws -> Void) {
            let before = (encoder.nextSequence, bytes)
            do {
                try call(&encoder, &bytes)
                Issue.record("accepted; expected \(expected)")
            } catch {
                #expect((error as? StreamUsageError)?.kind == expected)
                #expect(!"\(error)".isEmpty)
            }
            #expect(encoder.nextSequence == before.0 && bytes == before.1, "the refused call changed the encoder")
        }
        refused(.deviceOutOfRange(device: 2, deviceCount: 2)) { try $0.appendDeviceState(device: 2, phase: .stopCopy, payload: [1], to: &$1) }
        refused(.deviceOutOfRange(device: -1, deviceCount: 2)) { try $0.appendEndOfDevice(device: -1, to: &$1) }
        refused(.chunkLength(0, maxPayload: 4096)) { try $0.appendDeviceState(device: 0, phase: .stopCopy, payload: [], to: &$1) }
        refused(.chunkLength(4097, maxPayload: 4096)) { try $0.appendDeviceState(device: 0, phase: .stopCopy, payload: [UInt8](repeating: 0, count: 4097), to: &$1) }
        refused(.preCopyNotAdvertised(device: 1)) { try $0.appendDeviceState(device: 1, phase: .preCopy, payload: [1], to: &$1) }
        refused(.preCopyNotAdvertised(device: 1)) { try $0.appendPreCopyProgress(device: 1, initialBytes: 0, dirtyBytes: 0, to: &$1) }
        refused(.dataOffset(device: 0, expected: 0, given: 5)) { try $0.appendDeviceState(device: 0, phase: .stopCopy, payload: [1], dataOffset: 5, to: &$1) }
        refused(.parameter(what: "dataCRC", reason: "computed by the encoder in a single stream")) { try $0.appendDeviceDigest(device: 0, dataCRC: 1, to: &$1) }
        refused(.missingDeviceDigest(device: 0)) { try $0.appendEndOfDevice(device: 0, to: &$1) }
        refused(.devicesOpen([0, 1])) { try $0.appendEndOfStream(to: &$1) }
        refused(.bufferTooSmall(needed: 48, capacity: 40)) { encoder, _ in try encoder.framePreCopyProgress(device: 0, initialBytes: 0, dirtyBytes: 0, in: small, at: 0) }
        refused(.bufferTooSmall(needed: 45, capacity: 40)) { encoder, _ in try encoder.frameDeviceState(device: 0, phase: .stopCopy, payloadLength: 5, in: small, at: 8) }
        refused(.bufferTooSmall(needed: 40, capacity: 40)) { encoder, _ in try encoder.frameDeviceDigest(device: 0, in: small, at: -1) }

        try encoder.appendDeviceState(device: 0, phase: .stopCopy, payload: [1, 2], to: &bytes)
        refused(.preCopyAfterStopCopy(device: 0)) { try $0.appendDeviceState(device: 0, phase: .preCopy, payload: [1], to: &$1) }
        refused(.preCopyAfterStopCopy(device: 0)) { try $0.appendPreCopyProgress(device: 0, initialBytes: 0, dirtyBytes: 0, to: &$1) }
        refused(.parameter(what: "totalLength", reason: "required on one of several channels")) { _, _ in
            var channel = try StreamEncoder(header: Samples.header11([Samples.pciDevice], channel: StreamChannel(index: 0, count: 2)))
            try channel.frameEndOfDevice(device: 0, in: small, at: 0)
        }
        try encoder.appendDeviceDigest(device: 0, to: &bytes)
        refused(.deviceDigestWritten(device: 0)) { try $0.appendDeviceState(device: 0, phase: .stopCopy, payload: [1], to: &$1) }
        refused(.duplicateDeviceDigest(device: 0)) { try $0.appendDeviceDigest(device: 0, to: &$1) }
        refused(.dataOffset(device: 0, expected: 2, given: 3)) { try $0.appendEndOfDevice(device: 0, totalLength: 3, to: &$1) }
        try encoder.appendEndOfDevice(device: 0, to: &bytes)
        refused(.deviceEnded(device: 0)) { try $0.appendDeviceDigest(device: 0, to: &$1) }
        refused(.deviceEnded(device: 0)) { try $0.appendEndOfDevice(device: 0, to: &$1) }
        try encoder.appendDeviceDigest(device: 1, to: &bytes)
        try encoder.appendEndOfDevice(device: 1, to: &bytes)
        try encoder.appendEndOfStream(to: &bytes)
        refused(.streamComplete) { try $0.appendEndOfStream(to: &$1) }
        refused(.streamComplete) { try $0.appendPages(region: 0, phase: .preCopy, round: 0, runs: [PageRun(firstPage: 0, pageCount: 1, isZero: true)], data: [], to: &$1) }
        // What was written around the refusals is a valid stream.
        #expect(read(bytes).error == nil)
    }

    @Test("headers that cannot be written throw instead of crashing")
    func unwritableHeaders() throws {
        func refusal(_ header: StreamHeader) -> StreamUsageError? {
            do throws(StreamUsageError) { _ = try header.encoded(); return nil } catch { return error }
        }
        var header = Samples.header11([Samples.pciDevice])
        header.maxPayload = 100
        #expect(refusal(header)?.kind == .invalidHeader(reason: "maxPayload 100 outside 4096...67108864"))
        header = Samples.header11([Samples.pciDevice])
        header.version = FormatVersion(major: 2, minor: 0, readerMinor: 0)
        #expect(refusal(header)?.kind == .invalidHeader(reason: "major 2: this codec writes major 1"))
        header.version = FormatVersion(major: 1, minor: 1, readerMinor: 2)
        #expect(refusal(header)?.kind == .invalidHeader(reason: "readerMinor 2 above minor 1"))
        header = Samples.header11([Samples.pciDevice], regions: Samples.regions)
        header.version.readerMinor = 0
        #expect(refusal(header)?.kind == .readerMinorTooLow(required: 1, declared: 0))
        header = Samples.header11([Samples.pciDevice], channel: StreamChannel(index: 2, count: 2))
        #expect(refusal(header)?.kind == .invalidHeader(reason: "channel index 2 is not below the channel count 2"))
        header = Samples.header11([Samples.pciDevice], regions: [MemoryRegionDescriptor(start: 0, length: 8192, pageSize: 4096), MemoryRegionDescriptor(start: 4096, length: 4096, pageSize: 4096)])
        #expect(refusal(header)?.kind == .invalidHeader(reason: "memory region 1 overlaps memory region 0"))
        header.regions = [MemoryRegionDescriptor(start: 0, length: 4096, pageSize: 3000)]
        #expect(refusal(header)?.kind == .invalidHeader(reason: "memory region 0: page size 3000 is not a power of two in 4096...1073741824"))
        header = Samples.header11([Samples.mdevDevice])
        header.devices[0].mdev?.attributes.append(MdevAttribute(name: "", value: "x"))
        #expect(refusal(header)?.kind == .invalidHeader(reason: "device 0: mdev attribute name must be 1...65535 bytes"))
        header = Samples.header11([Samples.pciDevice])
        header.devices[0].pci?.classCode = 0x100_0000
        #expect(refusal(header)?.kind == .invalidHeader(reason: "device 0: PCI class code 0x1000000 is wider than 24 bits"))
        header = Samples.header11([Samples.pciDevice])
        header.flags = 0x2
        #expect(refusal(header)?.kind == .invalidHeader(reason: "required flags 0x2 are not defined"))
        header.flags = 0x1_0000  // an optional bit: written as given
        #expect(refusal(header) == nil)
    }
}
