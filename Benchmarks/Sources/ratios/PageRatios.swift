// Section "pages": page streaming at 100 % density against a single-thread memcpy of the same
// pages into a reused 1 MiB buffer, side by side. The stream is framed and CRC32C-checksummed
// (the fused zero scan + CRC), into a sink that drops the bytes, so only the engine's work is
// compared with the copy: in place (final pages, or a paused guest), through the copy live
// pre-copy pages take, and without record checksums (the zero scan alone).
import BenchSupport
import Foundation
import VFIOBuffers
import VFIOCore
import VFIOMigration
import VFIOStream

enum PageVariant: String, CaseIterable {
    case memcpy = "memcpy into a reused 1 MiB buffer"
    case inPlace = "pages, CRC32C, in place"
    case copied = "pages, CRC32C, through the live-page copy"
    case noChecksum = "pages, no record checksums"
}

struct PageResult {
    var median: [PageVariant: Double] // bytes per second
    var ratio: [PageVariant: Double] // over memcpy, median of per-repetition ratios
}

func measurePages(mib: Int, repetitions: Int) throws -> PageResult {
    let bytes = mib << 20
    let buffer = IOBuffer(capacity: bytes)
    fillPseudoRandom(buffer, 0..<bytes, seed: 42)
    let region = try GuestMemoryRegion(iova: 0x1_0000_0000, length: UInt64(bytes), buffer: buffer, writable: false, name: "bench ram")
    let memory = try GuestMemory([region])
    let target = IOBuffer(capacity: 1 << 20)
    let all = [DirtyRun(firstPage: 0, pageCount: region.pageCount)]

    func run(_ variant: PageVariant) throws -> Double {
        let clock = ContinuousClock()
        switch variant {
        case .memcpy:
            let start = clock.now
            var offset = 0
            while offset < bytes {
                target.copy(from: buffer, offset..<offset + (1 << 20), to: 0)
                offset += 1 << 20
            }
            return Double(bytes) / (clock.now - start).seconds
        case .inPlace, .copied, .noChecksum:
            let header = StreamHeader(
                flags: variant == .noChecksum ? HeaderFlags.noRecordChecksums.rawValue : 0, creationTimeNanoseconds: 0,
                maxPayload: 1 << 20, devices: [], regions: memory.descriptors)
            let sink = DroppingSink()
            let output = try StreamOutput(header: header, to: sink)
            output.copiesLivePages = variant == .copied
            let start = clock.now
            try output.writePages(region: 0, runs: all, phase: variant == .copied ? .preCopy : .stopCopy, round: 1, of: memory)
            let took = clock.now - start
            guard output.pageCounts.dataPages == UInt64(region.pageCount) else { fail("pages benchmark: \(output.pageCounts)") }
            return Double(bytes) / took.seconds
        }
    }

    var samples: [PageVariant: [Double]] = [:]
    var ratios: [PageVariant: [Double]] = [:]
    for variant in PageVariant.allCases { _ = try run(variant) } // warm-up: fault everything in
    for repetition in 0..<repetitions {
        var this: [PageVariant: Double] = [:]
        for variant in order(PageVariant.allCases, repetition: repetition) { this[variant] = try run(variant) }
        for (variant, rate) in this {
            samples[variant, default: []].append(rate)
            ratios[variant, default: []].append(rate / this[.memcpy]!)
        }
    }
    let result = PageResult(median: samples.mapValues(median), ratio: ratios.mapValues(median))
    print("Page streaming at 100 % density, \(mib) MiB of pseudo-random pages (\(repetitions) repetitions, interleaved; medians)")
    for variant in PageVariant.allCases {
        print("  \(variant.rawValue.rightPad(44)) \(format(result.median[variant]! / 1e9)) GB/s   ratio to memcpy \(format(result.ratio[variant]!, 3))")
    }
    print("")
    return result
}
