// swift-tools-version:6.1
//
// The soak: back-to-back emulated live migrations in one process, with random sizes, flags,
// device and channel counts, transports and faults, checked after each run. Not part of the
// default test run; tools/soak.sh builds and runs it (at nice 19).
import PackageDescription

let package = Package(
    name: "vfio-migration-soak",
    dependencies: [.package(name: "vfio-migration", path: "../..")],
    targets: [
        .executableTarget(
            name: "Soak",
            dependencies: [
                .product(name: "VFIOMigration", package: "vfio-migration"),
                .product(name: "VFIOMockDevices", package: "vfio-migration"),
                .product(name: "VFIOMock", package: "vfio-migration"),
            ]
        ),
    ]
)
