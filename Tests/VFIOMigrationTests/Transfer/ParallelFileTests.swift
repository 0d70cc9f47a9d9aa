// A stream saved over several files (one channel each) and loaded back from them in any
// order: the same reassembly as over connections, with files and no control protocol.
import Foundation
import Testing
import VFIOMigration
import VFIOMockDevices
import VFIOMock

@Suite struct ParallelFileTests {
    private let env = DeviceEnvironment.withMockDevices()

    private func save(_ sources: [VFIODevice], channels: Int, in dir: URL) throws -> [String] {
        let paths = (0..<channels).map { dir.appendingPathComponent("ch\($0).vfiomig").path }
        let sinks: [FileChannel] = try paths.map { try FileChannel.creating($0) }
        try Migration.save(sources, to: sinks, options: .test, pipeline: PipelineOptions(bufferSize: 2 << 20, lockMemory: false))
        for sink in sinks { try sink.commit() }
        return paths
    }

    private func scratch() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("parallel-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func threeFilesLoadedInAnyOrder() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let sources = try [env.open("mock:a?state=6MiB&flags=stop-copy,p2p&seed=1"), env.open("mock:b?state=1MiB&flags=stop-copy,p2p&seed=2")]
        let paths = try save(sources, channels: 3, in: dir)
        let targets = try [env.open("mock:c?state=6MiB&flags=stop-copy,p2p&seed=1"), env.open("mock:d?state=1MiB&flags=stop-copy,p2p&seed=2")]
        let result = try Migration.load(targets, from: try paths.reversed().map { try FileChannel.reading($0) }, leaving: .running)
        #expect(result.header.channel?.count == 3)
        for (s, t) in zip(sources, targets) { #expect(s.mock!.stateDigest == t.mock!.stateDigest) }
        // Each file on its own is a valid channel of the stream.
        for path in paths { _ = try Migration.verify(path) }
    }

    @Test func aMissingChannelIsRefusedBeforeAnyDeviceIsTouched() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let paths = try save([try env.open("mock:a?state=2MiB&flags=stop-copy")], channels: 3, in: dir)
        let target = try env.open("mock:b?state=2MiB&flags=stop-copy")
        #expect {
            try Migration.load([target], from: try paths.dropLast().map { try FileChannel.reading($0) })
        } throws: { error in
            (error as? VFIOError)?.code == .streamIncompatible && "\(error)".contains("3 channel(s), 2 arrived")
        }
        #expect(target.mock!.arcHistory.isEmpty)
    }

    @Test func aCorruptChannelFailsTheLoadAndResetsTheTarget() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = try env.open("mock:a?state=6MiB&flags=stop-copy")
        let paths = try save([source], channels: 3, in: dir)
        // A payload byte in the middle of channel 1.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: paths[1]))
        bytes[bytes.count / 2] ^= 0x40
        try bytes.write(to: URL(fileURLWithPath: paths[1]))
        let target = try env.open("mock:b?state=6MiB&flags=stop-copy")
        let sources: [any ByteSource] = try paths.map { try FileChannel.reading($0) }
        do throws(VFIOError) {
            try Migration.load([target], from: sources)
            Issue.record("a corrupt channel loaded")
        } catch {
            #expect(error.code == .streamCorrupt, "\(error)")
            #expect(error.outcomes.map(\.recovery) == [.reset], "\(error)")
        }
        #expect(try target.currentState() == .running)
    }

    @Test func channelsOfTwoDifferentSavesDoNotMix() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let first = try save([try env.open("mock:a?state=2MiB&flags=stop-copy")], channels: 2, in: dir)
        let other = dir.appendingPathComponent("other")
        try FileManager.default.createDirectory(at: other, withIntermediateDirectories: true)
        let second = try save([try env.open("mock:a?state=2MiB&flags=stop-copy")], channels: 2, in: other)
        let target = try env.open("mock:b?state=2MiB&flags=stop-copy")
        #expect {
            try Migration.load([target], from: [try FileChannel.reading(first[0]), try FileChannel.reading(second[1])])
        } throws: { error in "\(error)".contains("migration id") }
        #expect(target.mock!.arcHistory.isEmpty)
    }
}
