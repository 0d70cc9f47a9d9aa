// One exit-status rule for every command (docs/cli.md): each status, from each command that
// can give it, through the built binary.
import Foundation
import Testing

@Suite struct CLIExitStatusTests {
    @Test func usageErrorsExitTwo() throws {
        let dir = try TempDir()
        let stream = try savedStream(in: dir)
        // The parser's own errors (an unknown option, a missing argument) too, not its 64.
        for arguments in [
            ["save", "mock:x?bogus=1", "-o", "/dev/null"],
            ["save", "mock:x", "-o", "/dev/null", "--after", "resuming"],
            ["save", "mock:x", "-o", "/dev/null", "--chunk-size", "lots"],
            ["list", "--no-such-option"],
            ["load", "mock:x"],
            ["load", "mock:t1", "mock:t2", "-i", stream],
            ["compat", stream, "mock:t1", "mock:t2"],
            ["target-spec", stream, "--device-index", "3"],
            ["target-spec", "mock:x", "--device-index", "0"],
            ["demo", "--devices", "9"],
        ] {
            let result = try CLI.run(arguments)
            #expect(result.status == 2, "\(arguments): \(result.status) \(result.err)")
            #expect(!result.err.isEmpty, "\(arguments) says why")
        }
    }

    @Test func theWrongNumberOfTargetsIsTheSameErrorFromLoadAndCompat() throws {
        let dir = try TempDir()
        let stream = try savedStream(in: dir)
        let load = try CLI.run(["load", "mock:t1", "mock:t2", "-i", stream])
        let compat = try CLI.run(["compat", stream, "mock:t1", "mock:t2"])
        #expect(load.status == 2 && compat.status == 2)
        for result in [load, compat] {
            #expect(result.err.contains("the stream carries 1 device(s) but 2 target device(s) were named"), "\(result.err)")
        }
    }

    @Test func anIncompatibleTargetExitsThreeFromEveryCommand() throws {
        let dir = try TempDir()
        let stream = try savedStream(in: dir)
        let other = "mock:o?state=300KiB&compat=other-vendor"
        #expect(try CLI.run(["compat", stream, other]).status == 3)
        #expect(try CLI.run(["load", other, "-i", stream]).status == 3)
        #expect(try CLI.run(["replay", stream, "--device", other]).status == 3)
        #expect(try CLI.run(["save", "mock:a", "-o", dir.file("x.vfiomig"), "--target", other]).status == 3)
    }

    @Test func somethingThatIsNotAStreamExitsFourFromEveryCommandThatReadsOne() throws {
        let dir = try TempDir()
        let text = dir.file("not-a-stream")
        try String(repeating: "not a stream\n", count: 20).write(toFile: text, atomically: true, encoding: .utf8)
        let empty = dir.file("empty")
        _ = FileManager.default.createFile(atPath: empty, contents: nil)
        for file in [text, empty] {
            for arguments in [
                ["inspect", file], ["verify", file], ["load", "mock:t", "-i", file], ["compat", file, "mock:t"],
                ["replay", file, "--device", "mock:t"], ["target-spec", file],
            ] {
                let result = try CLI.run(arguments)
                #expect(result.status == 4, "\(arguments): \(result.status) \(result.err)")
                #expect(result.err.contains("not a vfio-migration stream"), "\(arguments): \(result.err)")
            }
        }
    }

    @Test func aCorruptStreamExitsFour() throws {
        let dir = try TempDir()
        let stream = try savedStream(in: dir)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: stream))
        bytes[bytes.count - 40] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: stream))
        for arguments in [["inspect", stream], ["verify", stream], ["load", "mock:t?state=300KiB", "-i", stream]] {
            #expect(try CLI.run(arguments).status == 4, "\(arguments)")
        }
    }

    @Test func whatDoesNotExistExitsFive() throws {
        #expect(try CLI.run(["inspect", "/nonexistent/s.vfiomig"]).status == 5)
        #expect(try CLI.run(["load", "mock:t", "-i", "/nonexistent/s.vfiomig"]).status == 5)
        #expect(try CLI.run(["probe", "0000:99:00.0"]).status == 5)
        #expect(try CLI.run(["list", "--sysfs-root", "/nonexistent"]).status == 5)
    }

    @Test func withoutVFIOEveryKernelCommandSaysSoInOneLineAndExitsSix() throws {
        let fake = try StandardHost.make()
        let dir = try TempDir()
        let stream = try savedStream(in: dir)
        let roots = ["--sysfs-root", fake.root, "--dev-root", fake.dev]
        for arguments in [
            ["probe", StandardHost.vf0], ["save", StandardHost.vf0, "-o", dir.file("k.vfiomig")],
            ["load", StandardHost.vf0, "-i", stream], ["compat", stream, StandardHost.vf0],
            ["replay", stream, "--device", StandardHost.vf0], ["target-spec", StandardHost.vf0],
        ] {
            let result = try CLI.run(arguments + roots)
            #expect(result.status == 6, "\(arguments): \(result.status) \(result.err)")
            let lines = result.err.split(separator: "\n")
            #expect(lines.count == 1 && lines[0].contains("VFIO is not available on this machine"), "\(arguments): \(result.err)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir.file("k.vfiomig")))
    }

    @Test func aDeviceWithoutMigrationExitsSixAndANetworkOneIsToldAboutFailover() throws {
        let result = try CLI.run(["save", "mock:nic?flags=none", "-o", "/dev/null"])
        #expect(result.status == 6, "\(result.err)")
        #expect(result.err.contains("mock:nic"), "\(result.err)")
        #expect(result.err.contains("hint: this is a network device: migrate the guest with virtio-net failover"), "\(result.err)")
    }

    @Test func aFailedOperationExitsOne() throws {
        let full = try CLI.run(["save", "mock:a?state=1MiB", "-o", "/dev/full"])
        #expect(full.status == 1, "\(full.err)")
        let dir = try TempDir()
        let stream = try savedStream(in: dir)
        // A target that refuses the state when it validates it.
        let refused = try CLI.run(["load", "mock:t?state=300KiB&fail-arc=RESUMING>STOP:EIO", "-i", stream])
        #expect(refused.status == 1, "\(refused.err)")
        #expect(refused.err.contains("EIO"), "\(refused.err)")
    }
}
