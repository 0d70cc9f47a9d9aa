// CRC32C on each implementation this machine runs (table, SSE4.2, PCLMULQDQ, VPCLMULQDQ) at
// 4 KiB, 64 KiB, 1 MiB and 16 MiB, and the zero-page scans of page streaming over a 1 MiB
// region of 4 KiB pages next to a plain CRC and a memcpy of the same bytes. One iteration is
// one buffer (one region), so `throughput` is buffers per second. For ratios measured side by
// side, run vfio-bench-ratios (`--only crc`).
import BenchSupport
import Benchmark
import VFIOStream

let benchmarks: @Sendable () -> Void = {
    let configuration = Benchmark.Configuration(
        metrics: [.throughput, .wallClock, .mallocCountTotal], warmupIterations: 5, maxDuration: .seconds(1),
        maxIterations: 100_000)

    for (label, size) in [("4 KiB", 4 << 10), ("64 KiB", 64 << 10), ("1 MiB", 1 << 20), ("16 MiB", 16 << 20)] {
        let fixture = CRCFixture(size: size)
        for implementation in CRC32C.available {
            Benchmark("CRC32C \(implementation) \(label)", configuration: configuration) { benchmark in
                for _ in benchmark.scaledIterations { blackHole(fixture.crc(implementation)) }
            }
        }
    }

    for mix in PageMix.allCases {
        let fixture = PageFixture(mix: mix, bytes: 1 << 20)
        let operations: [(name: String, run: () -> Void)] = [
            ("fused scan (CRC of non-zero pages + zero bitmap)", { blackHole(fixture.fusedScan()) }),
            ("find zero pages", { blackHole(fixture.findZeroPages()) }),
            ("plain CRC32C of every page", { blackHole(fixture.plainCRC()) }),
            ("memcpy", { fixture.copy() }),
        ]
        for operation in operations {
            Benchmark("pages 1 MiB \(mix.rawValue): \(operation.name)", configuration: configuration) { benchmark in
                for _ in benchmark.scaledIterations { operation.run() }
            }
        }
    }
}
