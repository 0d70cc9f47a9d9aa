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

    static func header(_ devices: [DeviceDescriptor], maxPayload: UInt32 = 16 << 20) -> StreamHeader {
        StreamHeader(
            creationTimeNanoseconds: 1_700_000_000_123_456_789, maxPayload: maxPayload, host: host,
            writer: "vfio-migration test", devices: devices)
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
    static func oneDeviceStream() -> [UInt8] {
        var encoder = StreamEncoder(header: header([pciDevice]))
        var bytes = encoder.encodeHeader()
        encoder.appendPreCopyProgress(device: 0, initialBytes: 8, dirtyBytes: 0, to: &bytes)
        encoder.appendDeviceState(device: 0, phase: .preCopy, payload: Array("pre-copy".utf8), to: &bytes)
        encoder.appendDeviceState(device: 0, phase: .stopCopy, payload: Array("state".utf8), to: &bytes)
        encoder.appendEndOfDevice(device: 0, to: &bytes)
        encoder.appendEndOfStream(to: &bytes)
        return bytes
    }

    /// The two-device stream of records-2dev.hex, built with the Swift encoder.
    static func twoDeviceStream() -> [UInt8] {
        var encoder = StreamEncoder(header: header([pciDevice, mdevDevice]))
        var bytes = encoder.encodeHeader()
        encoder.appendDeviceState(device: 0, phase: .preCopy, payload: Array("AAAA".utf8), to: &bytes)
        encoder.appendDeviceState(device: 1, phase: .stopCopy, payload: Array("xyz".utf8), to: &bytes)
        encoder.appendDeviceState(device: 0, phase: .stopCopy, payload: Array("BB".utf8), to: &bytes)
        encoder.appendEndOfDevice(device: 1, to: &bytes)
        encoder.appendEndOfDevice(device: 0, to: &bytes)
        encoder.appendEndOfStream(to: &bytes)
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

func read(_ bytes: [UInt8], limits: StreamLimits = .default) -> Outcome {
    var outcome = Outcome()
    var reader = StreamReader(bytes, limits: limits)
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

/// Stream offsets of every record in a valid stream.
func recordOffsets(_ bytes: [UInt8]) throws -> [Int] {
    let outcome = read(bytes)
    if let error = outcome.error { throw error }
    return outcome.records.map { Int($0.offset) }
}
