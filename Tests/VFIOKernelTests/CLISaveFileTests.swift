// A save refused after the header was written leaves no stream behind, and says so; a chunk
// size no reader would take is refused up front; with the stream on standard output, a JSON
// error document goes to standard error, not into the stream; sizes in every spelling.
import Foundation
import Testing

@Suite struct CLISaveFileTests {
    @Test func aSaveRefusedByAnIncompatibleTargetLeavesNoFile() throws {
        let dir = try TempDir()
        let file = dir.file("refused.vfiomig")
        let result = try CLI.run(["save", "mock:a?state=2MiB", "-o", file, "--target", "mock:b?state=2MiB&compat=other"])
        #expect(result.status == 3, "\(result.err)")
        #expect(dir.entries.isEmpty, "left behind: \(dir.entries)")
        #expect(result.err.contains("the incomplete stream was removed; \(file) was not written"), "\(result.err)")
        #expect(result.err.contains("mock:a returned to RUNNING"), "\(result.err)")
    }

    @Test func aSaveOnAFullDiskFailsWithENOSPCAndLeavesNothing() throws {
        let before = (try? FileManager.default.contentsOfDirectory(atPath: "/dev").filter { $0.contains("partial") }) ?? []
        let result = try CLI.run(["save", "mock:a?state=2MiB", "-o", "/dev/full", "--json"])
        #expect(result.status == 1, "\(result.err)")
        #expect(result.err.contains("/dev/full") && result.err.contains("ENOSPC"), "\(result.err)")
        #expect(result.err.contains("mock:a left in RUNNING") || result.err.contains("mock:a returned to RUNNING"), "\(result.err)")
        try CLI.validate(result.out, against: "error")
        let after = (try? FileManager.default.contentsOfDirectory(atPath: "/dev").filter { $0.contains("partial") }) ?? []
        #expect(after == before)
    }

    @Test func aCompleteSaveReplacesTheFileOnlyAtTheEnd() throws {
        let dir = try TempDir()
        let file = dir.file("kept.vfiomig")
        try Data("an older stream".utf8).write(to: URL(fileURLWithPath: file))
        // Refused: the old file stays as it was.
        _ = try CLI.run(["save", "mock:a?state=1MiB", "-o", file, "--target", "mock:b?compat=other"])
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "an older stream")
        #expect(dir.entries == ["kept.vfiomig"], "\(dir.entries)")
        let done = try CLI.run(["save", "mock:a?state=1MiB", "-o", file])
        #expect(done.status == 0, "\(done.err)")
        #expect(try CLI.run(["verify", file]).status == 0)
        #expect(dir.entries == ["kept.vfiomig"], "\(dir.entries)")
    }

    @Test func aChunkSizeNoReaderTakesIsAUsageErrorAndSizesTakeEverySpelling() throws {
        let dir = try TempDir()
        let big = try CLI.run(["save", "mock:a?state=1MiB", "-o", dir.file("big.vfiomig"), "--chunk-size", "32MiB"])
        #expect(big.status == 2 && big.err.contains("--chunk-size takes 4KiB to 16.00 MiB"), "\(big.err)")
        #expect(dir.entries.isEmpty)
        for spelling in ["0x10000", "64kib", "64K", "65536"] {
            let file = dir.file("s-\(spelling).vfiomig")
            let done = try CLI.run(["save", "mock:a?state=256KiB", "-o", file, "--chunk-size", spelling, "--quiet"])
            #expect(done.status == 0, "\(spelling): \(done.err)")
            let inspect = try CLI.run(["inspect", file, "--json"])
            #expect(inspect.out.contains("\"chunks\" : 5"), "\(spelling): 256 KiB and the mock's 192-byte trailer in 64 KiB chunks")
        }
        let bad = try CLI.run(["save", "mock:a?state=256KiB", "-o", dir.file("x.vfiomig"), "--chunk-size", "12q"])
        #expect(bad.status == 2 && bad.err.contains("bad size '12q'"), "\(bad.err)")
    }

    @Test func withTheStreamOnStandardOutputTheErrorDocumentGoesToStandardError() throws {
        let result = try CLI.run(["save", "mock:a?state=256KiB", "-o", "-", "--target", "mock:b?compat=other", "--json"])
        #expect(result.status == 3, "\(result.err)")
        #expect(!result.out.contains("\"error\""), "the stream's output holds no error document")
        let document = result.err.split(separator: "\n", maxSplits: 1).dropFirst().joined()
        try CLI.validate(String(document), against: "error")
    }

    @Test func aStreamWithoutRecordChecksumsIsVerifiedAndInspectedForWhatItHas() throws {
        let dir = try TempDir()
        let file = dir.file("plain.vfiomig")
        #expect(try CLI.run(["save", "mock:a?state=256KiB", "-o", file, "--checksum", "none", "--quiet"]).status == 0)
        let verify = try CLI.run(["verify", file])
        #expect(verify.status == 0 && verify.out.contains("no record checksums in this stream"), "\(verify.out) \(verify.err)")
        let json = try CLI.run(["verify", file, "--json"])
        try CLI.validate(json.out, against: "verify")
        #expect(json.out.contains("\"recordChecksums\" : false"))
        let inspect = try CLI.run(["inspect", file])
        #expect(inspect.status == 0 && inspect.out.contains("none in this stream (NO_RECORD_CHECKSUMS)"), "\(inspect.out)")
        let withSums = dir.file("sums.vfiomig")
        #expect(try CLI.run(["save", "mock:a?state=256KiB", "-o", withSums, "--quiet"]).status == 0)
        #expect(try CLI.run(["verify", withSums, "--json"]).out.contains("\"recordChecksums\" : true"))
    }
}
