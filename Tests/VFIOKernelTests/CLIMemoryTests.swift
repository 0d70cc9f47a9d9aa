// `--memory FILE[@IOVA]` through the built binary: guest RAM files saved with a device and
// loaded into another file, equal afterwards, and inspected region by region; a target whose regions differ refused before
// any page is written (exit 3); `--checksum none` streams taken only when the load says so;
// the demo with memory.
import Foundation
import Testing

@Suite(.serialized) struct CLIMemoryTests {
    func ram(_ dir: TempDir, _ name: String, bytes: Int, random: Bool) throws -> String {
        let path = dir.file(name)
        var data = Data(count: bytes)
        if random {
            var state: UInt64 = 0x9E37_79B9_7F4A_7C15
            for i in stride(from: 0, to: bytes, by: 8) {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                for b in 0..<8 { data[i + b] = UInt8(truncatingIfNeeded: state >> (8 * UInt64(b))) }
            }
            data.resetBytes(in: 4096..<3 * 4096) // two zero pages travel as a ZERO run
        }
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func savedMemoryLoadsIntoAnotherFileEqual() throws {
        let dir = try TempDir()
        let source = try ram(dir, "src.ram", bytes: 2 << 20, random: true)
        let target = try ram(dir, "dst.ram", bytes: 2 << 20, random: false)
        let stream = dir.file("vm.vfiomig")
        let save = try CLI.run(["save", "mock:a?state=256KiB&seed=3", "--memory", "\(source)@0x100000", "-o", stream, "--json", "--quiet", "--downtime-limit", "50"])
        #expect(save.status == 0, "\(save.err)")
        try CLI.validate(save.out, against: "save")
        #expect(save.out.contains("within the limit 50 ms") || save.out.contains("round limit"), "the downtime rule decided: \(save.out.suffix(800))")
        #expect(save.out.contains("\"memory\""), "the report carries the memory part")
        let load = try CLI.run(["load", "mock:b?state=256KiB&seed=9", "--memory", "\(target)@0x100000", "-i", stream])
        #expect(load.status == 0, "\(load.err)")
        #expect(load.out.contains("memory: loaded 2.00 MiB"), "\(load.out)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: target)) == Data(contentsOf: URL(fileURLWithPath: source)))
        let verify = try CLI.run(["verify", stream])
        #expect(verify.status == 0, "\(verify.out) \(verify.err)")
        let inspect = try CLI.run(["inspect", stream])
        #expect(inspect.status == 0, "inspect reads page streams: \(inspect.out) \(inspect.err)")
        #expect(inspect.out.contains("region 0      0x100000 + 2.00 MiB"), "\(inspect.out)")
        #expect(inspect.out.contains("510 pages with data, 2 zero pages"), "\(inspect.out)")
        let json = try CLI.run(["inspect", stream, "--json"])
        #expect(json.status == 0, "\(json.err)")
        try CLI.validate(json.out, against: "inspect")
        #expect(json.out.contains("\"dataPages\" : 510"), "\(json.out.suffix(600))")
    }

    @Test func aPausedGuestsMemoryIsSentInPlaceAndLoadsEqual() throws {
        let dir = try TempDir()
        let source = try ram(dir, "src.ram", bytes: 1 << 20, random: true)
        let target = try ram(dir, "dst.ram", bytes: 1 << 20, random: false)
        let stream = dir.file("vm.vfiomig")
        let save = try CLI.run(["save", "mock:a?state=64KiB", "--memory", source, "--guest-paused", "-o", stream, "--quiet"])
        #expect(save.status == 0, "\(save.err)")
        let load = try CLI.run(["load", "mock:b?state=64KiB", "--memory", target, "-i", stream])
        #expect(load.status == 0, "\(load.err)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: target)) == Data(contentsOf: URL(fileURLWithPath: source)))
    }

    @Test func aTargetWithOtherRegionsIsRefusedBeforeAnyPage() throws {
        let dir = try TempDir()
        let source = try ram(dir, "src.ram", bytes: 1 << 20, random: true)
        let target = try ram(dir, "dst.ram", bytes: 1 << 20, random: false)
        let stream = dir.file("vm.vfiomig")
        #expect(try CLI.run(["save", "mock:a?state=64KiB", "--memory", "\(source)@0x100000", "-o", stream, "--quiet"]).status == 0)
        let load = try CLI.run(["load", "mock:b?state=64KiB", "--memory", "\(target)@0x200000", "-i", stream])
        #expect(load.status == 3, "\(load.err)")
        #expect(load.err.contains("does not match"), "\(load.err)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: target)) == Data(count: 1 << 20), "no page was written")
        let none = try CLI.run(["load", "mock:b?state=64KiB", "-i", stream])
        #expect(none.status == 3, "pages but no --memory: \(none.err)")
        #expect(none.err.contains("no target memory was given") && !none.err.contains("reset"), "refused before the target entered RESUMING: \(none.err)")
    }

    @Test func streamsWithoutChecksumsNeedTheLoadsConsent() throws {
        let dir = try TempDir()
        let source = try ram(dir, "src.ram", bytes: 1 << 20, random: true)
        let target = try ram(dir, "dst.ram", bytes: 1 << 20, random: false)
        let stream = dir.file("vm.vfiomig")
        #expect(try CLI.run(["save", "mock:a?state=64KiB", "--memory", source, "--checksum", "none", "-o", stream, "--quiet"]).status == 0)
        let refused = try CLI.run(["load", "mock:b?state=64KiB", "--memory", target, "-i", stream])
        #expect(refused.status == 3, "\(refused.err)")
        let taken = try CLI.run(["load", "mock:b?state=64KiB", "--memory", target, "--checksum", "none", "-i", stream])
        #expect(taken.status == 0, "\(taken.err)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: target)) == Data(contentsOf: URL(fileURLWithPath: source)))
        #expect(try CLI.run(["save", "mock:a?state=64KiB", "--checksum", "md5", "-o", stream]).status == 2)
    }

    @Test func theDemoMigratesMemoryWhileTheDevicesWriteIt() throws {
        let dir = try TempDir()
        let source = try ram(dir, "src.ram", bytes: 4 << 20, random: true)
        let demo = try CLI.run(["demo", "--state", "1MiB", "--devices", "2", "--memory", source])
        #expect(demo.status == 0, "\(demo.out) \(demo.err)")
        #expect(demo.out.contains("target guest memory identical"), "\(demo.out)")
        let json = try CLI.run(["demo", "--state", "256KiB", "--devices", "1", "--memory", source, "--json", "--quiet"])
        #expect(json.status == 0, "\(json.err)")
        try CLI.validate(json.out, against: "demo")
        #expect(json.out.contains("\"memoryIdentical\" : true"), "\(json.out.suffix(300))")
    }
}
