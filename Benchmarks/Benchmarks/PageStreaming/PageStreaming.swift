// Page streaming of 64 MiB of pseudo-random 4 KiB pages at 100 % density: pages records
// framed and CRC32C-checksummed in place, through the live-page copy, and without record
// checksums, next to a memcpy of the same pages into a reused 1 MiB buffer. One iteration is
// the whole 64 MiB, so `throughput` is regions per second. The ratios, side by side in one
// process, come from vfio-bench-ratios (`--only pages`).
import BenchSupport
import Benchmark
import VFIOBuffers
import VFIOCore
import VFIOMigration
import VFIOStream

let benchmarks: @Sendable () -> Void = {
    let configuration = Benchmark.Configuration(
        metrics: [.throughput, .wallClock, .mallocCountTotal], warmupIterations: 2, maxDuration: .seconds(2), maxIterations: 200)
    let bytes = 64 << 20
    let buffer = IOBuffer(capacity: bytes)
    fillPseudoRandom(buffer, 0..<bytes, seed: 7)
    guard let region = try? GuestMemoryRegion(iova: 0, length: UInt64(bytes), buffer: buffer, writable: false, name: "bench"),
          let memory = try? GuestMemory([region]) else { fatalError("bench memory") }
    let all = [DirtyRun(firstPage: 0, pageCount: region.pageCount)]
    let target = IOBuffer(capacity: 1 << 20)

    Benchmark("memcpy 64 MiB into a reused 1 MiB buffer", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations {
            var offset = 0
            while offset < bytes {
                target.copy(from: buffer, offset..<offset + (1 << 20), to: 0)
                offset += 1 << 20
            }
        }
    }
    for (name, checksums, copy) in [("CRC32C, in place", true, false), ("CRC32C, live-page copy", true, true), ("no record checksums", false, false)] {
        let header = StreamHeader(
            flags: checksums ? 0 : HeaderFlags.noRecordChecksums.rawValue, creationTimeNanoseconds: 0, maxPayload: 1 << 20,
            devices: [], regions: memory.descriptors)
        Benchmark("pages 64 MiB, \(name)", configuration: configuration) { benchmark in
            for _ in benchmark.scaledIterations {
                guard let output = try? StreamOutput(header: header, to: DroppingSink()) else { fatalError("stream output") }
                output.copiesLivePages = copy
                do { try output.writePages(region: 0, runs: all, phase: copy ? .preCopy : .stopCopy, round: 1, of: memory) } catch { fatalError("\(error)") }
            }
        }
    }
}
