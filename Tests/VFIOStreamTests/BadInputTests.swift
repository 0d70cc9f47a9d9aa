// Every class of bad input: truncated, corrupted, oversized, reordered, duplicated, wrong
// version, inconsistent. Each must give the right typed error at the right offset.
import Testing
@testable import VFIOStream

/// Little-endian u64 words as a payload.
func words(_ values: UInt64...) -> [UInt8] {
    var bytes: [UInt8] = []
    for value in values { bytes.appendLittleEndian(value) }
    return bytes
}

/// A stream built by `body`, which may append valid and unchecked records.
func build(
    _ devices: [DeviceDescriptor] = [Samples.pciDevice], maxPayload: UInt32 = 16 << 20,
    _ body: (inout StreamEncoder, inout [UInt8]) throws -> Void
) throws -> [UInt8] {
    try build(Samples.header(devices, maxPayload: maxPayload), body)
}

/// A stream with `header`, built by `body`.
func build(_ header: StreamHeader, _ body: (inout StreamEncoder, inout [UInt8]) throws -> Void) throws -> [UInt8] {
    var encoder = try StreamEncoder(header: header)
    var bytes = encoder.encodeHeader()
    try body(&encoder, &bytes)
    return bytes
}

func stateRecord(device: UInt16 = 0, phase: StatePhase = .stopCopy, offset: UInt64) -> RecordHeader {
    RecordHeader(type: .deviceState, device: device, phase: phase.rawValue, payloadLength: 0, sequence: 0, offset: offset)
}

@Suite("Bad input")
struct BadInputTests {
    // MARK: Truncated and corrupted

    @Test("truncated at every byte boundary: truncated or missing end, at the cut structure")
    func truncatedEverywhere() throws {
        for full in [try Samples.oneDeviceStream(), try Samples.twoDeviceStream()] {
            let starts = try recordOffsets(full)
            let headerLength = starts[0]
            for cut in 0..<full.count {
                let error = try #require(read(Array(full[0..<cut])).error, "cut at \(cut) accepted")
                if cut < headerLength {
                    #expect(error.offset == 0, "cut \(cut)")
                    #expect(error.kind == .truncated(needed: cut < 16 ? 16 : headerLength, available: cut), "cut \(cut)")
                } else if let recordStart = starts.last(where: { $0 <= cut }), recordStart == cut {
                    #expect(error == StreamError(offset: UInt64(cut), kind: .missingEndOfStream), "cut \(cut)")
                } else {
                    let recordStart = starts.last(where: { $0 < cut })!
                    #expect(error.offset == UInt64(recordStart), "cut \(cut)")
                    guard case let .truncated(needed, available) = error.kind else {
                        Issue.record("cut \(cut): \(error)")
                        continue
                    }
                    #expect(available == cut - recordStart && needed > available, "cut \(cut)")
                }
            }
        }
    }

    @Test("every single-bit flip is refused at the structure that holds the bit")
    func everyBitFlip() throws {
        for full in [try Samples.oneDeviceStream(), try Samples.twoDeviceStream()] {
            let starts = try recordOffsets(full)
            for bit in 0..<(full.count * 8) {
                var bytes = full
                bytes[bit / 8] ^= 1 << (bit % 8)
                let error = try #require(read(bytes).error, "flip of bit \(bit) accepted")
                let byte = bit / 8
                let owner = byte < starts[0] ? 0 : starts.last(where: { $0 <= byte })!
                #expect(error.offset == UInt64(owner), "bit \(bit): \(error)")
                switch error.kind {
                case .checksumMismatch, .headerChecksumMismatch, .badMagic, .unsupportedMajor, .truncated,
                    .payloadTooLarge, .invalidHeaderLength, .headerTooLarge:
                    break
                default:
                    Issue.record("bit \(bit): unexpected kind \(error.kind)")
                }
            }
        }
    }

    @Test("a corrupted payload byte is reported as a CRC mismatch of its record")
    func corruptedPayload() throws {
        var bytes = try Samples.oneDeviceStream()
        let starts = try recordOffsets(bytes)
        bytes[starts[2] + 32 + 1] ^= 0x40  // inside the stop-copy chunk's payload
        let error = try #require(read(bytes).error)
        #expect(error.offset == UInt64(starts[2]))
        guard case .checksumMismatch = error.kind else { Issue.record("\(error)"); return }
    }

    // MARK: Oversized

    @Test("an oversized record length is refused from the 32-byte header alone")
    func oversizedRecord() throws {
        let stream = try Samples.oneDeviceStream()
        let starts = try recordOffsets(stream)
        var decoder = StreamDecoder()
        _ = try decoder.decodeHeader(stream)
        var header = Array(stream[starts[0]..<(starts[0] + 32)])
        header.storeLittleEndian(UInt32.max, at: 8)
        // Only the 32 header bytes exist: the decoder must refuse before asking for the payload.
        #expect(throws: StreamError(offset: UInt64(starts[0]), kind: .payloadTooLarge(length: UInt32.max, limit: 16 << 20))) {
            try decoder.decodeRecordHeader(header)
        }
        // Just above the stream's own maxPayload, below the reader's limit.
        let small = try build(maxPayload: 4096) { encoder, bytes in
            encoder.appendUncheckedRecord(stateRecord(offset: 0), payload: [UInt8](repeating: 1, count: 4097), to: &bytes)
        }
        let offset = try UInt64(Samples.header([Samples.pciDevice], maxPayload: 4096).encoded().count)
        #expect(read(small).error == StreamError(offset: offset, kind: .payloadTooLarge(length: 4097, limit: 4096)))
    }

    @Test("oversized header and maxPayload are refused before the rest is read")
    func oversizedHeader() throws {
        var prefix = Array(try Samples.oneDeviceStream()[0..<16])
        prefix.storeLittleEndian(UInt32(2 << 20), at: 12)
        var decoder = StreamDecoder()
        #expect(throws: StreamError(offset: 0, kind: .headerTooLarge(length: 2 << 20, limit: 1 << 20))) {
            try decoder.decodeHeaderPrefix(prefix)
        }
        // A reader with a 64 KiB payload limit refuses a stream that announces 16 MiB.
        let limits = StreamLimits(maxPayload: 64 << 10)
        #expect(try read(try Samples.oneDeviceStream(), limits: limits).error
            == StreamError(offset: 0, kind: .maxPayloadAboveLimit(declared: 16 << 20, limit: 64 << 10)))
        // A header that claims less than the minimum.
        prefix.storeLittleEndian(UInt32(43), at: 12)
        decoder = StreamDecoder()
        #expect(throws: StreamError(offset: 0, kind: .invalidHeaderLength(43))) { try decoder.decodeHeaderPrefix(prefix) }
    }

    @Test("a field whose length runs past its area")
    func fieldOverrun() throws {
        var bytes = try Samples.header([Samples.pciDevice]).encoded()
        bytes.storeLittleEndian(UInt32(1000), at: 44)  // hostName field length
        resealHeader(&bytes)
        #expect(read(bytes).error?.kind == .fieldOverrun(tag: 1, length: 1000, available: bytes.count - 4 - 48))
        #expect(read(bytes).error?.offset == 40)
    }

    // MARK: Reordered, duplicated, lost

    @Test("reordered, duplicated and dropped records break the sequence")
    func sequence() throws {
        let full = try Samples.oneDeviceStream()
        let starts = try recordOffsets(full)
        func record(_ index: Int) -> [UInt8] {
            Array(full[starts[index]..<(index + 1 < starts.count ? starts[index + 1] : full.count)])
        }
        let head = Array(full[0..<starts[0]])
        // Swap chunk records 1 and 2.
        var swapped = head + record(0) + record(2) + record(1) + record(3) + record(4)
        #expect(read(swapped).error == StreamError(offset: UInt64(starts[1]), kind: .sequenceMismatch(expected: 1, found: 2)))
        // Duplicate record 1.
        let duplicated = head + record(0) + record(1) + record(1) + record(2) + record(3) + record(4)
        #expect(read(duplicated).error == StreamError(offset: UInt64(starts[2]), kind: .sequenceMismatch(expected: 2, found: 1)))
        // Drop record 1.
        let dropped = head + record(0) + record(2) + record(3) + record(4)
        #expect(read(dropped).error == StreamError(offset: UInt64(starts[1]), kind: .sequenceMismatch(expected: 1, found: 2)))
        // Even with sequence numbers rewritten to look right, the per-device offsets catch the swap.
        swapped = head + record(0) + record(2) + record(1) + record(3) + record(4)
        swapped.storeLittleEndian(UInt64(1), at: starts[1] + 16)
        resealRecord(&swapped, at: starts[1])
        #expect(read(swapped).error == StreamError(offset: UInt64(starts[1]), kind: .offsetMismatch(device: 0, expected: 0, found: 8)))
    }

    @Test("chunk offsets: gap and overlap")
    func offsets() throws {
        var at = 0
        let gap = try build { encoder, bytes in
            try encoder.appendDeviceState(device: 0, phase: .stopCopy, payload: [1, 2, 3], to: &bytes)
            at = bytes.count
            encoder.appendUncheckedRecord(stateRecord(offset: 4), payload: [4], to: &bytes)
        }
        #expect(read(gap).error == StreamError(offset: UInt64(at), kind: .offsetMismatch(device: 0, expected: 3, found: 4)))
        let overlap = try build { encoder, bytes in
            try encoder.appendDeviceState(device: 0, phase: .stopCopy, payload: [1, 2, 3], to: &bytes)
            at = bytes.count
            encoder.appendUncheckedRecord(stateRecord(offset: 2), payload: [4], to: &bytes)
        }
        let error = read(overlap).error
        #expect(error == StreamError(offset: UInt64(at), kind: .offsetMismatch(device: 0, expected: 3, found: 2)))
        #expect(error?.description.contains("overlaps") == true)
    }

    // MARK: Wrong version

    @Test("wrong magic, wrong major, reader minor too new, inconsistent minor")
    func versions() throws {
        var bytes = try Samples.oneDeviceStream()
        bytes[1] = UInt8(ascii: "X")
        #expect(read(bytes).error == StreamError(offset: 0, kind: .badMagic))
        #expect(read(Array("not a stream at all".utf8)).error == StreamError(offset: 0, kind: .badMagic))
        #expect(read([0x89, 0x56, 0x46]).error == StreamError(offset: 0, kind: .truncated(needed: 16, available: 3)))

        bytes = try Samples.oneDeviceStream()
        bytes.storeLittleEndian(UInt16(2), at: 8)
        #expect(read(bytes).error == StreamError(offset: 0, kind: .unsupportedMajor(2)))

        bytes = try Samples.oneDeviceStream()
        bytes.storeLittleEndian(UInt16(2), at: 10)  // minor 2
        bytes.storeLittleEndian(UInt16(2), at: 16)  // needs a 1.2 reader
        resealHeader(&bytes)
        #expect(read(bytes).error == StreamError(offset: 0, kind: .unsupportedMinor(readerMinor: 2)))

        bytes.storeLittleEndian(UInt16(1), at: 10)  // readerMinor above minor
        resealHeader(&bytes)
        #expect(read(bytes).error == StreamError(offset: 0, kind: .inconsistentVersion(minor: 1, readerMinor: 2)))

        bytes = try Samples.oneDeviceStream()
        bytes.storeLittleEndian(UInt32(0x0000_0004), at: 20)  // a required flag nobody defined
        resealHeader(&bytes)
        #expect(read(bytes).error == StreamError(offset: 0, kind: .unsupportedHeaderFlags(4)))
    }

    @Test("newer minor: skippable unknown record accepted, non-skippable refused")
    func unknownRecords() throws {
        var at = 0
        let skippable = try build { encoder, bytes in
            encoder.appendUncheckedRecord(
                RecordHeader(type: RecordType(rawValue: 0x0200), flags: .skippable, device: 7, phase: 9, payloadLength: 0, sequence: 0, offset: 99),
                payload: [1, 2, 3], to: &bytes)
            encoder.appendUncheckedRecord(
                RecordHeader(type: RecordType(rawValue: 7), flags: .skippable, device: 0, payloadLength: 0, sequence: 0, offset: 0),
                payload: [], to: &bytes)
            try encoder.appendDeviceState(device: 0, phase: .stopCopy, payload: [5], to: &bytes)
            try encoder.appendEndOfDevice(device: 0, to: &bytes)
            try encoder.appendEndOfStream(to: &bytes)
        }
        let outcome = read(skippable)
        #expect(outcome.error == nil)
        #expect(outcome.summary?.skippedRecords == 2)
        #expect(outcome.records.first?.record == .skipped(type: RecordType(rawValue: 0x0200), length: 3))

        for type in [RecordType(rawValue: 0x0200), RecordType(rawValue: 7)] {
            let refused = try build { encoder, bytes in
                at = bytes.count
                encoder.appendUncheckedRecord(
                    RecordHeader(type: type, device: 0, payloadLength: 0, sequence: 0, offset: 0), payload: [1], to: &bytes)
            }
            #expect(read(refused).error == StreamError(offset: UInt64(at), kind: .unsupportedRecordType(type.rawValue)))
        }
    }

    @Test("unknown header fields: skipped only when skippable; unknown descriptor fields alike")
    func unknownFields() throws {
        let header = Samples.header([Samples.pciDevice])
        func withExtraField(flags: FieldFlags, inDescriptor: Bool) throws -> [UInt8] {
            var bytes = try Array(header.encoded().dropLast(4))
            var extra: [UInt8] = []
            extra.appendField(0x7F01, [1, 2, 3], flags: flags)
            if inDescriptor {
                // Re-encode the device field with the extra field appended to its value.
                var fields = Samples.pciDevice.encodedFields()
                fields += extra
                bytes = Array(bytes[0..<StreamFormat.fixedHeaderSize])
                bytes.appendStringField(HeaderFieldTag.hostName, header.host.hostName, omitIfEmpty: true)
                bytes.appendStringField(HeaderFieldTag.machineID, header.host.machineID, omitIfEmpty: true)
                bytes.appendStringField(HeaderFieldTag.kernelRelease, header.host.kernelRelease, omitIfEmpty: true)
                bytes.appendStringField(HeaderFieldTag.writer, header.writer, omitIfEmpty: true)
                bytes.appendField(HeaderFieldTag.device, fields)
            } else {
                bytes += extra
            }
            bytes.storeLittleEndian(UInt32(bytes.count + 4), at: 12)
            bytes.appendLittleEndian(CRC32C.checksum(bytes))
            return bytes
        }
        for inDescriptor in [false, true] {
            var decoder = StreamDecoder()
            #expect(try decoder.decodeHeader(try withExtraField(flags: .skippable, inDescriptor: inDescriptor)) == header)
            decoder = StreamDecoder()
            let refused = try withExtraField(flags: [], inDescriptor: inDescriptor)
            #expect(throws: StreamError.self) { try decoder.decodeHeader(refused) }
            #expect(read(refused).error?.kind == .unknownField(tag: 0x7F01))
            #expect(try read(try withExtraField(flags: FieldFlags(rawValue: 2), inDescriptor: inDescriptor)).error?.kind
                == .unknownFieldFlags(tag: 0x7F01, flags: 2))
        }
    }

    @Test("malformed headers: duplicate, missing, bad UTF-8, bad lengths, count, offsets")
    func malformedHeaders() throws {
        func reencode(_ edit: (inout [UInt8]) -> Void) throws -> StreamError? {
            var bytes = try Samples.header([Samples.pciDevice]).encoded()
            edit(&bytes)
            resealHeader(&bytes)
            return read(bytes).error
        }
        func appendFields(_ body: (inout [UInt8]) -> Void) throws -> StreamError? {
            var bytes = try Array(Samples.header([]).encoded().dropLast(4))
            body(&bytes)
            bytes.storeLittleEndian(UInt32(bytes.count + 4), at: 12)
            bytes.appendLittleEndian(CRC32C.checksum(bytes))
            return read(bytes).error
        }
        // Header of Samples.header([]) carries hostName at 40.
        #expect(try appendFields { $0.appendStringField(HeaderFieldTag.hostName, "again", omitIfEmpty: false) }?.kind == .duplicateField(tag: 1))
        #expect(try appendFields { $0.appendField(HeaderFieldTag.writer, [0xC3, 0x28]) }?.kind == .duplicateField(tag: 4))
        #expect(try appendFields { $0.appendLittleEndian(UInt16(0)); $0.appendLittleEndian(UInt16(0)); $0.appendLittleEndian(UInt32(0)) }?.kind == .zeroFieldTag)
        #expect(try appendFields { $0 += [1, 0, 0] }?.kind == .malformedField(tag: 0, reason: "3 bytes left, too few for a field header"))

        var descriptor = DeviceDescriptor(deviceAPI: "vfio-pci", driverName: "d", driverVersion: "1", migrationFlags: [.stopCopy])
        var fields = descriptor.encodedFields()
        // Drop the deviceAPI field (first: 8 + 8 bytes).
        fields.removeFirst(16)
        #expect(try appendFields { bytes in
            bytes.storeLittleEndian(UInt16(1), at: 18)
            bytes.appendField(HeaderFieldTag.device, fields)
        }?.kind == .missingField(tag: DescriptorFieldTag.deviceAPI))
        // Invalid UTF-8 in deviceAPI.
        descriptor.deviceAPI = "vfio"
        fields = descriptor.encodedFields()
        fields[8] = 0xFF
        #expect(try appendFields { bytes in
            bytes.storeLittleEndian(UInt16(1), at: 18)
            bytes.appendField(HeaderFieldTag.device, fields)
        }?.kind == .invalidUTF8(tag: DescriptorFieldTag.deviceAPI))
        // migrationFlags of 4 bytes instead of 8.
        var short: [UInt8] = []
        short.appendStringField(DescriptorFieldTag.deviceAPI, "vfio-pci", omitIfEmpty: false)
        short.appendStringField(DescriptorFieldTag.driverName, "", omitIfEmpty: false)
        short.appendStringField(DescriptorFieldTag.driverVersion, "", omitIfEmpty: false)
        short.appendField(DescriptorFieldTag.migrationFlags, [1, 0, 0, 0])
        #expect(try appendFields { bytes in
            bytes.storeLittleEndian(UInt16(1), at: 18)
            bytes.appendField(HeaderFieldTag.device, short)
        }?.kind == .invalidFieldLength(tag: DescriptorFieldTag.migrationFlags, expected: 8, found: 4))
        // An mdev attribute without an mdev type.
        var orphan = DeviceDescriptor(deviceAPI: "vfio-pci", driverName: "", driverVersion: "", migrationFlags: [.stopCopy]).encodedFields()
        var attribute: [UInt8] = []
        attribute.appendLittleEndian(UInt16(1))
        attribute += Array("a=b".utf8)
        orphan.appendField(DescriptorFieldTag.mdevAttribute, attribute)
        #expect(try appendFields { bytes in
            bytes.storeLittleEndian(UInt16(1), at: 18)
            bytes.appendField(HeaderFieldTag.device, orphan)
        }?.kind == .malformedField(tag: DescriptorFieldTag.mdevAttribute, reason: "mdev attribute without an mdev type"))

        // Descriptor count differs from the declared count.
        #expect(try reencode { $0.storeLittleEndian(UInt16(2), at: 18) } == StreamError(offset: 0, kind: .deviceCountMismatch(declared: 2, found: 1)))
        #expect(try reencode { $0.storeLittleEndian(UInt16(0), at: 18) } == StreamError(offset: 0, kind: .deviceCountMismatch(declared: 0, found: 1)))
        // Fields offset outside the header; maxPayload outside the format bounds.
        #expect(try reencode { $0.storeLittleEndian(UInt32(39), at: 36) } == StreamError(offset: 0, kind: .invalidFieldsOffset(39)))
        #expect(try reencode { $0.storeLittleEndian(UInt32(100_000), at: 36) } == StreamError(offset: 0, kind: .invalidFieldsOffset(100_000)))
        #expect(try reencode { $0.storeLittleEndian(UInt32(100), at: 32) } == StreamError(offset: 0, kind: .invalidMaxPayload(100)))
    }

    @Test("a later minor's longer fixed part is skipped through fieldsOffset")
    func longerFixedPart() throws {
        let header = Samples.header([Samples.pciDevice])
        var bytes = try header.encoded()
        bytes.insert(contentsOf: [9, 9, 9, 9, 9, 9, 9, 9], at: StreamFormat.fixedHeaderSize)
        bytes.storeLittleEndian(UInt32(StreamFormat.fixedHeaderSize + 8), at: 36)
        bytes.storeLittleEndian(UInt32(bytes.count), at: 12)
        resealHeader(&bytes)
        var decoder = StreamDecoder()
        #expect(try decoder.decodeHeader(bytes) == header)
    }

    // MARK: Order and content

    @Test("zero type, unknown flags, reserved byte, bad phase, empty chunk")
    func recordFields() throws {
        var at = 0
        func single(_ template: RecordHeader, _ payload: [UInt8]) throws -> StreamError? {
            read(try build { encoder, bytes in
                at = bytes.count
                encoder.appendUncheckedRecord(template, payload: payload, to: &bytes)
            }).error
        }
        #expect(try single(RecordHeader(type: RecordType(rawValue: 0), device: 0, payloadLength: 0, sequence: 0, offset: 0), [1])
            == StreamError(offset: UInt64(at), kind: .zeroRecordType))
        #expect(try single(RecordHeader(type: .deviceState, flags: RecordFlags(rawValue: 0x8000), device: 0, phase: 2, payloadLength: 0, sequence: 0, offset: 0), [1])
            == StreamError(offset: UInt64(at), kind: .unknownRecordFlags(0x8000)))
        #expect(try single(RecordHeader(type: .deviceState, device: 0, phase: 2, reserved: 1, payloadLength: 0, sequence: 0, offset: 0), [1])
            == StreamError(offset: UInt64(at), kind: .unexpectedFieldValue(field: "reserved", expected: 0, found: 1)))
        for phase: UInt8 in [0, 3] {
            #expect(try single(RecordHeader(type: .deviceState, device: 0, phase: phase, payloadLength: 0, sequence: 0, offset: 0), [1])
                == StreamError(offset: UInt64(at), kind: .invalidPhase(phase)))
        }
        #expect(try single(stateRecord(offset: 0), []) == StreamError(offset: UInt64(at), kind: .emptyChunk(device: 0)))
        #expect(try single(stateRecord(device: 1, offset: 0), [1]) == StreamError(offset: UInt64(at), kind: .deviceIndexOutOfRange(1, deviceCount: 1)))
        #expect(try single(RecordHeader(type: .endOfDevice, device: 0, payloadLength: 0, sequence: 0, offset: 0), words(0, 0))
            == StreamError(offset: UInt64(at), kind: .invalidPayloadLength(type: 4, expected: 24, found: 16)))
        #expect(try single(RecordHeader(type: .preCopyProgress, device: 0, phase: 1, payloadLength: 0, sequence: 0, offset: 0), words(0, 0))
            == StreamError(offset: UInt64(at), kind: .unexpectedFieldValue(field: "phase", expected: 0, found: 1)))
    }

    @Test("phases: no pre-copy after stop-copy, no pre-copy without PRE_COPY")
    func phases() throws {
        var at = 0
        let regression = try build { encoder, bytes in
            try encoder.appendDeviceState(device: 0, phase: .stopCopy, payload: [1], to: &bytes)
            at = bytes.count
            encoder.appendUncheckedRecord(stateRecord(phase: .preCopy, offset: 1), payload: [2], to: &bytes)
        }
        #expect(read(regression).error == StreamError(offset: UInt64(at), kind: .phaseRegression(device: 0)))
        let lateProgress = try build { encoder, bytes in
            try encoder.appendDeviceState(device: 0, phase: .stopCopy, payload: [1], to: &bytes)
            at = bytes.count
            encoder.appendUncheckedRecord(
                RecordHeader(type: .preCopyProgress, device: 0, payloadLength: 0, sequence: 0, offset: 1), payload: words(1, 1), to: &bytes)
        }
        #expect(read(lateProgress).error == StreamError(offset: UInt64(at), kind: .phaseRegression(device: 0)))
        let noFlag = try build([Samples.mdevDevice]) { encoder, bytes in
            at = bytes.count
            encoder.appendUncheckedRecord(stateRecord(phase: .preCopy, offset: 0), payload: [1], to: &bytes)
        }
        #expect(read(noFlag).error == StreamError(offset: UInt64(at), kind: .preCopyNotAdvertised(device: 0)))
    }

    @Test("ends: state after end of device, duplicate end, missing end, wrong totals")
    func ends() throws {
        var at = 0
        let afterEnd = try build { encoder, bytes in
            try encoder.appendDeviceState(device: 0, phase: .stopCopy, payload: [1], to: &bytes)
            try encoder.appendEndOfDevice(device: 0, to: &bytes)
            at = bytes.count
            encoder.appendUncheckedRecord(stateRecord(offset: 1), payload: [2], to: &bytes)
        }
        #expect(read(afterEnd).error == StreamError(offset: UInt64(at), kind: .recordAfterEndOfDevice(device: 0)))
        let duplicateEnd = try build { encoder, bytes in
            try encoder.appendEndOfDevice(device: 0, to: &bytes)
            at = bytes.count
            encoder.appendUncheckedRecord(RecordHeader(type: .endOfDevice, device: 0, payloadLength: 0, sequence: 0, offset: 0), payload: words(0, 0, 0), to: &bytes)
        }
        #expect(read(duplicateEnd).error == StreamError(offset: UInt64(at), kind: .duplicateEndOfDevice(device: 0)))
        let missingEnd = try build([Samples.pciDevice, Samples.mdevDevice]) { encoder, bytes in
            try encoder.appendEndOfDevice(device: 1, to: &bytes)
            at = bytes.count
            encoder.appendUncheckedRecord(
                RecordHeader(type: .endOfStream, device: StreamFormat.noDevice, payloadLength: 0, sequence: 0, offset: 0),
                payload: words(2, 0, 1), to: &bytes)
        }
        #expect(read(missingEnd).error == StreamError(offset: UInt64(at), kind: .missingEndOfDevice(device: 0)))
        let wrongDeviceTotals = try build { encoder, bytes in
            try encoder.appendDeviceState(device: 0, phase: .stopCopy, payload: [1, 2], to: &bytes)
            at = bytes.count
            encoder.appendUncheckedRecord(RecordHeader(type: .endOfDevice, device: 0, payloadLength: 0, sequence: 0, offset: 2), payload: words(0, 2, 2), to: &bytes)
        }
        #expect(read(wrongDeviceTotals).error == StreamError(offset: UInt64(at), kind: .deviceTotalsMismatch(
            device: 0, declared: DeviceTotals(device: 0, preCopyBytes: 0, stopCopyBytes: 2, chunkCount: 2),
            counted: DeviceTotals(device: 0, preCopyBytes: 0, stopCopyBytes: 2, chunkCount: 1))))
        let wrongStreamTotals = try build { encoder, bytes in
            try encoder.appendEndOfDevice(device: 0, to: &bytes)
            at = bytes.count
            encoder.appendUncheckedRecord(
                RecordHeader(type: .endOfStream, device: StreamFormat.noDevice, payloadLength: 0, sequence: 0, offset: 0),
                payload: words(1, 7, 1), to: &bytes)
        }
        #expect(read(wrongStreamTotals).error == StreamError(offset: UInt64(at), kind: .streamTotalsMismatch(
            declared: StreamTotals(deviceCount: 1, totalStateBytes: 7, recordCount: 1),
            counted: StreamTotals(deviceCount: 1, totalStateBytes: 0, recordCount: 1))))
        let endOfStreamForDevice = try build { encoder, bytes in
            try encoder.appendEndOfDevice(device: 0, to: &bytes)
            at = bytes.count
            encoder.appendUncheckedRecord(
                RecordHeader(type: .endOfStream, device: 0, payloadLength: 0, sequence: 0, offset: 0), payload: words(1, 0, 1), to: &bytes)
        }
        #expect(read(endOfStreamForDevice).error
            == StreamError(offset: UInt64(at), kind: .unexpectedFieldValue(field: "device", expected: 0xFFFF, found: 0)))
    }

    @Test("anything after end of stream is trailing data")
    func afterEndOfStream() throws {
        let valid = try Samples.oneDeviceStream()
        #expect(read(valid + [0]).error == StreamError(offset: UInt64(valid.count), kind: .trailingData))
        // A complete, well-sealed record after the end is still refused.
        var extra = valid
        var encoder = try StreamEncoder(header: Samples.header([Samples.pciDevice]))
        encoder.appendUncheckedRecord(stateRecord(offset: 0), payload: [1], to: &extra)
        #expect(read(extra).error == StreamError(offset: UInt64(valid.count), kind: .trailingData))
    }

    @Test("a failed decoder stays failed and repeats its error")
    func staysFailed() throws {
        var bytes = try Samples.oneDeviceStream()
        let starts = try recordOffsets(bytes)
        bytes[starts[1] + 33] ^= 1  // inside record 1's payload
        var reader = StreamReader(bytes)
        _ = try reader.readHeader()
        _ = try reader.next()
        let first = #expect(throws: StreamError.self) { try reader.next() }
        let second = #expect(throws: StreamError.self) { try reader.next() }
        #expect(first == second)
        #expect(reader.decoder.expectation == .failed)
        #expect(throws: StreamError.self) { try reader.decoder.endOfInput() }
    }
}
