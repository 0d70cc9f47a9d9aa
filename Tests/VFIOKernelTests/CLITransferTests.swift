// `send` and `receive` as separate processes over loopback: a migration both ends report, as
// text and as JSON valid against the schemas; plain TCP refused without --insecure on both
// ends; an incompatible target refused with exit 3 on both; a receiver killed mid-stream
// leaves the sender's devices RUNNING; TLS with the fixture credentials.
import Foundation
import Testing

/// `vfio-migrate receive` in the background; `address` once it listens.
final class BackgroundReceiver {
    let process = Process()
    let dir: TempDir
    let address: String

    init(_ arguments: [String]) throws {
        dir = try TempDir()
        let out = dir.file("out"), err = dir.file("err")
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        _ = FileManager.default.createFile(atPath: err, contents: nil)
        process.executableURL = CLI.binary
        process.arguments = ["receive"] + arguments
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let end = Date().addingTimeInterval(20)
        var found: String?
        while found == nil && Date() < end && process.isRunning {
            let text = (try? String(contentsOfFile: err, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("listening on ") }) {
                found = String(line.dropFirst("listening on ".count))
            } else {
                usleep(20_000)
            }
        }
        guard let found else {
            process.terminate()
            throw TestFailure("receive did not start listening: \((try? String(contentsOfFile: err, encoding: .utf8)) ?? "")")
        }
        address = found
    }

    func finish() throws -> CLIResult {
        process.waitUntilExit()
        return CLIResult(
            status: process.terminationStatus,
            out: try String(contentsOfFile: dir.file("out"), encoding: .utf8),
            err: try String(contentsOfFile: dir.file("err"), encoding: .utf8))
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ text: String) { description = text }
}

private let tls = CLI.packageRoot + "/Tests/VFIOSyscallsTests/Fixtures/tls"

@Suite(.serialized) struct CLITransferTests {
    @Test func aLiveMigrationOverTwoChannelsAsJSON() throws {
        let receiver = try BackgroundReceiver(["mock:b?state=2MiB&seed=3", "--listen", "127.0.0.1:0", "--insecure", "--json", "--quiet"])
        let sent = try CLI.run(["send", "mock:a?state=2MiB&seed=3", "--to", receiver.address, "--insecure", "--channels", "2", "--json", "--quiet"])
        let received = try receiver.finish()
        #expect(sent.status == 0, "\(sent.err)")
        #expect(received.status == 0, "\(received.err)")
        try CLI.validate(sent.out, against: "send")
        try CLI.validate(received.out, against: "receive")
        let s = try #require(try JSONSerialization.jsonObject(with: Data(sent.out.utf8)) as? [String: Any])
        let r = try #require(try JSONSerialization.jsonObject(with: Data(received.out.utf8)) as? [String: Any])
        #expect(s["migrationID"] as? String == r["migrationID"] as? String)
        #expect((s["confirmation"] as? [String: Any])?["committed"] as? String == "RUNNING")
        #expect(r["channels"] as? Int == 2)
    }

    @Test func guestMemoryTravelsWithTheDevicesAndLandsInTheTargetsFile() throws {
        let dir = try TempDir()
        let source = dir.file("src.ram"), target = dir.file("dst.ram")
        var bytes = [UInt8](repeating: 0, count: 4 << 20)
        for i in stride(from: 0, to: bytes.count, by: 8) { bytes[i] = UInt8(truncatingIfNeeded: i >> 12 &* 31 &+ i) }
        for i in (1 << 20)..<(2 << 20) { bytes[i] = 0 }  // a stretch of zero pages
        try Data(bytes).write(to: URL(fileURLWithPath: source))
        try Data(count: 4 << 20).write(to: URL(fileURLWithPath: target))
        let receiver = try BackgroundReceiver(["mock:b?state=1MiB", "--memory", target, "--listen", "127.0.0.1:0", "--insecure", "--json", "--quiet"])
        let sent = try CLI.run(["send", "mock:a?state=1MiB", "--memory", source, "--to", receiver.address, "--insecure", "--channels", "2", "--json", "--quiet"])
        let received = try receiver.finish()
        #expect(sent.status == 0, "\(sent.err)")
        #expect(received.status == 0, "\(received.err)")
        try CLI.validate(sent.out, against: "send")
        try CLI.validate(received.out, against: "receive")
        #expect(try Data(contentsOf: URL(fileURLWithPath: target)) == Data(bytes), "the target's RAM file equals the source's")
    }

    @Test func textOutputNamesTheDowntimeAndTheChannels() throws {
        let receiver = try BackgroundReceiver(["mock:b?state=1MiB", "--listen", "127.0.0.1:0", "--insecure"])
        let sent = try CLI.run(["send", "mock:a?state=1MiB", "--to", receiver.address, "--insecure"])
        let received = try receiver.finish()
        #expect(sent.status == 0 && received.status == 0, "\(sent.err)\n\(received.err)")
        #expect(sent.out.contains("downtime"), "\(sent.out)")
        #expect(sent.out.contains("its devices are RUNNING, these are left in STOP"), "\(sent.out)")
        #expect(received.out.contains("devices left in RUNNING"), "\(received.out)")
    }

    /// A receiver waits for its source as long as it takes: the handshake timeout starts at
    /// the proposal, not when the receiver began listening.
    @Test func aSourceThatComesAfterTheHandshakeTimeoutIsStillServed() throws {
        let receiver = try BackgroundReceiver(["mock:b?state=1MiB", "--listen", "127.0.0.1:0", "--insecure", "--handshake-timeout", "1", "--quiet"])
        usleep(1_800_000)
        let sent = try CLI.run(["send", "mock:a?state=1MiB", "--to", receiver.address, "--insecure", "--quiet"])
        let received = try receiver.finish()
        #expect(sent.status == 0 && received.status == 0, "\(sent.err)\n\(received.err)")
    }

    @Test func plainTCPWithoutInsecureIsRefusedInOneLineOnBothEnds() throws {
        for command in [["send", "mock:a", "--to", "127.0.0.1:9"], ["receive", "mock:b", "--listen", "127.0.0.1:0"]] {
            let result = try CLI.run(command + ["--tls-dir", "/nonexistent/vfio-tls"])
            #expect(result.status == 2, "\(command[0]): \(result.err)")
            let lines = result.err.split(separator: "\n")
            #expect(lines.count == 1, "\(command[0]): \(result.err)")
            #expect(result.err.contains("--insecure"), "\(result.err)")
        }
    }

    @Test func anIncompatibleTargetExitsThreeOnBothEnds() throws {
        let receiver = try BackgroundReceiver(["mock:b?state=1MiB&compat=other", "--listen", "127.0.0.1:0", "--insecure"])
        let sent = try CLI.run(["send", "mock:a?state=1MiB", "--to", receiver.address, "--insecure"])
        let received = try receiver.finish()
        #expect(sent.status == 3, "\(sent.err)")
        #expect(received.status == 3, "\(received.err)")
        #expect(sent.err.contains("vendorCompatibility"), "\(sent.err)")
    }

    @Test func aReceiverKilledMidStreamLeavesTheSourceRunning() throws {
        // Pre-copy that never converges keeps the migration going until the receiver dies.
        let spec = "state=4MiB&flags=stop-copy,pre-copy&dirty-rate=16/64KiB"
        let receiver = try BackgroundReceiver(["mock:b?\(spec)", "--listen", "127.0.0.1:0", "--insecure", "--quiet"])
        let pid = receiver.process.processIdentifier
        let killer = Thread {
            Thread.sleep(forTimeInterval: 1.0)
            kill(pid, SIGKILL)
        }
        killer.start()
        let sent = try CLI.run(["send", "mock:a?\(spec)", "--to", receiver.address, "--insecure", "--max-rounds", "1000000", "--quiet"])
        _ = try receiver.finish()
        #expect(sent.status == 1, "\(sent.err)")
        #expect(sent.err.contains("returned to RUNNING"), "\(sent.err)")
    }

    @Test func overTLSWithTheFixtureCredentials() throws {
        let receiver = try BackgroundReceiver([
            "mock:b?state=1MiB", "--listen", "127.0.0.1:0", "--tls-dir", tls + "/server", "--allow-client", "CN=sender-a", "--quiet",
        ])
        let sent = try CLI.run(["send", "mock:a?state=1MiB", "--to", receiver.address, "--tls-dir", tls + "/client", "--tls-name", "receiver.test", "--json", "--quiet"])
        let received = try receiver.finish()
        #expect(sent.status == 0, "\(sent.err)")
        #expect(received.status == 0, "\(received.err)")
        let s = try #require(try JSONSerialization.jsonObject(with: Data(sent.out.utf8)) as? [String: Any])
        #expect(s["recordChecksums"] as? Bool == false, "TLS carries the stream without record CRCs")
    }

    @Test func aClientOutsideTheAllowListIsTurnedAway() throws {
        let receiver = try BackgroundReceiver([
            "mock:b?state=1MiB", "--listen", "127.0.0.1:0", "--tls-dir", tls + "/server", "--allow-client", "CN=someone-else",
            "--wait-timeout", "3", "--quiet",
        ])
        let sent = try CLI.run(["send", "mock:a?state=1MiB", "--to", receiver.address, "--tls-dir", tls + "/client", "--tls-name", "receiver.test", "--handshake-timeout", "3"])
        let received = try receiver.finish()
        #expect(sent.status != 0)
        #expect(received.status != 0)
        #expect(received.err.contains("allow") || received.err.contains("turned away"), "\(received.err)")
    }
}
