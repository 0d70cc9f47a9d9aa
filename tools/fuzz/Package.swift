// swift-tools-version:6.1
//
// libFuzzer target for the stream decoder, kept out of the main package so the
// `-sanitize=fuzzer` build never touches it. Build and run (see docs/stream-format.md,
// "Fuzzing"):
//   swift build -c release -Xswiftc -sanitize=fuzzer,address
//   .build/release/StreamDecoderFuzzer corpus-work corpus -max_total_time=600
import PackageDescription

let package = Package(
    name: "vfio-stream-fuzz",
    dependencies: [.package(name: "vfio-migration", path: "../..")],
    targets: [
        .target(name: "CLibFuzzer"),
        .executableTarget(
            name: "StreamDecoderFuzzer",
            dependencies: ["CLibFuzzer", .product(name: "VFIOStream", package: "vfio-migration")]
        ),
    ]
)
