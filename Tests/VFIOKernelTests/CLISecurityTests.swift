// The refusals of `send` and `receive` as separate processes: a certificate from another CA
// on either end, no credentials, plain TCP and TLS crossed, a connection that never
// authenticates, a second migration while one runs. Each refused sender exits non-zero with
// its devices RUNNING; a receiver that turned a peer away goes on to serve the real sender
// and lists what it turned away.
import Foundation
import Testing
import VFIOSyscalls

private let credentials = CLI.packageRoot + "/Tests/VFIOSyscallsTests/Fixtures/tls"

@Suite(.serialized) struct CLISecurityTests {
    private func receiver(tls directory: String?, _ extra: [String] = []) throws -> BackgroundReceiver {
        let security = directory.map { ["--tls-dir", "\(credentials)/\($0)"] } ?? ["--insecure"]
        return try BackgroundReceiver(["mock:b?state=1MiB&seed=3", "--listen", "127.0.0.1:0", "--json", "--quiet"] + security + extra)
    }

    private func send(to address: String, tls directory: String?, device: String = "mock:a?state=1MiB&seed=3", _ extra: [String] = []) throws -> CLIResult {
        let security = directory.map { ["--tls-dir", "\(credentials)/\($0)", "--tls-name", "receiver.test"] } ?? ["--insecure"]
        return try CLI.run(["send", device, "--to", address, "--quiet"] + security + extra)
    }

    /// A refused sender: non-zero, one line that names `expected`, its device still RUNNING.
    private func expectRefused(_ result: CLIResult, naming expected: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(result.status != 0, "\(result.err)", sourceLocation: sourceLocation)
        #expect(result.err.split(separator: "\n").count == 1, "one line: \(result.err)", sourceLocation: sourceLocation)
        #expect(result.err.contains(expected), "names \(expected): \(result.err)", sourceLocation: sourceLocation)
        #expect(result.err.contains("left in RUNNING") || result.err.contains("returned to RUNNING"), "\(result.err)", sourceLocation: sourceLocation)
    }

    /// The receiver served the real sender after turning `count` peers away; returns their notes.
    private func served(_ receiver: BackgroundReceiver, turnedAway count: Int, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String] {
        let received = try receiver.finish()
        #expect(received.status == 0, "\(received.err)", sourceLocation: sourceLocation)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(received.out.utf8)) as? [String: Any], sourceLocation: sourceLocation)
        let notes = json["rejectedConnections"] as? [String] ?? []
        #expect(notes.count == count, "\(notes)", sourceLocation: sourceLocation)
        return notes
    }

    @Test func aSenderWithACertificateFromAnotherCAIsTurnedAwayAndTheRealOneServed() throws {
        let receiver = try receiver(tls: "server")
        expectRefused(try send(to: receiver.address, tls: "rogue-client"), naming: "does not trust the CA")
        let good = try send(to: receiver.address, tls: "client")
        #expect(good.status == 0, "\(good.err)")
        let notes = try served(receiver, turnedAway: 1)
        #expect(notes.first?.contains("certificate") == true, "\(notes)")
    }

    @Test func aReceiverWithACertificateFromAnotherCAIsRefusedByTheSender() throws {
        let receiver = try receiver(tls: "rogue-server", ["--wait-timeout", "2"])
        expectRefused(try send(to: receiver.address, tls: "client"), naming: "certificate")
        let received = try receiver.finish()
        #expect(received.status == 1, "the rogue receiver got nothing and timed out: \(received.err)")
        #expect(received.err.contains("no source proposed a migration"), "\(received.err)")
    }

    @Test func emptyCredentialDirectoriesAreRefusedInOneLineOnBothEnds() throws {
        let empty = try TempDir()
        for (command, files) in [(["send", "mock:a", "--to", "127.0.0.1:9"], "client-cert.pem"), (["receive", "mock:b", "--listen", "127.0.0.1:0"], "server-cert.pem")] {
            let result = try CLI.run(command + ["--tls-dir", empty.path])
            #expect(result.status == 2, "\(command[0]): \(result.err)")
            #expect(result.err.split(separator: "\n").count == 1, "\(command[0]): \(result.err)")
            #expect(result.err.contains("ca-cert.pem") && result.err.contains(files), "names the missing files: \(result.err)")
        }
    }

    @Test func plainTCPAgainstATLSReceiverIsRefusedAndTheReceiverGoesOn() throws {
        let receiver = try receiver(tls: "server")
        let plain = try send(to: receiver.address, tls: nil)
        #expect(plain.status != 0 && plain.err.contains("returned to RUNNING") || plain.err.contains("left in RUNNING"), "\(plain.err)")
        let good = try send(to: receiver.address, tls: "client")
        #expect(good.status == 0, "\(good.err)")
        let notes = try served(receiver, turnedAway: 1)
        #expect(notes.first?.contains("does not speak TLS") == true, "\(notes)")
    }

    @Test func tlsAgainstAPlainReceiverIsRefusedAndTheReceiverGoesOn() throws {
        let receiver = try receiver(tls: nil)
        let crossed = try send(to: receiver.address, tls: "client")
        #expect(crossed.status != 0, "\(crossed.err)")
        #expect(crossed.err.contains("left in RUNNING") || crossed.err.contains("returned to RUNNING"), "\(crossed.err)")
        let good = try send(to: receiver.address, tls: nil)
        #expect(good.status == 0, "\(good.err)")
        let notes = try served(receiver, turnedAway: 1)
        #expect(notes.first?.contains("bad magic") == true, "\(notes)")
    }

    @Test func aConnectionThatNeverAuthenticatesIsDroppedAndTheSenderServed() throws {
        let receiver = try receiver(tls: "server", ["--authentication-timeout", "1"])
        let silent = try TCPConnection.connect(to: try NetworkAddress(parsing: receiver.address), timeout: .seconds(5))
        defer { try? silent.close() }
        let good = try send(to: receiver.address, tls: "client")
        #expect(good.status == 0, "\(good.err)")
        let notes = try served(receiver, turnedAway: 1)
        #expect(notes.first?.contains("did not complete the handshake within 1 s") == true, "\(notes)")
    }

    @Test func aSecondSenderWhileOneMigratesIsRefusedAndTheFirstCompletes() throws {
        let receiver = try BackgroundReceiver(["mock:b?state=256MiB&seed=3", "--listen", "127.0.0.1:0", "--insecure", "--json", "--quiet"])
        let port = try #require(receiver.address.split(separator: ":").last.flatMap { UInt16($0) })
        let first = Process()
        first.executableURL = CLI.binary
        first.arguments = ["send", "mock:a?state=256MiB&seed=3", "--to", receiver.address, "--insecure", "--quiet"]
        let log = try TempDir()
        _ = FileManager.default.createFile(atPath: log.file("err"), contents: nil)
        first.standardOutput = FileHandle.nullDevice
        first.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log.file("err")))
        try first.run()
        // Once its data channel is connected the migration is under way: hold the first
        // sender still for a moment while the second tries (the receiver serves the second
        // only after the first's channel spoke, so the outcome is the same wherever it stopped).
        let end = Date().addingTimeInterval(20)
        var seen = 0
        while first.isRunning && Date() < end && seen < 2 {
            seen = connections(of: first.processIdentifier, toPort: port)
            if seen < 2 { usleep(1_000) }
        }
        let pid = first.processIdentifier
        try #require(seen >= 2 && kill(pid, SIGSTOP) == 0, "the first sender's data channel was not seen (\(seen) connections; running: \(first.isRunning)): \((try? String(contentsOfFile: log.file("err"), encoding: .utf8)) ?? "")")
        let resume = Thread {
            Thread.sleep(forTimeInterval: 1.5)
            kill(pid, SIGCONT)
        }
        resume.start()
        let second = try CLI.run(["send", "mock:c?state=256MiB&seed=3", "--to", receiver.address, "--insecure", "--quiet"])
        first.waitUntilExit()
        #expect(second.status == 1, "\(second.err)")
        #expect(second.err.contains("another migration") && second.err.contains("left in RUNNING"), "second: \(second.err)")
        #expect(first.terminationStatus == 0, "the first migration completed")
        let notes = try served(receiver, turnedAway: 1)
        #expect(notes.first?.contains("another migration is in progress") == true, "\(notes)")
    }

    /// Established TCP connections of process `pid` to `port` (its sockets matched by inode
    /// against the kernel's table).
    private func connections(of pid: Int32, toPort port: UInt16) -> Int {
        let directory = "/proc/\(pid)/fd"
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let inodes = Set(entries.compactMap { entry -> String? in
            let link = (try? FileManager.default.destinationOfSymbolicLink(atPath: "\(directory)/\(entry)")) ?? ""
            guard link.hasPrefix("socket:[") else { return nil }
            return String(link.dropFirst(8).dropLast())
        })
        let remote = String(format: ":%04X", port)
        var count = 0
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            // Read to the end: String(contentsOfFile:) stops after the first page of a /proc file.
            let text = String(decoding: FileHandle(forReadingAtPath: table)?.readDataToEndOfFile() ?? Data(), as: UTF8.self)
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ")
                // remote address, state (01: established), inode
                guard fields.count > 9, fields[2].hasSuffix(remote), fields[3] == "01", inodes.contains(String(fields[9])) else { continue }
                count += 1
            }
        }
        return count
    }
}
