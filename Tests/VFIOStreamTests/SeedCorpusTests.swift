// The fuzzer's seed corpus (tools/fuzz/corpus) is generated from the codec, so it follows
// the format. This test fails when the committed corpus is stale; run it with
// WRITE_SEED_CORPUS=1 to rewrite the files.
import Foundation
import Testing
@testable import VFIOStream

enum SeedCorpus {
    static var directory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("tools/fuzz/corpus")
    }

    /// Small streams of every shape, valid and broken (each well under the fuzzer's 4 KiB).
    static func seeds() throws -> [(name: String, bytes: [UInt8])] {
        var seeds: [(String, [UInt8])] = []
        let one = Samples.oneDeviceStream()
        seeds.append(("one-device.bin", one))
        seeds.append(("two-devices.bin", Samples.twoDeviceStream()))
        seeds.append(("v1.1-skippable.bin", try Fixtures.hex("stream-v1.1-skippable.hex")))
        seeds.append(("zero-devices.bin", build([]) { encoder, bytes in encoder.appendEndOfStream(to: &bytes) }))
        seeds.append(("three-devices.bin", build([Samples.device(0), Samples.device(1, flags: [.stopCopy, .p2p]), Samples.mdevDevice]) { encoder, bytes in
            encoder.appendPreCopyProgress(device: 0, initialBytes: 64, dirtyBytes: 3, to: &bytes)
            encoder.appendDeviceState(device: 0, phase: .preCopy, payload: [UInt8](repeating: 0xA5, count: 64), to: &bytes)
            encoder.appendDeviceState(device: 2, phase: .stopCopy, payload: [1, 2, 3], to: &bytes)
            encoder.appendDeviceState(device: 1, phase: .stopCopy, payload: [4], to: &bytes)
            encoder.appendDeviceState(device: 0, phase: .stopCopy, payload: [5, 6], to: &bytes)
            for device in [2, 0, 1] { encoder.appendEndOfDevice(device: device, to: &bytes) }
            encoder.appendEndOfStream(to: &bytes)
        }))
        seeds.append(("skippable-dirty-pages.bin", build { encoder, bytes in
            encoder.appendUncheckedRecord(
                RecordHeader(type: .dirtyPages, flags: .skippable, device: 0, payloadLength: 0, sequence: 0, offset: 0),
                payload: words(0x1000, 0x2000), to: &bytes)
            encoder.appendEndOfDevice(device: 0, to: &bytes)
            encoder.appendEndOfStream(to: &bytes)
        }))
        let headerLength = try recordOffsets(one)[0]
        seeds.append(("header-only.bin", Array(one[0..<headerLength])))
        var corrupt = one
        corrupt[headerLength + 40] ^= 0x10
        seeds.append(("corrupt-record.bin", corrupt))
        return seeds
    }
}

@Suite("Seed corpus")
struct SeedCorpusTests {
    @Test("tools/fuzz/corpus matches the seeds the codec generates")
    func corpusIsCurrent() throws {
        let seeds = try SeedCorpus.seeds()
        if ProcessInfo.processInfo.environment["WRITE_SEED_CORPUS"] == "1" {
            try FileManager.default.createDirectory(at: SeedCorpus.directory, withIntermediateDirectories: true)
            for (name, bytes) in seeds {
                try Data(bytes).write(to: SeedCorpus.directory.appendingPathComponent(name))
            }
        }
        for (name, bytes) in seeds {
            #expect(bytes.count <= 4096, "\(name) exceeds the fuzzer's max_len")
            let file = SeedCorpus.directory.appendingPathComponent(name)
            let stored = try? [UInt8](Data(contentsOf: file))
            #expect(stored == bytes, "\(name) is stale or missing; rerun with WRITE_SEED_CORPUS=1")
        }
    }
}
