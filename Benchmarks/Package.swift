// swift-tools-version:6.1
//
// Benchmarks for vfio-migration, kept in their own package so the root package (and CI's
// `swift build`) never needs the benchmark framework. Seven package-benchmark suites
// (`swift package benchmark`) and one plain executable that measures the roadmap's ratios
// side by side in one process (`swift run -c release vfio-bench-ratios`). See docs/benchmarks.md.
// `vfio-bench-mock-source` compares the emulator's own data fds with a plain memfd read
// (docs/mock.md, "The fast source").
import PackageDescription

let engine: [Target.Dependency] = [
    .product(name: "VFIOBuffers", package: "vfio-migration"),
    .product(name: "VFIOStream", package: "vfio-migration"),
    .product(name: "VFIOSyscalls", package: "vfio-migration"),
    .product(name: "VFIOCore", package: "vfio-migration"),
    .product(name: "VFIOMigration", package: "vfio-migration"),
    .product(name: "VFIOMockDevices", package: "vfio-migration"),
]

let package = Package(
    name: "vfio-migration-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "vfio-migration", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        // What every measurement shares: the codec fixture, the sinks, the mock save, RSS.
        .target(name: "BenchSupport", dependencies: engine),

        .executableTarget(
            name: "vfio-bench-ratios",
            dependencies: ["BenchSupport"] + engine,
            path: "Sources/ratios"
        ),

        .executableTarget(
            name: "vfio-bench-mock-source",
            dependencies: [
                .product(name: "VFIOBuffers", package: "vfio-migration"),
                .product(name: "VFIOCore", package: "vfio-migration"),
                .product(name: "VFIOKernel", package: "vfio-migration"),
                .product(name: "VFIOMock", package: "vfio-migration"),
                .product(name: "VFIOMockDevices", package: "vfio-migration"),
            ],
            path: "Sources/mock-source"
        ),

        .executableTarget(
            name: "StreamCodec",
            dependencies: ["BenchSupport", .product(name: "Benchmark", package: "benchmark")] + engine,
            path: "Benchmarks/StreamCodec",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "CRC32CPaths",
            dependencies: ["BenchSupport", .product(name: "Benchmark", package: "benchmark")] + engine,
            path: "Benchmarks/CRC32CPaths",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "MockMigration",
            dependencies: ["BenchSupport", .product(name: "Benchmark", package: "benchmark")] + engine,
            path: "Benchmarks/MockMigration",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "PageStreaming",
            dependencies: ["BenchSupport", .product(name: "Benchmark", package: "benchmark")] + engine,
            path: "Benchmarks/PageStreaming",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "DirtyBitmapScan",
            dependencies: ["BenchSupport", .product(name: "Benchmark", package: "benchmark")] + engine,
            path: "Benchmarks/DirtyBitmapScan",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "Transfer",
            dependencies: [.product(name: "Benchmark", package: "benchmark")] + engine,
            path: "Benchmarks/Transfer",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "Transitions",
            dependencies: [.product(name: "Benchmark", package: "benchmark")] + engine,
            path: "Benchmarks/Transitions",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
