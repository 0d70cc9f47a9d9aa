// swift-tools-version:6.1
//
// libFuzzer targets, kept out of the main package so the `-sanitize=fuzzer` build never
// touches it: the stream decoder alone, and the receiver's whole input path (control
// connection, proposal, data channel headers, records, reassembly, page records) into
// emulated devices and guest memory.
// Build and run (README.md; docs/stream-format.md "Fuzzing"; docs/security.md):
//   swift build -c release -Xswiftc -sanitize=fuzzer,address
//   .build/release/StreamDecoderFuzzer corpus-work corpus -max_total_time=600
//   ASAN_OPTIONS=detect_leaks=0 .build/release/ReceiverFuzzer receiver-work corpus-receiver -max_total_time=600
import PackageDescription

let package = Package(
    name: "vfio-stream-fuzz",
    dependencies: [.package(name: "vfio-migration", path: "../..")],
    targets: [
        .target(name: "CLibFuzzer"),
        .target(name: "FuzzSupport", dependencies: [.product(name: "VFIOStream", package: "vfio-migration")]),
        .executableTarget(
            name: "StreamDecoderFuzzer",
            dependencies: ["CLibFuzzer", "FuzzSupport", .product(name: "VFIOStream", package: "vfio-migration")]
        ),
        .executableTarget(
            name: "ReceiverFuzzer",
            dependencies: [
                "CLibFuzzer", "FuzzSupport",
                .product(name: "VFIOMigration", package: "vfio-migration"),
                .product(name: "VFIOMockDevices", package: "vfio-migration"),
            ]
        ),
    ]
)
