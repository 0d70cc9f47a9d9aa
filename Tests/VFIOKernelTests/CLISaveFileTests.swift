// A save refused after the header was written leaves no stream behind, and says so.
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
}
