// The built `vfio-migrate` binary against this machine (no /dev/vfio) and against fake trees.
import Foundation
import Testing

/// Runs the CLI built next to the test bundle; returns (exit code, stdout, stderr).
func runCLI(_ arguments: [String]) throws -> (status: Int32, out: String, err: String) {
    let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    var binary = directory.appendingPathComponent("vfio-migrate")
    if !FileManager.default.fileExists(atPath: binary.path) {
        // swift-testing's runner may live inside the .xctest bundle directory.
        binary = directory.deletingLastPathComponent().appendingPathComponent("vfio-migrate")
    }
    let process = Process()
    process.executableURL = binary
    process.arguments = arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
}

@Suite struct CLIListTests {
    @Test func listOnAMachineWithoutVFIOSaysSoAndExitsCleanly() throws {
        let fake = try StandardHost.make()
        // The same tree with no /dev/vfio: a plain statement, exit 0.
        let (status, out, _) = try runCLI(["list", "--sysfs-root", fake.root, "--dev-root", fake.root + "/no-dev"])
        #expect(status == 0)
        #expect(out.contains("VFIO is not available on this machine"), "\(out)")
        #expect(out.contains(StandardHost.vf0))
    }

    @Test func listOfAFakeTreeAsJSON() throws {
        let fake = try StandardHost.make()
        let (status, out, err) = try runCLI(["list", "--sysfs-root", fake.root, "--json"])
        #expect(status == 0, "\(err)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        let pci = try #require(json["pciDevices"] as? [[String: Any]])
        let addresses = pci.compactMap { $0["address"] as? String }
        #expect(Set(addresses).isSuperset(of: [StandardHost.pf, StandardHost.vf0, StandardHost.vf1, StandardHost.gpu]))
        let mdevs = try #require(json["mdevDevices"] as? [[String: Any]])
        #expect(mdevs.contains { $0["uuid"] as? String == StandardHost.mdevUUID })
    }

    @Test func missingSysfsRootIsAClearError() throws {
        let (status, _, err) = try runCLI(["list", "--sysfs-root", "/nonexistent/sys"])
        #expect(status == 5)
        #expect(err.contains("/nonexistent/sys"), "\(err)")
    }

    @Test func aKernelDeviceThatDoesNotExistIsNamed() throws {
        let (status, _, err) = try runCLI(["probe", "0000:99:00.0"])
        #expect(status == 5, "\(err)")
        #expect(err.contains("0000:99:00.0"))
    }
}

@Suite struct CLIStreamCommandTests {
    @Test func saveInspectVerifyReplayCompatAndTheirExitCodes() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("cli-\(UUID().uuidString).vfiomig").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        let save = try runCLI(["save", "mock:c0?state=300KiB&seed=5", "-o", file, "--json"])
        #expect(save.status == 0, "\(save.err)")
        #expect(save.out.contains("\"stopCopyBytes\""))
        #expect(try runCLI(["verify", file]).status == 0)
        let inspect = try runCLI(["inspect", file, "--json"])
        #expect(inspect.status == 0 && inspect.out.contains("\"valid\" : true"), "\(inspect.out)")
        let replay = try runCLI(["replay", file])
        #expect(replay.status == 0 && replay.out.contains("replay matches the capture"), "\(replay.out)\(replay.err)")
        #expect(try runCLI(["compat", file, "mock:t?state=300KiB"]).status == 0)
        let incompatible = try runCLI(["compat", file, "mock:t?state=300KiB&flags=stop-copy&compat=x"])
        #expect(incompatible.status == 3)
        #expect(incompatible.out.contains("PRE_COPY"), "\(incompatible.out)")

        // Corrupt one byte in the middle: verify names an offset and exits 4.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: file))
        bytes[bytes.count / 2] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: file))
        let verify = try runCLI(["verify", file])
        #expect(verify.status == 4)
        #expect(verify.err.contains("offset"), "\(verify.err)")
        let load = try runCLI(["load", "mock:t?state=300KiB", "-i", file])
        #expect(load.status == 4)
        #expect(load.err.contains("reset to RUNNING"), "\(load.err)")
    }

    @Test func theDefaultJobIsAMockMigration() throws {
        let demo = try runCLI(["--state", "2MiB", "--devices", "2"])
        #expect(demo.status == 0, "\(demo.err)")
        #expect(demo.out.contains("migration complete"))
        #expect(demo.out.components(separatedBy: "identical state to").count == 3)
    }

    @Test func badUsageExitsTwo() throws {
        #expect(try runCLI(["save", "mock:x?bogus=1", "-o", "/dev/null"]).status == 2)
        #expect(try runCLI(["save", "mock:x", "-o", "/dev/null", "--after", "resuming"]).status == 2)
    }
}
