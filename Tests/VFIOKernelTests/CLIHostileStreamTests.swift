// The CLI and output side of a hostile-stream campaign: a header within the 1 MiB limit that
// describes thousands of devices must not make `inspect` use memory in proportion to what it
// could print, and text from a stream must never reach the terminal raw.
import Foundation
import Testing
import VFIOStream

enum HostileStreams {
    /// A valid stream whose header (under 1 MiB) describes `devices` devices, each with
    /// `attributes` mdev attributes, 16 bytes of state and its end.
    static func manyDevices(_ devices: Int, attributes: Int = 0, name: (Int) -> String = { "d\($0)" }) throws -> [UInt8] {
        let descriptors = (0..<devices).map { i in
            DeviceDescriptor(
                name: name(i), deviceAPI: "vfio-pci", driverName: "x", driverVersion: "1",
                mdev: attributes == 0 ? nil : MdevDefinition(type: "t-1", attributes: Array(repeating: MdevAttribute(name: "a", value: "0"), count: attributes)),
                migrationFlags: [.stopCopy])
        }
        return try encode(StreamHeader(creationTimeNanoseconds: 0, maxPayload: 4096, devices: descriptors), stateBytes: 16)
    }

    /// The header, then for every device `stateBytes` of stop-copy state (when not 0), its
    /// digest and its end, then the stream's end.
    static func encode(_ header: StreamHeader, stateBytes: Int = 0) throws -> [UInt8] {
        var encoder = try StreamEncoder(header: header)
        var bytes = encoder.encodeHeader()
        for i in header.devices.indices {
            if stateBytes > 0 {
                try encoder.appendDeviceState(
                    device: i, phase: .stopCopy, payload: Array(repeating: UInt8(i & 0xFF), count: stateBytes), to: &bytes)
            }
            try encoder.appendDeviceDigest(device: i, to: &bytes)
            try encoder.appendEndOfDevice(device: i, to: &bytes)
        }
        try encoder.appendEndOfStream(to: &bytes)
        return bytes
    }

    /// The largest device count whose header stays within the 1 MiB limit (names of one
    /// width, so the header grows by the same bytes per device), each with `attributes`
    /// mdev attributes.
    static func largestWithinHeaderLimit(attributes: Int = 0) throws -> [UInt8] {
        let name = { (i: Int) in "d" + String(repeating: "0", count: 5 - String(i).count) + String(i) }
        func size(_ n: Int) throws -> Int {
            try StreamHeader(creationTimeNanoseconds: 0, maxPayload: 4096, devices: (0..<n).map {
                DeviceDescriptor(
                    name: name($0), deviceAPI: "vfio-pci", driverName: "x", driverVersion: "1",
                    mdev: attributes == 0 ? nil : MdevDefinition(type: "t-1", attributes: Array(repeating: MdevAttribute(name: "a", value: "0"), count: attributes)),
                    migrationFlags: [.stopCopy])
            }).encoded().count
        }
        let one = try size(1), perDevice = try size(2) - one
        return try manyDevices(1 + (StreamFormat.hardMaxHeaderLength - one) / perDevice, attributes: attributes, name: name)
    }
}

@Suite(.serialized) struct CLIHostileStreamTests {
    @Test func theSamplerSeesAKnownPeakAndRefusesToReadZero() throws {
        let python = URL(fileURLWithPath: "/usr/bin/python3")
        let big = try CLI.run(executable: python, ["-c", "b = b'x' * (160 << 20); import time; time.sleep(0.3)"], measurePeak: true)
        #expect(big.status == 0)
        #expect(big.peakKiB > 160 << 10, "measured \(big.peakKiB) KiB for a 160 MiB allocation")
        // A process /proc does not show cannot be measured: that throws, never reads as 0.
        #expect(throws: PeakMemory.NotMeasured.self) { try PeakMemory.highWaterMarkKiB(of: Int32.max) }
    }

    @Test func inspectingAManyDeviceStreamStaysSmallInEveryOutput() throws {
        let dir = try TempDir()
        let file = dir.file("many.vfiomig")
        let bytes = try HostileStreams.largestWithinHeaderLimit()
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        #expect(bytes.count > 2_000_000, "a stream of \(bytes.count) bytes")
        try #require(try CLI.run(["verify", file]).status == 0, "the stream is valid")
        for json in [true, false] {
            let result = try CLI.run(executable: CLI.binary, ["inspect", file] + (json ? ["--json"] : []), measurePeak: true)
            #expect(result.status == 0, "\(result.err)")
            // The bound is on what is described: 64 devices, whatever the header holds. (Before
            // the bound: 79.5 MiB for this stream with --json; the process alone is ~28 MiB.)
            #expect(result.peakKiB < 48 << 10, "inspect\(json ? " --json" : "") peaked at \(result.peakKiB) KiB")
            #expect(result.out.utf8.count < 200_000, "\(result.out.utf8.count) bytes of output")
            if json {
                try CLI.validate(result.out, against: "inspect")
                let doc = try #require(try JSONSerialization.jsonObject(with: Data(result.out.utf8)) as? [String: Any])
                let omitted = try #require(doc["omitted"] as? [String: Any])
                let header = try #require(doc["header"] as? [String: Any])
                #expect((doc["devices"] as? [Any])?.count == 64)
                #expect(omitted["devices"] as? Int == (header["deviceCount"] as? Int).map { $0 - 64 })
                #expect(omitted["ended"] as? Int == omitted["devices"] as? Int, "every omitted device was still counted")
            } else {
                #expect(result.out.contains("more device(s) not described"), "\(result.out.suffix(500))")
            }
        }
    }

    @Test func inspectingAStreamOfManyAttributesStaysSmall() throws {
        let dir = try TempDir()
        let file = dir.file("attributes.vfiomig")
        try Data(try HostileStreams.largestWithinHeaderLimit(attributes: 64)).write(to: URL(fileURLWithPath: file))
        for json in [true, false] {
            let result = try CLI.run(executable: CLI.binary, ["inspect", file] + (json ? ["--json"] : []), measurePeak: true)
            #expect(result.status == 0, "\(result.err)")
            // Before the bound: 114 MiB with --json.
            #expect(result.peakKiB < 48 << 10, "inspect\(json ? " --json" : "") peaked at \(result.peakKiB) KiB")
            if json { try CLI.validate(result.out, against: "inspect") }
        }
    }

    @Test func longStringsAndAttributeListsAreCutAndSaySo() throws {
        let dir = try TempDir()
        let file = dir.file("long.vfiomig")
        let long = String(repeating: "v", count: 100_000)
        let attributes = (0..<1000).map { MdevAttribute(name: "attr", value: "\($0)") }
        try Data(try HostileStreams.encode(StreamHeader(creationTimeNanoseconds: 0, maxPayload: 4096, writer: long, devices: [
            DeviceDescriptor(name: long, deviceAPI: "vfio-pci", driverName: "x", driverVersion: "1",
                             mdev: MdevDefinition(type: "t-1", attributes: attributes), migrationFlags: [.stopCopy],
                             vendorCompatibility: long),
        ]))).write(to: URL(fileURLWithPath: file))
        let json = try CLI.run(["inspect", file, "--json"])
        #expect(json.status == 0, "\(json.err)")
        try CLI.validate(json.out, against: "inspect")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [String: Any])
        let device = try #require((doc["devices"] as? [[String: Any]])?.first)
        #expect(device["omittedAttributes"] as? Int == 1000 - 32)
        #expect(device["omittedStringBytes"] as? Int == 2 * (100_000 - 256))
        #expect(json.out.utf8.count < 20_000)
        let text = try CLI.run(["inspect", file])
        #expect(text.out.contains("(968 more mdev attributes not shown)"), "\(text.out)")
        #expect(text.out.utf8.count < 20_000)
    }

    @Test func controlCharactersFromAStreamAreEscapedInEveryOutput() throws {
        let dir = try TempDir()
        let file = dir.file("esc.vfiomig")
        let evil = "\u{1B}]0;pwned\u{07}\u{1B}[2J\u{9B}31m\u{202E}txt\nfake line"
        try Data(try HostileStreams.encode(StreamHeader(
            creationTimeNanoseconds: 0, maxPayload: 4096, host: HostIdentity(hostName: evil, kernelRelease: evil), writer: evil,
            devices: [DeviceDescriptor(
                name: evil, deviceAPI: "vfio-pci", driverName: evil, driverVersion: evil,
                mdev: MdevDefinition(type: "t-1", attributes: [MdevAttribute(name: "a", value: evil)]),
                migrationFlags: [.stopCopy], vendorCompatibility: evil)]))).write(to: URL(fileURLWithPath: file))
        for arguments in [["inspect", file], ["inspect", file, "--json"], ["target-spec", file, "--parent", "p"],
                          ["target-spec", file, "--parent", "p", "--json"], ["compat", file, "mock:t"]] {
            let result = try CLI.run(arguments)
            for (stream, text) in [("stdout", result.out), ("stderr", result.err)] {
                let raw = text.unicodeScalars.filter { ($0.value < 0x20 && $0 != "\n") || (0x7F...0x9F).contains($0.value) || $0 == "\u{202E}" }
                #expect(raw.isEmpty, "\(arguments) \(stream) holds raw control characters: \(raw.map { String($0.value, radix: 16) })")
                #expect(!text.contains("\nfake line"), "\(arguments) \(stream): a stream string started a line of its own")
            }
            if arguments.count == 2 { #expect(result.out.contains("\\e]0;pwned"), "\(result.out)") }
        }
    }
}
