// Shared samples and helpers for the stream tests. The sample descriptors mirror
// Fixtures/generate.py, the independent writer of the golden files.
import Foundation
import Testing
import VFIOBuffers
@testable import VFIOStream

enum Samples {
    static let pciDevice = DeviceDescriptor(
        name: "0000:3b:00.1", deviceAPI: "vfio-pci", driverName: "mlx5_vfio_pci", driverVersion: "1.0",
        pci: PCIIdentity(
            vendorID: 0x15B3, deviceID: 0x101E, subsystemVendorID: 0x15B3, subsystemDeviceID: 0x0063, revision: 0,
            classCode: 0x020000),
        migrationFlags: [.stopCopy, .preCopy], expectedStateSize: 1 << 20, vendorCompatibility: "mlx5 fw 22.36")

    static let mdevDevice = DeviceDescriptor(
        name: "6f8e4c2a-1b3d-4e5f-8a9b-0c1d2e3f4a5b", deviceAPI: "vfio-ap", driverName: "vfio_ap", driverVersion: "",
        mdev: MdevDefinition(
            type: "vfio_ap-passthrough",
            attributes: [
                MdevAttribute(name: "assign_adapter", value: "5"), MdevAttribute(name: "assign_domain", value: "0x47"),
                MdevAttribute(name: "assign_domain", value: "0xff"),
            ]),
        migrationFlags: [.stopCopy])

    static let host = HostIdentity(
        hostName: "src-host", machineID: "0123456789abcdef0123456789abcdef", kernelRelease: "6.8.0-test")

    /// A header as a 1.0 writer wrote it (minor 0: no digests required), as in the v1.0 fixtures.
    static func header(_ devices: [DeviceDescriptor], maxPayload: UInt32 = 16 << 20) -> StreamHeader {
        StreamHeader(
            version: .v1_0, creationTimeNanoseconds: 1_700_000_000_123_456_789, maxPayload: maxPayload, host: host,
            writer: "vfio-migration test", devices: devices)
    }

    /// A header as this 1.1 codec writes it: the version follows from the content.
    static func header11(
        _ devices: [DeviceDescriptor], maxPayload: UInt32 = 16 << 20, flags: HeaderFlags = [], migrationID: MigrationID? = nil,
        channel: StreamChannel? = nil, regions: [MemoryRegionDescriptor] = []
    ) -> StreamHeader {
        StreamHeader(
            flags: flags.rawValue, creationTimeNanoseconds: 1_700_000_000_123_456_789, maxPayload: maxPayload, host: host,
            writer: "vfio-migration test", devices: devices, migrationID: migrationID, channel: channel, regions: regions)
    }

    /// The v1.1 fixtures' migration id and memory regions (generate.py has the same).
    static let migrationID = MigrationID(high: 0x0123_4567_89AB_CDEF, low: 0xFEDC_BA98_7654_3210)
    static let regions = [
        MemoryRegionDescriptor(start: 0, length: 1 << 20, pageSize: 4096),
        MemoryRegionDescriptor(start: 1 << 32, length: 4 << 20, pageSize: 2 << 20),
    ]

    /// Page `index` of the fixtures' region 0: a pattern that differs per page and per byte.
    static func page(_ index: Int) -> [UInt8] {
        (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ index &* 31 &+ 1) }
    }

    /// A device with the given flags, for device-count and phase tests.
    static func device(_ index: Int, flags: MigrationFlags = [.stopCopy, .preCopy]) -> DeviceDescriptor {
        DeviceDescriptor(
            name: "mock\(index)", deviceAPI: "vfio-pci", driverName: "mock", driverVersion: "1.\(index)",
            pci: PCIIdentity(
                vendorID: 0x1AF4, deviceID: 0x1000 + UInt16(index), subsystemVendorID: 0, subsystemDeviceID: 0,
                revision: 1, classCode: 0x020000),
            migrationFlags: flags)
    }

    /// The one-device stream of records-1dev.hex, built with the Swift encoder.
    static func oneDeviceStream() throws -> [UInt8] {
        try oneDevice(header([pciDevice]), digest: false)
    }

    /// stream-v1.1-1dev.hex: the same records from a 1.1 writer, with the device digest.
    static func oneDeviceStream11() throws -> [UInt8] {
        try oneDevice(header11([pciDevice]), digest: true)
    }

    private static func oneDevice(_ header: StreamHeader, digest: Bool) throws -> [UInt8] {
        var encoder = try StreamEncoder(header: header)
        var bytes = encoder.encodeHeader()
        try encoder.appendPreCopyProgress(device: 0, initialBytes: 8, dirtyBytes: 0, to: &bytes)
        try encoder.appendDeviceState(device: 0, phase: .preCopy, payload: Array("pre-copy".utf8), to: &bytes)
        try encoder.appendDeviceState(device: 0, phase: .stopCopy, payload: Array("state".utf8), to: &bytes)
        if digest { try encoder.appendDeviceDigest(device: 0, to: &bytes) }
        try encoder.appendEndOfDevice(device: 0, to: &bytes)
        try encoder.appendEndOfStream(to: &bytes)
        return bytes
    }

    /// The two-device stream of records-2dev.hex, built with the Swift encoder.
    static func twoDeviceStream() throws -> [UInt8] {
        var encoder = try StreamEncoder(header: header([pciDevice, mdevDevice]))
        var bytes = encoder.encodeHeader()
        try encoder.appendDeviceState(device: 0, phase: .preCopy, payload: Array("AAAA".utf8), to: &bytes)
        try encoder.appendDeviceState(device: 1, phase: .stopCopy, payload: Array("xyz".utf8), to: &bytes)
        try encoder.appendDeviceState(device: 0, phase: .stopCopy, payload: Array("BB".utf8), to: &bytes)
        try encoder.appendEndOfDevice(device: 1, to: &bytes)
        try encoder.appendEndOfDevice(device: 0, to: &bytes)
        try encoder.appendEndOfStream(to: &bytes)
        return bytes
    }

    /// stream-v1.1-pages.hex: device state interleaved with pages records of both phases,
    /// data and ZERO runs, in both regions.
    static func pagesStream() throws -> [UInt8] {
        var encoder = try StreamEncoder(header: header11([pciDevice], migrationID: migrationID, regions: regions))
        var bytes = encoder.encodeHeader()
        try encoder.appendPages(
            region: 0, phase: .preCopy, round: 0, runs: [PageRun(firstPage: 0, pageCount: 1), PageRun(firstPage: 2, pageCount: 3, isZero: true)],
            data: page(0), to: &bytes)
        try encoder.appendPreCopyProgress(device: 0, initialBytes: 8, dirtyBytes: 0, to: &bytes)
        try encoder.appendDeviceState(device: 0, phase: .preCopy, payload: Array("pre-copy".utf8), to: &bytes)
        try encoder.appendPages(region: 1, phase: .preCopy, round: 1, runs: [PageRun(firstPage: 0, pageCount: 2, isZero: true)], data: [], to: &bytes)
        try encoder.appendDeviceState(device: 0, phase: .stopCopy, payload: Array("state".utf8), to: &bytes)
        try encoder.appendPages(
            region: 0, phase: .stopCopy, round: 2, runs: [PageRun(firstPage: 0, pageCount: 1, isZero: true), PageRun(firstPage: 5, pageCount: 1)],
            data: page(5), to: &bytes)
        try encoder.appendDeviceDigest(device: 0, to: &bytes)
        try encoder.appendEndOfDevice(device: 0, to: &bytes)
        try encoder.appendEndOfStream(to: &bytes)
        return bytes
    }

    /// The device data the channel fixtures split: channel 0 carries 0..<5 and 8..<10,
    /// channel 1 carries 5..<8.
    static let channelData = Array("AAAAABBBDD".utf8)

    /// stream-v1.1-channel0.hex / -channel1.hex: one migration over two channels.
    static func channelStream(_ index: UInt16) throws -> [UInt8] {
        let header = header11([pciDevice], migrationID: migrationID, channel: StreamChannel(index: index, count: 2), regions: regions)
        var encoder = try StreamEncoder(header: header)
        var bytes = encoder.encodeHeader()
        let total = UInt64(channelData.count)
        if index == 0 {
            try encoder.appendDeviceState(device: 0, phase: .stopCopy, payload: channelData[0..<5], dataOffset: 0, to: &bytes)
            try encoder.appendDeviceState(device: 0, phase: .stopCopy, payload: channelData[8..<10], dataOffset: 8, to: &bytes)
            try encoder.appendDeviceDigest(device: 0, dataCRC: CRC32C.checksum(channelData), totalLength: total, to: &bytes)
        } else {
            try encoder.appendPages(region: 0, phase: .stopCopy, round: 0, runs: [PageRun(firstPage: 1, pageCount: 1, isZero: true)], data: [], to: &bytes)
            try encoder.appendDeviceState(device: 0, phase: .stopCopy, payload: channelData[5..<8], dataOffset: 5, to: &bytes)
        }
        try encoder.appendEndOfDevice(device: 0, totalLength: total, to: &bytes)
        try encoder.appendEndOfStream(to: &bytes)
        return bytes
    }

    /// stream-v1.1-nocrc.hex: NO_RECORD_CHECKSUMS, every record CRC 0, the digest's data CRC 0.
    static func noChecksumStream() throws -> [UInt8] {
        var encoder = try StreamEncoder(header: header11([mdevDevice], flags: .noRecordChecksums))
        var bytes = encoder.encodeHeader()
        try encoder.appendDeviceState(device: 0, phase: .stopCopy, payload: Array("xyz".utf8), to: &bytes)
        try encoder.appendDeviceDigest(device: 0, to: &bytes)
        try encoder.appendEndOfDevice(device: 0, to: &bytes)
        try encoder.appendEndOfStream(to: &bytes)
        return bytes
    }
}

enum Fixtures {
    static var directory: URL {
        Bundle.module.resourceURL!.appendingPathComponent("Fixtures")
    }

    /// Bytes of an annotated hex file: `#` starts a comment, whitespace separates bytes.
    static func hex(_ name: String) throws -> [UInt8] {
        let text = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
        var bytes: [UInt8] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let data = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            for token in data.split(whereSeparator: { $0 == " " || $0 == "\t" }) {
                bytes.append(try #require(UInt8(token, radix: 16), "bad hex token \(token) in \(name)"))
            }
        }
        return bytes
    }
}

/// Reads a whole in-memory stream; returns the header, the records and the first error.
struct Outcome {
    var header: StreamHeader?
    var records: [ReadRecord] = []
    var error: StreamError?
    var summary: StreamSummary?
}

func read(_ bytes: [UInt8], limits: StreamLimits = .default, pagesInPieces: Bool = false) -> Outcome {
    var outcome = Outcome()
    var reader = StreamReader(bytes, limits: limits, pagesInPieces: pagesInPieces)
    do {
        outcome.header = try reader.readHeader()
        while let record = try reader.next() { outcome.records.append(record) }
    } catch {
        outcome.error = error
    }
    outcome.summary = reader.decoder.summary
    return outcome
}

/// Recomputes the header CRC after a test edited header bytes.
func resealHeader(_ bytes: inout [UInt8]) {
    let length = Int(UInt32(bytes[12]) | UInt32(bytes[13]) << 8 | UInt32(bytes[14]) << 16 | UInt32(bytes[15]) << 24)
    bytes.storeLittleEndian(CRC32C.checksum(bytes[0..<(length - 4)]), at: length - 4)
}

/// Recomputes the CRC of the record at `offset` after a test edited it.
func resealRecord(_ bytes: inout [UInt8], at offset: Int) {
    let length = Int(UInt32(bytes[offset + 8]) | UInt32(bytes[offset + 9]) << 8 | UInt32(bytes[offset + 10]) << 16 | UInt32(bytes[offset + 11]) << 24)
    bytes.storeLittleEndian(UInt32(0), at: offset + 12)
    let crc = CRC32C.checksum(bytes[offset..<(offset + 32 + length)])
    bytes.storeLittleEndian(crc, at: offset + 12)
}

/// Limits that accept NO_RECORD_CHECKSUMS streams.
let acceptingUnchecked = StreamLimits(acceptsNoRecordChecksums: true)

/// Stream offsets of every record in a valid stream.
func recordOffsets(_ bytes: [UInt8], limits: StreamLimits = .default) throws -> [Int] {
    let outcome = read(bytes, limits: limits)
    if let error = outcome.error { throw error }
    return outcome.records.map { Int($0.offset) }
}

extension StreamReader {
    /// Every record of a valid stream.
    func allRecords() throws -> [ReadRecord] {
        var reader = self
        _ = try reader.readHeader()
        var records: [ReadRecord] = []
        while let record = try reader.next() { records.append(record) }
        return records
    }
}
