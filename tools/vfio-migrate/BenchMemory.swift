// The memory target of issue 10: four 4 GiB emulated devices sent over four channels from one
// process to another (this binary's `send` and `receive`, over loopback), each side's peak
// resident memory (VmHWM) sampled from /proc while they run. The bound is per side.
import Foundation
import VFIOMigration

struct TwoProcessMemory {
    let devices: Int
    let stateBytes: Int
    let channels: Int
    /// Issue 10: under 256 MiB on each side.
    static let limit: UInt64 = 256 << 20

    struct Side: Encodable {
        var peakBytes: UInt64
        var exitStatus: Int32
        var samples: Int
    }

    struct Result: Encodable {
        var devices: Int
        var stateBytesPerDevice: UInt64
        var channels: Int
        var sender: Side
        var receiver: Side
        var limitBytes: UInt64
        var seconds: Double
        var met: Bool
    }

    func run() throws -> Result {
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("vfio-bench-memory-\(ProcessInfo.processInfo.processIdentifier)").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let spec = { (side: String, i: Int) in "mock:bench-rss-\(side)\(i)?state=\(stateBytes)&source=fast&flags=stop-copy,p2p" }
        let receiver = try Child(
            executable, ["receive"] + (0..<devices).map { spec("t", $0) } + ["--listen", "127.0.0.1:0", "--insecure", "--json", "--max-channels", "\(channels)"],
            scratch: scratch, name: "receive")
        defer { receiver.stop() }
        let address = try receiver.awaitLine(prefix: "listening on ", within: 30)
        let clock = ContinuousClock()
        let start = clock.now
        let sender = try Child(
            executable, ["send"] + (0..<devices).map { spec("s", $0) } + ["--to", address, "--insecure", "--channels", "\(channels)", "--json", "--quiet"],
            scratch: scratch, name: "send")
        defer { sender.stop() }
        var peaks: [UInt64] = [0, 0]
        var samples = [0, 0]
        while sender.isRunning || receiver.isRunning {
            for (i, child) in [sender, receiver].enumerated() where child.isRunning {
                if let peak = child.peakResidentBytes() {
                    peaks[i] = max(peaks[i], peak)
                    samples[i] += 1
                }
            }
            usleep(2000)
        }
        let seconds = (clock.now - start).seconds
        let statuses = (sender.status, receiver.status)
        guard statuses == (0, 0) else {
            throw CLIFailure(.failed, "the memory check's migration failed: send exit \(statuses.0): \(shown(sender.errors, limit: 600)); receive exit \(statuses.1): \(shown(receiver.errors, limit: 600))")
        }
        guard samples[0] > 0 && samples[1] > 0 else {
            throw CLIFailure(.failed, "the memory check could not read VmHWM of send or receive from /proc")
        }
        return Result(
            devices: devices, stateBytesPerDevice: UInt64(stateBytes), channels: channels,
            sender: Side(peakBytes: peaks[0], exitStatus: statuses.0, samples: samples[0]),
            receiver: Side(peakBytes: peaks[1], exitStatus: statuses.1, samples: samples[1]),
            limitBytes: Self.limit, seconds: seconds, met: peaks.allSatisfy { $0 < Self.limit })
    }
}

/// A process of this binary with its output in files (a child writing never waits on us).
private final class Child {
    let process = Process()
    let out: String
    let err: String

    init(_ executable: URL, _ arguments: [String], scratch: String, name: String) throws {
        out = "\(scratch)/\(name).out"
        err = "\(scratch)/\(name).err"
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        _ = FileManager.default.createFile(atPath: err, contents: nil)
        process.executableURL = executable
        process.arguments = arguments
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    var isRunning: Bool { process.isRunning }
    var errors: String { (try? String(contentsOfFile: err, encoding: .utf8)) ?? "" }

    var status: Int32 {
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// VmHWM from /proc/PID/status; nil once the process is gone.
    func peakResidentBytes() -> UInt64? {
        guard let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kib = line.split(separator: " ").dropFirst().first.flatMap({ UInt64($0) }), kib > 0
        else { return nil }
        return kib << 10
    }

    func awaitLine(prefix: String, within seconds: Double) throws -> String {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if let line = errors.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) { return String(line.dropFirst(prefix.count)) }
            guard process.isRunning else { break }
            usleep(10_000)
        }
        throw CLIFailure(.failed, "receive did not start listening: \(shown(errors, limit: 600))")
    }

    /// Ends the process if it still runs (after a failure of the other side).
    func stop() {
        if process.isRunning { process.terminate() }
    }
}
