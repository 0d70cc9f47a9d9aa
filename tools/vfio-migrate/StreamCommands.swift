import ArgumentParser
import Foundation
import VFIOCore
import VFIOMigration
import VFIOMockDevices
import VFIOStream

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect", abstract: "Show a stream's header, device descriptors and per-phase contents.")

    @Argument(help: "Stream file, or - for standard input.") var file: String
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        try reporting {
            let result = try Migration.inspect(file)
            if json {
                try printJSON(result)
            } else {
                let h = result.header
                let created = Date(timeIntervalSince1970: Double(h.creationTimeNanoseconds) / 1e9)
                print("stream        \(file): format \(h.version.major).\(h.version.minor), \(formatBytes(result.streamBytes)), \(result.records) records")
                print("written       \(created) on \(h.host.hostName.isEmpty ? "?" : h.host.hostName) (kernel \(h.host.kernelRelease)) by \(h.writer)")
                for d in result.devices {
                    let desc = d.descriptor
                    let ids = desc.pci.map { String(format: "%04x:%04x sub %04x:%04x rev %02x", $0.vendorID, $0.deviceID, $0.subsystemVendorID, $0.subsystemDeviceID, $0.revision) } ?? "no PCI identity"
                    print("device \(d.index)      \(desc.name): \(desc.deviceAPI), driver \(desc.driverName) \(desc.driverVersion), \(ids)")
                    if let mdev = desc.mdev { print("              mdev type \(mdev.type)") }
                    print("              migration \(desc.migrationFlags)\(desc.vendorCompatibility.isEmpty ? "" : ", vendor compat \(desc.vendorCompatibility)")")
                    print("              pre-copy  \(d.preCopy.chunks) chunks, \(formatBytes(d.preCopy.bytes))")
                    print("              stop-copy \(d.stopCopy.chunks) chunks, \(formatBytes(d.stopCopy.bytes))\(d.ended ? "" : " (no end-of-device record)")")
                }
                print(result.valid ? "checksums     all records verified" : "problem       \(result.problem ?? "unknown")")
            }
            if !result.valid { throw ExitCode(ExitStatus.corrupt.rawValue) }
        }
    }
}

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify", abstract: "Check every checksum and the structure of a stream; exit 0 when valid, 4 when not.")

    @Argument(help: "Stream file, or - for standard input.") var file: String

    func run() throws {
        try reporting {
            let summary = try Migration.verify(file)
            print("valid: \(summary.devices.count) device(s), \(summary.recordCount) records, \(formatBytes(summary.totalStateBytes)) of device state, \(formatBytes(summary.streamLength)) in all")
        }
    }
}

struct CompatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compat", abstract: "Check whether target devices can load a stream (no device state is touched).")

    @Argument(help: "Stream file.") var file: String
    @Argument(help: "Target devices, in stream order.") var devices: [String]
    @OptionGroup var environment: EnvironmentOptions
    @Flag(help: "Print JSON.") var json = false

    struct Row: Encodable {
        var device: Int
        var field: String
        var source: String
        var target: String
        var description: String
    }

    func run() throws {
        try reporting {
            let reader = try StreamInput(path: file)
            let env = environment.make()
            guard devices.count == reader.deviceCount else {
                throw CLIError(message: "the stream carries \(reader.deviceCount) device(s); name that many targets", code: .usage)
            }
            let targets = try devices.map { try env.open($0).descriptor() }
            let rows = Migration.compatibility(of: reader.header.devices, with: targets).map {
                Row(device: $0.device, field: $0.mismatch.field, source: $0.mismatch.values.source,
                    target: $0.mismatch.values.target, description: $0.mismatch.description)
            }
            if json {
                try printJSON(rows)
            } else if rows.isEmpty {
                print("compatible: \(devices.joined(separator: ", ")) can load \(file)")
            } else {
                for r in rows { print("device \(r.device): \(r.description)") }
            }
            if !rows.isEmpty { throw ExitCode(ExitStatus.incompatible.rawValue) }
        }
    }
}

struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Feed a captured stream into a device and check that exactly the captured bytes arrived, in order.")

    @Argument(help: "Stream file of one device.") var file: String
    @Option(help: "Target device (default: a mock device shaped like the captured one).") var device: String?
    @OptionGroup var environment: EnvironmentOptions
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        try reporting {
            let env = environment.make()
            let spec = try device ?? defaultMock()
            let report = try Migration.replay(file, into: try env.open(spec))
            if json {
                try printJSON(report)
            } else {
                print("captured  \(formatBytes(report.capturedBytes)), crc32c \(String(format: "%08x", report.capturedCRC32C))")
                print("delivered \(formatBytes(report.deliveredBytes)), crc32c \(String(format: "%08x", report.deliveredCRC32C))")
                print("states    \(report.requestedStates.map(\.description).joined(separator: " -> ")), now \(report.finalState)")
                print(report.matches ? "replay matches the capture" : "replay DOES NOT match the capture")
            }
            if !report.matches { throw ExitCode(ExitStatus.failed.rawValue) }
        }
    }

    /// A mock target shaped like the captured device (streams saved from mock devices).
    func defaultMock() throws -> String {
        guard file != "-" else {
            throw CLIError(message: "a replay from standard input needs --device (the stream cannot be read twice)", code: .usage)
        }
        guard let spec = try MockDevices.replayTargetSpecs(forStreamAt: file).first else {
            throw CLIError(message: "the stream carries no device", code: .usage)
        }
        return spec
    }
}
