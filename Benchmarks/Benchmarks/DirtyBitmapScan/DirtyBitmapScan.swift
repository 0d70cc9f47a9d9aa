// Walking dirty bitmaps: the runs walk (cut at 256 pages, a 1 MiB send buffer) and the
// page-by-page walk of a 4 GiB guest's bitmap (2^20 pages, 128 KiB of words) at 0, 0.1, 1, 10
// and 100 % density and clustered, and of an empty 1 TiB guest's bitmap (32 MiB of words) next
// to one sequential read of the same words. One iteration is one whole walk, so
// mallocCountTotal is allocations per walk (0 expected: the iterators allocate nothing).
// The ratios against these baselines are vfio-bench-ratios' job (section bitmap).
import BenchSupport
import Benchmark

let benchmarks: @Sendable () -> Void = {
    let noAllocation: [BenchmarkMetric: BenchmarkThresholds] = [
        .mallocCountTotal: .init(absolute: [.p0: 0, .p25: 0, .p50: 0, .p75: 0, .p90: 0, .p99: 0, .p100: 0])
    ]
    let configuration = Benchmark.Configuration(
        metrics: [.throughput, .wallClock, .mallocCountTotal], warmupIterations: 5, maxDuration: .seconds(1),
        maxIterations: 5_000, thresholds: noAllocation)

    for layout in DirtyLayout.allCases {
        let bitmap = layout.bitmap(pageCount: 1 << 20, seed: 1)
        Benchmark("runs walk, 4 GiB at 4 KiB, \(layout.rawValue) dirty", configuration: configuration) { benchmark in
            for _ in benchmark.scaledIterations { blackHole(walkRuns(bitmap, maxPages: 256)) }
        }
        Benchmark("dirty pages walk, 4 GiB at 4 KiB, \(layout.rawValue) dirty", configuration: configuration) { benchmark in
            for _ in benchmark.scaledIterations { blackHole(walkPages(bitmap)) }
        }
    }

    let empty = DirtyLayout.clean.bitmap(pageCount: 1 << 28, seed: 0)
    let words = empty.words
    Benchmark("runs walk, 1 TiB at 4 KiB (32 MiB of words), empty", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(walkRuns(empty, maxPages: 256)) }
    }
    Benchmark("sum of the words, 32 MiB (sequential read baseline)", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(sumWords(words)) }
    }
}
