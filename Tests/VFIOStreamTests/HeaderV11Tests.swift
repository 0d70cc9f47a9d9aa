// v1.1 header content: migration id, channel, memory regions, NO_RECORD_CHECKSUMS, and the
// readerMinor a writer must announce for them.
import Foundation
import Testing
@testable import VFIOStream

/// A 24-byte memoryRegion value.
func regionValue(start: UInt64, length: UInt64, pageSize: UInt32, flags: UInt32 = 0) -> [UInt8] {
    var value: [UInt8] = []
    value.appendLittleEndian(start)
    value.appendLittleEndian(length)
    value.appendLittleEndian(pageSize)
    value.appendLittleEndian(flags)
    return value
}

/// A header with only the given fields, the version raised to 1.1 (readerMinor 1), sealed.
func header11WithFields(_ body: (inout [UInt8]) -> Void) throws -> [UInt8] {
    var bytes = try headerWithFields(body)
    bytes.storeLittleEndian(UInt16(1), at: 10)
    bytes.storeLittleEndian(UInt16(1), at: 16)
    resealHeader(&bytes)
    return bytes
}

@Suite("v1.1 header")
struct HeaderV11Tests {
    func headerError(_ bytes: [UInt8], limits: StreamLimits = .default) -> StreamError? {
        var decoder = StreamDecoder(limits: limits)
        do throws(StreamError) {
            _ = try decoder.decodeHeader(bytes)
            return nil
        } catch {
            return error
        }
    }

    @Test("new fields round-trip; the version follows the content")
    func roundTrip() throws {
        let channel = StreamChannel(index: 3, count: 4)
        let header = Samples.header11([Samples.pciDevice], migrationID: Samples.migrationID, channel: channel, regions: Samples.regions)
        #expect(header.version == FormatVersion(major: 1, minor: 1, readerMinor: 1))
        var decoder = StreamDecoder()
        #expect(try decoder.decodeHeader(try header.encoded()) == header)
        // Device state only, with or without an id: readable by 1.0 readers.
        #expect(Samples.header11([Samples.pciDevice], migrationID: Samples.migrationID).version.readerMinor == 0)
        #expect(Samples.header11([], flags: .noRecordChecksums).version.readerMinor == 1)
        #expect(Samples.header11([], channel: .single).requiredReaderMinor == 1)
        // The id is SKIPPABLE (1.0 readers skip it), channel and regions are not.
        let bytes = try header.encoded()
        let fieldsStart = try #require(findField(HeaderFieldTag.migrationID, in: bytes))
        #expect(bytes[fieldsStart + 2] == 1)
        #expect(bytes[try #require(findField(HeaderFieldTag.channel, in: bytes)) + 2] == 0)
        #expect(bytes[try #require(findField(HeaderFieldTag.memoryRegion, in: bytes)) + 2] == 0)
    }

    @Test("migration id: 16 bytes, read whatever its SKIPPABLE bit, text form")
    func migrationID() throws {
        #expect(headerError(try header11WithFields { $0.appendField(HeaderFieldTag.migrationID, Array(repeating: 1, count: 15), flags: .skippable) })
            == StreamError(offset: 40, kind: .invalidFieldLength(tag: HeaderFieldTag.migrationID, expected: 16, found: 15)))
        var decoder = StreamDecoder()
        let plain = try headerWithFields { $0.appendField(HeaderFieldTag.migrationID, Samples.migrationID.bytes) }
        #expect(try decoder.decodeHeader(plain).migrationID == Samples.migrationID)
        #expect(Samples.migrationID.description == "01234567-89ab-cdef-fedc-ba9876543210")
        #expect(MigrationID(Samples.migrationID.description) == Samples.migrationID)
        #expect(MigrationID("0123456789ABCDEFFEDCBA9876543210") == Samples.migrationID)
        #expect(MigrationID("0123") == nil && MigrationID(bytes: [1, 2]) == nil)
        #expect(MigrationID.random() != MigrationID.random())
    }

    @Test("channel: 4 bytes, count >= 1, index < count, not without readerMinor 1")
    func channel() throws {
        func channelField(_ index: UInt16, _ count: UInt16) -> (inout [UInt8]) -> Void {
            { bytes in
                var value: [UInt8] = []
                value.appendLittleEndian(index)
                value.appendLittleEndian(count)
                bytes.appendField(HeaderFieldTag.channel, value)
            }
        }
        #expect(headerError(try header11WithFields(channelField(0, 0)))
            == StreamError(offset: 40, kind: .malformedField(tag: HeaderFieldTag.channel, reason: "channel count is 0")))
        #expect(headerError(try header11WithFields(channelField(2, 2)))
            == StreamError(offset: 40, kind: .malformedField(tag: HeaderFieldTag.channel, reason: "channel index 2 is not below the channel count 2")))
        #expect(headerError(try header11WithFields { $0.appendField(HeaderFieldTag.channel, [0, 0, 1]) })
            == StreamError(offset: 40, kind: .invalidFieldLength(tag: HeaderFieldTag.channel, expected: 4, found: 3)))
        #expect(headerError(try header11WithFields(channelField(1, 2))) == nil)
        // The same header claiming a 1.0 reader can read it.
        #expect(headerError(try headerWithFields(channelField(1, 2))) == StreamError(offset: 0, kind: .readerMinorTooLow(required: 1, declared: 0)))
    }

    @Test("memory regions: page size, alignment, length, wrap, reserved flags, overlap")
    func regions() throws {
        func region(_ value: [UInt8]) throws -> StreamError? {
            headerError(try header11WithFields { $0.appendField(HeaderFieldTag.memoryRegion, value) })
        }
        func malformed(_ reason: String, at offset: UInt64 = 40) -> StreamError {
            StreamError(offset: offset, kind: .malformedField(tag: HeaderFieldTag.memoryRegion, reason: reason))
        }
        for size: UInt32 in [0, 2048, 3000, 4096 + 4096 / 2, 1 << 31] {
            #expect(try region(regionValue(start: 0, length: UInt64(size) * 4, pageSize: size))
                == malformed("memory region 0: page size \(size) is not a power of two in 4096...1073741824"))
        }
        #expect(try region(regionValue(start: 0, length: 1 << 30, pageSize: 1 << 30)) == nil)
        #expect(try region(regionValue(start: 0, length: 4096, pageSize: 4096, flags: 1)) == malformed("memory region 0: reserved flags 0x1 set"))
        #expect(try region(regionValue(start: 0, length: 0, pageSize: 4096)) == malformed("memory region 0: length is 0"))
        #expect(try region(regionValue(start: 100, length: 4096, pageSize: 4096)) == malformed("memory region 0: start 0x64 is not a multiple of the page size 4096"))
        #expect(try region(regionValue(start: 0, length: 6000, pageSize: 4096)) == malformed("memory region 0: length 6000 is not a multiple of the page size 4096"))
        #expect(try region(regionValue(start: 0xFFFF_FFFF_FFFF_F000, length: 8192, pageSize: 4096))
            == malformed("memory region 0: start 0xfffffffffffff000 + length 8192 wraps past 2^64"))
        #expect(try region(Array(regionValue(start: 0, length: 4096, pageSize: 4096).dropLast()))
            == StreamError(offset: 40, kind: .invalidFieldLength(tag: HeaderFieldTag.memoryRegion, expected: 24, found: 23)))

        // Overlap is refused at the later field, whatever the order; adjacent regions are fine.
        let fieldSize = UInt64(8 + 24)
        func regions(_ values: [[UInt8]]) throws -> StreamError? {
            headerError(try header11WithFields { bytes in for value in values { bytes.appendField(HeaderFieldTag.memoryRegion, value) } })
        }
        let low = regionValue(start: 0, length: 8192, pageSize: 4096)
        #expect(try regions([low, regionValue(start: 8192, length: 4096, pageSize: 4096)]) == nil)
        #expect(try regions([regionValue(start: 1 << 32, length: 4096, pageSize: 4096), low]) == nil)
        #expect(try regions([low, regionValue(start: 4096, length: 4096, pageSize: 4096)])
            == malformed("memory region 1 overlaps memory region 0", at: 40 + fieldSize))
        #expect(try regions([regionValue(start: 0, length: 1 << 30, pageSize: 1 << 30), low, regionValue(start: 1 << 31, length: 4096, pageSize: 4096)])
            == malformed("memory region 1 overlaps memory region 0", at: 40 + fieldSize))
        #expect(try regions([regionValue(start: 1 << 20, length: 4096, pageSize: 4096), low, regionValue(start: 0, length: 1 << 21, pageSize: 1 << 21)])
            == malformed("memory region 2 overlaps memory region 1", at: 40 + 2 * fieldSize))
        // Regions need readerMinor 1.
        #expect(headerError(try headerWithFields { $0.appendField(HeaderFieldTag.memoryRegion, low) })
            == StreamError(offset: 0, kind: .readerMinorTooLow(required: 1, declared: 0)))
    }

    @Test("NO_RECORD_CHECKSUMS: refused by default, up front; the header CRC still counts")
    func noRecordChecksums() throws {
        let stream = try Samples.noChecksumStream()
        #expect(headerError(stream) == StreamError(offset: 0, kind: .recordChecksumsNotAccepted))
        #expect(headerError(stream, limits: acceptingUnchecked) == nil)
        var corruptHeader = stream
        corruptHeader[50] ^= 1
        guard case .headerChecksumMismatch? = headerError(corruptHeader, limits: acceptingUnchecked)?.kind else {
            Issue.record("a corrupted header was not caught")
            return
        }
        // Without record CRCs a flipped data bit is not caught here: that is what the flag
        // trades, and why only an authenticated transport may accept it.
        var flipped = stream
        let first = try recordOffsets(stream, limits: acceptingUnchecked)[0]
        flipped[first + 33] ^= 1
        #expect(read(flipped, limits: acceptingUnchecked).error == nil)
        // The flag in a header that says a 1.0 reader can read it.
        var lying = stream
        lying.storeLittleEndian(UInt16(0), at: 16)
        resealHeader(&lying)
        #expect(headerError(lying, limits: acceptingUnchecked) == StreamError(offset: 0, kind: .readerMinorTooLow(required: 1, declared: 0)))
    }

    @Test("JSON: a 1.0 header has no new keys; a 1.1 header round-trips with the id as text")
    func json() throws {
        let old = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(Samples.header([Samples.pciDevice]))) as? [String: Any]
        #expect(old?["migrationID"] == nil && old?["channel"] == nil && old?["regions"] == nil)
        let header = Samples.header11([Samples.pciDevice], migrationID: Samples.migrationID, channel: StreamChannel(index: 1, count: 2), regions: Samples.regions)
        let data = try JSONEncoder().encode(header)
        #expect(try JSONDecoder().decode(StreamHeader.self, from: data) == header)
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        #expect(object?["migrationID"] as? String == "01234567-89ab-cdef-fedc-ba9876543210")
        #expect((object?["regions"] as? [[String: Any]])?.count == 2)
    }
}

/// Offset of the first top-level field with `tag` in an encoded header.
func findField(_ tag: UInt16, in header: [UInt8]) -> Int? {
    let length = Int(header[12]) | Int(header[13]) << 8 | Int(header[14]) << 16
    var at = StreamFormat.fixedHeaderSize
    while at + 8 <= length - 4 {
        if Int(header[at]) | Int(header[at + 1]) << 8 == Int(tag) { return at }
        at += 8 + (Int(header[at + 4]) | Int(header[at + 5]) << 8 | Int(header[at + 6]) << 16)
    }
    return nil
}
