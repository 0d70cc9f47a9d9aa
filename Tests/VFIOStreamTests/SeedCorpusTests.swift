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

    /// The fuzzer's -max_len: room for a stream with two 4 KiB data pages.
    static let maxLength = 12288

    /// Small streams of every shape, valid and broken (each within the fuzzer's max_len).
    static func seeds() throws -> [(name: String, bytes: [UInt8])] {
        var seeds: [(String, [UInt8])] = []
        let one = try Samples.oneDeviceStream()
        seeds.append(("one-device.bin", one))
        seeds.append(("two-devices.bin", try Samples.twoDeviceStream()))
        seeds.append(("v1.1-skippable.bin", try Fixtures.hex("stream-v1.1-skippable.hex")))
        seeds.append(("zero-devices.bin", try build([]) { encoder, bytes in try encoder.appendEndOfStream(to: &bytes) }))
        seeds.append(("three-devices.bin", try build([Samples.device(0), Samples.device(1, flags: [.stopCopy, .p2p]), Samples.mdevDevice]) { encoder, bytes in
            try encoder.appendPreCopyProgress(device: 0, initialBytes: 64, dirtyBytes: 3, to: &bytes)
            try encoder.appendDeviceState(device: 0, phase: .preCopy, payload: [UInt8](repeating: 0xA5, count: 64), to: &bytes)
            try encoder.appendDeviceState(device: 2, phase: .stopCopy, payload: [1, 2, 3], to: &bytes)
            try encoder.appendDeviceState(device: 1, phase: .stopCopy, payload: [4], to: &bytes)
            try encoder.appendDeviceState(device: 0, phase: .stopCopy, payload: [5, 6], to: &bytes)
            for device in [2, 0, 1] { try encoder.appendEndOfDevice(device: device, to: &bytes) }
            try encoder.appendEndOfStream(to: &bytes)
        }))
        let headerLength = try recordOffsets(one)[0]
        seeds.append(("header-only.bin", Array(one[0..<headerLength])))
        var corrupt = one
        corrupt[headerLength + 40] ^= 0x10
        seeds.append(("corrupt-record.bin", corrupt))
        // 1.1: digests, pages against a region table, parallel channels, no record checksums.
        seeds.append(("v1.1-one-device.bin", try Samples.oneDeviceStream11()))
        seeds.append(("v1.1-pages.bin", try Samples.pagesStream()))
        seeds.append(("v1.1-channel0.bin", try Samples.channelStream(0)))
        seeds.append(("v1.1-channel1.bin", try Samples.channelStream(1)))
        seeds.append(("v1.1-no-record-checksums.bin", try Samples.noChecksumStream()))
        let regions = (0..<4).map { MemoryRegionDescriptor(start: UInt64($0) << 32, length: 256 * 4096, pageSize: 4096) }
        seeds.append(("v1.1-zero-pages.bin", try build(Samples.header11([Samples.mdevDevice], regions: regions)) { encoder, bytes in
            for region in 0..<4 {
                let runs = (0..<8).map { PageRun(firstPage: UInt64($0 * 32 + region), pageCount: UInt32(1 + $0), isZero: true) }
                try encoder.appendPages(region: region, phase: region < 2 ? .preCopy : .stopCopy, round: UInt64(region), runs: runs, data: [], to: &bytes)
            }
            try encoder.appendDeviceState(device: 0, phase: .stopCopy, payload: [7, 7], to: &bytes)
            try encoder.appendDeviceDigest(device: 0, to: &bytes)
            try encoder.appendEndOfDevice(device: 0, to: &bytes)
            try encoder.appendEndOfStream(to: &bytes)
        }))
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
            // Seeds that are no longer generated go, so the corpus is exactly the seeds.
            let names = Set(seeds.map(\.name))
            for file in try FileManager.default.contentsOfDirectory(atPath: SeedCorpus.directory.path) where !names.contains(file) {
                try FileManager.default.removeItem(at: SeedCorpus.directory.appendingPathComponent(file))
            }
            for (name, bytes) in seeds {
                try Data(bytes).write(to: SeedCorpus.directory.appendingPathComponent(name))
            }
        }
        let stored = try FileManager.default.contentsOfDirectory(atPath: SeedCorpus.directory.path).sorted()
        #expect(stored == seeds.map(\.name).sorted(), "the corpus holds files the seeds do not; rerun with WRITE_SEED_CORPUS=1")
        for (name, bytes) in seeds {
            #expect(bytes.count <= SeedCorpus.maxLength, "\(name) exceeds the fuzzer's max_len")
            let file = SeedCorpus.directory.appendingPathComponent(name)
            let stored = try? [UInt8](Data(contentsOf: file))
            #expect(stored.map { $0 == bytes } == true, "\(name) is stale or missing; rerun with WRITE_SEED_CORPUS=1")
        }
    }
}
