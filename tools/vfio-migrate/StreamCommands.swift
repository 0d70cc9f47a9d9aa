import ArgumentParser
import Foundation
import VFIOMigration
import VFIOMockDevices

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show a stream's header, device descriptors and per-phase contents.",
        discussion: """
            Every record is read and checked; exit 4 and the first problem (with its byte
            offset) when the stream is not valid. What is shown is bounded whatever the stream
            holds: at most 64 devices and 32 mdev attributes per device are described and every
            string is cut to 256 bytes (the output says how much was left out); every device is
            counted. Control characters from the stream are shown escaped (\\e, \\u{9b}).

            Examples:
              vfio-migrate inspect vf.vfiomig
              vfio-migrate inspect vf.vfiomig --json | jq '.devices[0].stopCopy'
            """)

    @Argument(help: "Stream file, or - for standard input.") var file: String
    @OptionGroup var common: CommonOptions

    func run() throws {
        try execute(common) { _ in
            let result = try Migration.inspect(try CheckedStream.open(file))
            if common.json {
                try JSONOutput.print(result)
            } else {
                Console.out(Self.render(result, file: file))
            }
            if !result.valid { try exitWith(.corrupt) }
        }
    }

    static func render(_ result: StreamInspection, file: String) -> String {
        let h = result.header
        let created = Date(timeIntervalSince1970: Double(h.creationTimeNanoseconds) / 1e9)
        var out = [
            "stream        \(shown(file)): format \(h.version.major).\(h.version.minor), \(formatBytes(result.streamBytes)), \(result.records) records, \(h.deviceCount) device(s)",
            "written       \(created) on \(h.host.hostName.isEmpty ? "?" : shown(h.host.hostName)) (kernel \(shown(h.host.kernelRelease))) by \(shown(h.writer))",
        ]
        for d in result.devices {
            out.append("device \(d.index)")
            out += DescriptorText.lines(d.descriptor, indent: "  ")
            if d.omittedAttributes > 0 { out.append("  (\(d.omittedAttributes) more mdev attributes not shown)") }
            if d.omittedStringBytes > 0 { out.append("  (\(d.omittedStringBytes) bytes of its strings not shown)") }
            out.append("  pre-copy       \(d.preCopy.chunks) chunks, \(formatBytes(d.preCopy.bytes))")
            out.append("  stop-copy      \(d.stopCopy.chunks) chunks, \(formatBytes(d.stopCopy.bytes))\(d.ended ? "" : " (no end-of-device record)")")
        }
        for r in result.regions {
            let pages = { (c: PageCounts) in "\(c.dataPages) pages with data, \(c.zeroPages) zero pages in \(c.records) records" }
            out.append("region \(r.index)      0x\(String(r.start, radix: 16)) + \(formatBytes(r.length)), \(formatBytes(UInt64(r.pageSize))) pages")
            out.append("  pre-copy       \(pages(r.preCopy))")
            out.append("  stop-copy      \(pages(r.stopCopy))")
        }
        let o = result.omitted
        if o.regions > 0 {
            out.append("(\(o.regions) more region(s) not described: \(o.regionPages.dataPages) pages with data, \(o.regionPages.zeroPages) zero pages)")
        }
        if o.devices > 0 {
            out.append("(\(o.devices) more device(s) not described: pre-copy \(o.preCopy.chunks) chunks, \(formatBytes(o.preCopy.bytes)); stop-copy \(o.stopCopy.chunks) chunks, \(formatBytes(o.stopCopy.bytes)); \(o.ended) ended)")
        }
        let checked = result.header.flags & HeaderFlags.noRecordChecksums.rawValue == 0
            ? "checksums     all records verified" : "checksums     none in this stream (NO_RECORD_CHECKSUMS): structure checked only"
        out.append(result.valid ? checked : "problem       \(shown(result.problem ?? "unknown", limit: 1024))")
        return out.joined(separator: "\n")
    }
}

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check every checksum and the structure of a stream; exit 0 when valid, 4 when not.",
        discussion: """
            Examples:
              vfio-migrate verify vf.vfiomig
              vfio-migrate verify - < vf.vfiomig
            """)

    @Argument(help: "Stream file, or - for standard input.") var file: String
    @OptionGroup var common: CommonOptions

    struct Result: Encodable {
        struct Device: Encodable {
            var index: Int
            var preCopyBytes: UInt64
            var stopCopyBytes: UInt64
            var chunks: UInt64
        }
        var stream: String
        var valid: Bool
        var devices: [Device]
        var records: UInt64
        var stateBytes: UInt64
        var streamBytes: UInt64
        /// False: NO_RECORD_CHECKSUMS, so structure, lengths and order were checked, not the data.
        var recordChecksums: Bool
    }

    func run() throws {
        try execute(common) { invocation in
            let progress = invocation.progress("verifying")
            let stream = try CheckedStream.open(file)
            let summary: StreamSummary
            do {
                summary = try Migration.verify(TappedSource(stream, tap: StreamTap(progress: progress, channel: stream.name)), limits: .readOnly)
            } catch {
                progress.abandon()
                throw error
            }
            progress.finish("verified \(formatBytes(summary.streamLength)) in \(formatSeconds(progress.elapsedSeconds))")
            if common.json {
                return try JSONOutput.print(Result(
                    stream: file, valid: true,
                    devices: summary.devices.enumerated().map {
                        Result.Device(index: $0.offset, preCopyBytes: $0.element.preCopyBytes, stopCopyBytes: $0.element.stopCopyBytes, chunks: $0.element.chunkCount)
                    },
                    records: summary.recordCount, stateBytes: summary.totalStateBytes, streamBytes: summary.streamLength,
                    recordChecksums: summary.header.hasRecordChecksums))
            }
            let unchecked = summary.header.hasRecordChecksums ? "" : " (no record checksums in this stream: structure, lengths and order checked, the data could not be)"
            Console.out("valid: \(summary.devices.count) device(s), \(summary.recordCount) records, \(formatBytes(summary.totalStateBytes)) of device state, \(formatBytes(summary.streamLength)) in all\(unchecked)")
        }
    }
}

struct CompatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compat",
        abstract: "Check whether target devices can load a stream (no device state is touched).",
        discussion: """
            Lists every mismatch (device API, IDs, driver major version, mdev type and
            attributes, migration flags, vendor string). Exit 0 compatible, 3 incompatible, 2
            when the number of targets is not the stream's number of devices.

            Examples:
              vfio-migrate compat vf.vfiomig 0000:5e:00.2
              vfio-migrate compat pair.vfiomig 0000:5e:00.2 0000:5e:00.3 --json
            """)

    @Argument(help: "Stream file.") var file: String
    @Argument(help: "Target devices, in stream order.") var devices: [String]
    @OptionGroup var environment: EnvironmentOptions
    @OptionGroup var common: CommonOptions

    struct Mismatch: Encodable {
        var device: Int
        var field: String
        var source: String
        var target: String
        var description: String
    }

    struct Result: Encodable {
        var stream: String
        var compatible: Bool
        var targets: [String]
        var mismatches: [Mismatch]
    }

    func run() throws {
        try execute(common) { _ in
            let stream = try CheckedStream.open(file, peek: true)
            let header = try stream.header(limits: .readOnly)
            try requireTargetCount(devices.count, for: header, of: stream.name)
            let env = environment.make()
            let targets = try devices.map { try env.open($0).descriptor() }
            let rows = Migration.compatibility(of: header.devices, with: targets).map {
                Mismatch(device: $0.device, field: $0.mismatch.field, source: $0.mismatch.values.source,
                         target: $0.mismatch.values.target, description: $0.mismatch.description)
            }
            if common.json {
                try JSONOutput.print(Result(stream: file, compatible: rows.isEmpty, targets: devices, mismatches: rows))
            } else if rows.isEmpty {
                Console.out("compatible: \(devices.map { shown($0) }.joined(separator: ", ")) can load \(shown(file))")
            } else {
                Console.out(rows.map { "device \($0.device): \(shown($0.description, limit: 1024))" }.joined(separator: "\n"))
            }
            if !rows.isEmpty { try exitWith(.incompatible) }
        }
    }
}

struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Feed a captured stream into a device and check that exactly the captured bytes arrived, in order.",
        discussion: """
            Exit 0 when the bytes and the transitions (RESUMING, STOP, RUNNING) match, 1 when
            not. Without --device the target is a mock device shaped like the captured one
            (streams saved from mock devices).

            Examples:
              vfio-migrate replay capture.vfiomig
              vfio-migrate replay capture.vfiomig --device 0000:5e:00.2
            """)

    @Argument(help: "Stream file of one device.") var file: String
    @Option(help: "Target device (default: a mock device shaped like the captured one).") var device: String?
    @OptionGroup var environment: EnvironmentOptions
    @OptionGroup var common: CommonOptions

    func run() throws {
        try execute(common) { _ in
            let env = environment.make()
            let stream = try CheckedStream.open(file)
            let spec = try device ?? defaultMock()
            let report = try Migration.replay(stream, into: try env.open(spec))
            if common.json {
                try JSONOutput.print(ReplayResult(stream: file, report: report))
            } else {
                Console.out("""
                    captured  \(formatBytes(report.capturedBytes)), crc32c \(String(format: "%08x", report.capturedCRC32C))
                    delivered \(formatBytes(report.deliveredBytes)), crc32c \(String(format: "%08x", report.deliveredCRC32C))
                    states    \(report.requestedStates.map(\.description).joined(separator: " -> ")), now \(report.finalState)
                    \(report.matches ? "replay matches the capture" : "replay DOES NOT match the capture")
                    """)
            }
            if !report.matches { try exitWith(.failed) }
        }
    }

    struct ReplayResult: Encodable {
        var stream: String
        var matches: Bool
        var capturedBytes: UInt64
        var capturedCRC32C: UInt32
        var deliveredBytes: UInt64
        var deliveredCRC32C: UInt32
        var requestedStates: [String]
        var expectedStates: [String]
        var finalState: String

        init(stream: String, report r: ReplayReport) {
            self.stream = stream
            matches = r.matches
            capturedBytes = r.capturedBytes
            capturedCRC32C = r.capturedCRC32C
            deliveredBytes = r.deliveredBytes
            deliveredCRC32C = r.deliveredCRC32C
            requestedStates = r.requestedStates.map(\.description)
            expectedStates = r.expectedStates.map(\.description)
            finalState = r.finalState.description
        }
    }

    /// A mock target shaped like the captured device (streams saved from mock devices).
    func defaultMock() throws -> String {
        guard file != "-" else {
            throw CLIFailure(.usage, "a replay from standard input needs --device (the stream cannot be read twice)")
        }
        guard let spec = try MockDevices.replayTargetSpecs(forStreamAt: file).first else {
            throw CLIFailure(.usage, "the stream carries no device")
        }
        return spec
    }
}
