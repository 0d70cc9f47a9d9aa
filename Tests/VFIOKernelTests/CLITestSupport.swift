// Running the built `vfio-migrate` binary: its exit status, standard output and error, its
// JSON checked against the schemas in docs/schemas, and its peak resident memory.
import Foundation
import Testing

struct CLIResult {
    var status: Int32
    var out: String
    var err: String
    /// Peak resident set (VmHWM) in KiB, when measured.
    var peakKiB: Int = 0
}

enum CLI {
    /// The binary built next to the test bundle.
    static var binary: URL {
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let beside = directory.appendingPathComponent("vfio-migrate")
        if FileManager.default.fileExists(atPath: beside.path) { return beside }
        // swift-testing's runner may live inside the .xctest bundle directory.
        return directory.deletingLastPathComponent().appendingPathComponent("vfio-migrate")
    }

    /// The package root (for docs/schemas), found from this source file.
    static var packageRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    /// Runs the CLI with `arguments`; standard input from `input` (a file) or nothing.
    static func run(_ arguments: [String], input: String? = nil, environment: [String: String]? = nil) throws -> CLIResult {
        try run(executable: binary, arguments, input: input, environment: environment)
    }

    static func run(executable: URL, _ arguments: [String], input: String? = nil, environment: [String: String]? = nil,
                    measurePeak: Bool = false) throws -> CLIResult {
        // Files, not pipes: a child writing megabytes never waits for a reader, so sampling
        // its memory cannot deadlock.
        let scratch = try TempDir()
        let outPath = scratch.path + "/out", errPath = scratch.path + "/err"
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if let environment { process.environment = environment }
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        process.standardInput = try input.map { try FileHandle(forReadingFrom: URL(fileURLWithPath: $0)) } ?? FileHandle.nullDevice
        try process.run()
        var peak = 0
        if measurePeak {
            while process.isRunning {
                // The last samples may find the process gone; the first ones must not.
                if let now = try? PeakMemory.highWaterMarkKiB(of: process.processIdentifier) { peak = max(peak, now) }
                usleep(500)
            }
        }
        process.waitUntilExit()
        if measurePeak && peak == 0 {
            throw PeakMemory.NotMeasured(pid: process.processIdentifier)
        }
        return CLIResult(
            status: process.terminationStatus,
            out: String(decoding: try Data(contentsOf: URL(fileURLWithPath: outPath)), as: UTF8.self),
            err: String(decoding: try Data(contentsOf: URL(fileURLWithPath: errPath)), as: UTF8.self), peakKiB: peak)
    }

    /// Checks `json` against docs/schemas/<schema>.schema.json with Debian's python3 and
    /// jsonschema (tools/setup.sh installs them); a missing validator fails the test.
    static func validate(_ json: String, against schema: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let scratch = try TempDir()
        let file = scratch.path + "/doc.json"
        try json.write(toFile: file, atomically: true, encoding: .utf8)
        let result = try run(executable: URL(fileURLWithPath: "/usr/bin/python3"),
                             [packageRoot + "/docs/schemas/validate.py", schema, file])
        #expect(result.status == 0, "\(schema) schema: \(result.err)\n\(json.prefix(2000))", sourceLocation: sourceLocation)
    }
}

enum PeakMemory {
    struct NotMeasured: Error, CustomStringConvertible {
        var pid: Int32
        var description: String { "could not read VmHWM of process \(pid) from /proc (the peak would read as 0)" }
    }

    /// VmHWM of a running process in KiB; throws when /proc has no such line (no such
    /// process, or one that has exited) or it reads as 0, so no caller can take 0 for a peak.
    static func highWaterMarkKiB(of pid: Int32) throws(NotMeasured) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kib = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) }), kib > 0
        else { throw NotMeasured(pid: pid) }
        return kib
    }
}

/// A directory removed when released.
final class TempDir {
    let path: String
    init() throws {
        path = FileManager.default.temporaryDirectory.path + "/cli-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { path + "/" + name }

    /// Names of entries in the directory, hidden ones too.
    var entries: [String] { (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] }
}

/// The saved stream of one mock device, for commands that read one.
func savedStream(_ spec: String = "mock:s?state=300KiB&seed=5", in dir: TempDir, name: String = "s.vfiomig") throws -> String {
    let file = dir.file(name)
    let save = try CLI.run(["save", spec, "-o", file, "--quiet"])
    #expect(save.status == 0, "\(save.err)")
    return file
}
