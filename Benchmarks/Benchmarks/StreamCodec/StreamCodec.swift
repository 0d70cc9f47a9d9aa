// The stream codec per chunk, next to its baselines, at the engine's chunk size (1 MiB) and at
// 64 KiB: framing (header + CRC32C, in place), CRC32C alone, memcpy of the same bytes, a bare
// read(2) of them from the page cache, and decoding a record. One iteration is one chunk, so
// `throughput` is chunks per second and mallocCountTotal is allocations per chunk (0 expected:
// the data path allocates nothing per chunk).
import BenchSupport
import Benchmark
import VFIOStream

let benchmarks: @Sendable () -> Void = {
    let metrics: [BenchmarkMetric] = [.throughput, .wallClock, .mallocCountTotal]
    // A chunk of the steady state allocates nothing. The run prints Malloc (total) for every
    // percentile (all 0); in a baseline comparison (`baseline check`) any allocation above
    // the baseline's fails.
    let noAllocation: [BenchmarkMetric: BenchmarkThresholds] = [
        .mallocCountTotal: .init(absolute: [.p0: 0, .p25: 0, .p50: 0, .p75: 0, .p90: 0, .p99: 0, .p100: 0])
    ]
    let configuration = Benchmark.Configuration(
        metrics: metrics, warmupIterations: 20, maxDuration: .seconds(1), maxIterations: 10_000, thresholds: noAllocation)

    for (label, size) in [("1 MiB", 1 << 20), ("64 KiB", 64 << 10)] {
        let fixture = CodecFixture(payloadLength: size)
        let file = PageCacheFile(copying: fixture.source, fixture.payload)

        Benchmark("frame \(label) (header + CRC32C)", configuration: configuration) { benchmark in
            for _ in benchmark.scaledIterations { blackHole(fixture.frame()) }
        }
        Benchmark("CRC32C \(label)", configuration: configuration) { benchmark in
            for _ in benchmark.scaledIterations { blackHole(fixture.crc()) }
        }
        Benchmark("memcpy \(label)", configuration: configuration) { benchmark in
            for _ in benchmark.scaledIterations { fixture.copy() }
        }
        Benchmark("bare read \(label) (pread, page cache)", configuration: configuration) { benchmark in
            for _ in benchmark.scaledIterations { blackHole(file.read(into: fixture.buffer, at: fixture.payload.lowerBound)) }
        }
        Benchmark("decode \(label) (header + payload, CRC32C)", configuration: configuration) { benchmark in
            // A new decoded stream starts only when the sealed records run out; that setup
            // allocates, so the measurement starts after it.
            fixture.prepareDecode(benchmark.scaledIterations.count)
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations { blackHole(fixture.decode()) }
        }
    }
}
