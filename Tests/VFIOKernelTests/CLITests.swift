// The built `vfio-migrate` binary against this machine (no /dev/vfio), fake sysfs trees and
// emulated devices: the main paths of every command.
import Foundation
import Testing

@Suite struct CLIListTests {
    @Test func listOnAMachineWithoutVFIOSaysSoInOneLineAndExitsCleanly() throws {
        let fake = try StandardHost.make()
        let result = try CLI.run(["list", "--sysfs-root", fake.root, "--dev-root", fake.root + "/no-dev"])
        #expect(result.status == 0, "\(result.err)")
        let lines = result.out.split(separator: "\n")
        #expect(lines.filter { $0.contains("VFIO is not available on this machine") }.count == 1, "\(result.out)")
        #expect(result.out.contains(StandardHost.vf0))
    }

    @Test func listOfAFakeTreeAsJSONFollowsItsSchema() throws {
        let fake = try StandardHost.make()
        let result = try CLI.run(["list", "--sysfs-root", fake.root, "--json"])
        #expect(result.status == 0, "\(result.err)")
        try CLI.validate(result.out, against: "list")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.out.utf8)) as? [String: Any])
        let devices = try #require(json["devices"] as? [[String: Any]])
        let names = devices.compactMap { $0["name"] as? String }
        #expect(Set(names).isSuperset(of: [StandardHost.vf0, StandardHost.vf1, StandardHost.gpu, StandardHost.mdevUUID]))
    }

    @Test func missingSysfsRootIsAClearError() throws {
        let result = try CLI.run(["list", "--sysfs-root", "/nonexistent/sys"])
        #expect(result.status == 5)
        #expect(result.err.contains("/nonexistent/sys"), "\(result.err)")
    }

    @Test func aKernelDeviceThatDoesNotExistIsNamed() throws {
        let result = try CLI.run(["probe", "0000:99:00.0"])
        #expect(result.status == 5, "\(result.err)")
        #expect(result.err.contains("0000:99:00.0"))
    }
}

@Suite struct CLIStreamCommandTests {
    @Test func saveInspectVerifyReplayCompatAndLoad() throws {
        let dir = try TempDir()
        let file = dir.file("c.vfiomig")
        let save = try CLI.run(["save", "mock:c0?state=300KiB&seed=5", "-o", file, "--json"])
        #expect(save.status == 0, "\(save.err)")
        try CLI.validate(save.out, against: "save")
        #expect(try CLI.run(["verify", file]).status == 0)
        let inspect = try CLI.run(["inspect", file, "--json"])
        #expect(inspect.status == 0 && inspect.out.contains("\"valid\" : true"), "\(inspect.out)")
        let replay = try CLI.run(["replay", file])
        #expect(replay.status == 0 && replay.out.contains("replay matches the capture"), "\(replay.out)\(replay.err)")
        #expect(try CLI.run(["compat", file, "mock:t?state=300KiB"]).status == 0)
        let incompatible = try CLI.run(["compat", file, "mock:t?state=300KiB&flags=stop-copy&compat=x"])
        #expect(incompatible.status == 3)
        #expect(incompatible.out.contains("PRE_COPY"), "\(incompatible.out)")
        let load = try CLI.run(["load", "mock:t?state=300KiB", "-i", file])
        #expect(load.status == 0, "\(load.err)")
        #expect(load.out.contains("mock:t: loaded 300.25 KiB"), "\(load.out)")

        // One byte flipped in the middle: verify names an offset and exits 4; a load resets.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: file))
        bytes[bytes.count / 2] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: file))
        let verify = try CLI.run(["verify", file])
        #expect(verify.status == 4)
        #expect(verify.err.contains("offset"), "\(verify.err)")
        let corrupt = try CLI.run(["load", "mock:t2?state=300KiB", "-i", file])
        #expect(corrupt.status == 4)
        #expect(corrupt.err.contains("reset to RUNNING"), "\(corrupt.err)")
    }

    @Test func aStreamTravelsThroughStandardOutputAndInput() throws {
        let dir = try TempDir()
        let save = try CLI.run(["save", "mock:p?state=200KiB", "-o", "-", "--json", "--quiet"])
        #expect(save.status == 0, "\(save.err)")
        // The stream owns standard output, so the report went to standard error.
        try CLI.validate(save.err, against: "save")
        #expect(save.out.utf8.count > 200 << 10, "the stream went to standard output")
        let stdin = try savedStream("mock:p2?state=200KiB", in: dir, name: "p2.vfiomig")
        let load = try CLI.run(["load", "mock:q?state=200KiB", "-i", "-"], input: stdin)
        #expect(load.status == 0, "\(load.err)")
        let verify = try CLI.run(["verify", "-"], input: stdin)
        #expect(verify.status == 0, "\(verify.err)")
    }

    @Test func theDefaultJobIsAMockMigration() throws {
        let demo = try CLI.run(["--state", "2MiB", "--devices", "2"])
        #expect(demo.status == 0, "\(demo.err)")
        #expect(demo.out.contains("migration complete"))
        #expect(demo.out.components(separatedBy: "identical state to").count == 3)
        let json = try CLI.run(["demo", "--state", "1MiB", "--devices", "1", "--json"])
        #expect(json.status == 0, "\(json.err)")
        try CLI.validate(json.out, against: "demo")
    }
}
