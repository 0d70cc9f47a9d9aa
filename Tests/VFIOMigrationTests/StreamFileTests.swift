import Foundation
import Testing
import VFIOCore
import VFIOMigration
import VFIOMockDevices

@Suite struct StreamFileTests {
    private func temporary(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("vfio-\(name)-\(UUID().uuidString).vfiomig").path
    }

    @Test func aFullDiskFailsTheSaveAndTheSourceRunsAgain() throws {
        let env = DeviceEnvironment.withMockDevices()
        let source = try env.open("mock:src?state=256KiB")
        do {
            try Migration.save([source], to: "/dev/full", options: SaveOptions(chunkSize: 64 << 10))
            Issue.record("a save to a full disk succeeded")
        } catch {
            #expect(error.errno == .noSpace, "\(error)")
            #expect(error.description.contains("/dev/full"), "\(error)")
            #expect(error.description.contains("RUNNING"), "the error says where the source was left: \(error)")
        }
        #expect(try source.currentState() == .running)
    }

    /// The stream cannot be moved into place (a directory took its name mid-save): the save
    /// fails naming rename, the directory is left as it was, and the stopped source runs again.
    @Test func aStreamThatCannotBeMovedIntoPlaceReturnsTheSourceToRunning() throws {
        let env = DeviceEnvironment.withMockDevices()
        let source = try env.open("mock:src?state=256KiB")
        let path = temporary("blocked")
        defer { try? FileManager.default.removeItem(atPath: path) }
        var rounds = 0
        let error = #expect(throws: VFIOError.self) {
            try Migration.save([source], to: path, options: SaveOptions(chunkSize: 64 << 10), leaving: .stopped, afterRound: { _ in
                rounds += 1
                try? FileManager.default.createDirectory(atPath: path + "/kept", withIntermediateDirectories: true)
            })
        }
        #expect(rounds > 0, "the source pre-copied")
        #expect(error?.operation == "rename" && error?.errno == .isDirectory, "\(String(describing: error))")
        #expect(error?.outcomes.map(\.finalState) == [.inState(.running)], "\(String(describing: error))")
        #expect(try source.currentState() == .running)
        #expect(FileManager.default.fileExists(atPath: path + "/kept"), "what held the name is untouched")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: FileManager.default.temporaryDirectory.path)
            .filter { $0.hasPrefix("." + URL(fileURLWithPath: path).lastPathComponent + ".partial") }
        #expect(leftovers.isEmpty, "the temporary stream was removed: \(leftovers)")
    }

    @Test func everyByteFlipIsCaughtWithItsOffset() throws {
        let env = DeviceEnvironment.withMockDevices()
        let path = temporary("flip")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Migration.save([try env.open("mock:s?state=8KiB&flags=stop-copy")], to: path, options: SaveOptions(chunkSize: 4096))
        let original = try Data(contentsOf: URL(fileURLWithPath: path))
        for position in stride(from: 0, to: original.count, by: max(1, original.count / 97)) {
            var bytes = original
            bytes[position] ^= 0x01
            try bytes.write(to: URL(fileURLWithPath: path))
            do {
                _ = try Migration.verify(path)
                Issue.record("flip at \(position) not detected")
            } catch {
                #expect(error.code == .streamCorrupt || error.code == .streamIncompatible, "\(error)")
            }
        }
    }

    @Test func aTruncatedStreamAbortsTheLoadAndResetsTheTarget() throws {
        let env = DeviceEnvironment.withMockDevices()
        let path = temporary("trunc")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Migration.save([try env.open("mock:s?state=256KiB&flags=stop-copy")], to: path)
        let whole = try Data(contentsOf: URL(fileURLWithPath: path))
        try whole.prefix(whole.count * 2 / 3).write(to: URL(fileURLWithPath: path))
        let target = try env.open("mock:t?state=256KiB&flags=stop-copy")
        do {
            try Migration.load([target], from: path)
            Issue.record("a truncated stream loaded")
        } catch {
            #expect(error.code == .streamCorrupt)
            #expect(error.description.contains("reset to RUNNING"), "\(error)")
        }
        #expect(try target.currentState() == .running)
    }
}
