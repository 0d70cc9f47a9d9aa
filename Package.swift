// swift-tools-version:6.1
//
// vfio-migration: a userspace VFIO live-migration data-path engine.
//
// Layers (a module imports only modules below it; tools/check-layers.sh enforces this):
//   L0  CVFIO (our uAPI definitions)  CNuma (libnuma)  CCRC32C (hardware CRC32C)
//       COpenSSL (OpenSSL 3, the transport's TLS)
//   L1  VFIOBuffers (aligned I/O buffers)  VFIOStream (pure stream codec)
//       VFIOSyscalls (the only libc/ioctl caller; typed fd owners; TCP and TLS sockets)
//   L2  VFIOCore (state machine, device driver, sessions, policies; no libc)
//   L3  VFIOKernel (kernel backend over VFIOSyscalls)  VFIOMock (a VFIO kernel emulator)
//   L4  VFIOMigration (device specs, capture, replay, compatibility; what the CLI calls)
//   L5  tools/vfio-migrate (thin CLI)
import PackageDescription

let package = Package(
    name: "vfio-migration",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "VFIOBuffers", targets: ["VFIOBuffers"]),
        .library(name: "VFIOStream", targets: ["VFIOStream"]),
        .library(name: "VFIOSyscalls", targets: ["VFIOSyscalls"]),
        .library(name: "VFIOCore", targets: ["VFIOCore"]),
        .library(name: "VFIOKernel", targets: ["VFIOKernel"]),
        .library(name: "VFIOMock", targets: ["VFIOMock"]),
        .library(name: "VFIOMigration", targets: ["VFIOMigration"]),
        .library(name: "VFIOMockDevices", targets: ["VFIOMockDevices"]),
        .executable(name: "vfio-migrate", targets: ["vfio-migrate"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // The CLI's logging (levels, stderr); the libraries do not log.
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // Documentation only (`swift package generate-documentation`); nothing links it.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // L0
        .target(name: "CVFIO"),
        .systemLibrary(
            name: "CNuma",
            pkgConfig: "numa",
            providers: [.apt(["libnuma-dev"])]
        ),
        .target(name: "CCRC32C"),
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),

        // L1
        .target(name: "VFIOBuffers"),
        .target(name: "VFIOStream", dependencies: ["CCRC32C", "VFIOBuffers"]),
        .target(
            name: "VFIOSyscalls",
            dependencies: [
                "CVFIO", "CNuma", "COpenSSL", "VFIOBuffers",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),

        // L2
        .target(
            name: "VFIOCore",
            dependencies: [
                "VFIOStream", "VFIOBuffers",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),

        // L3
        .target(name: "VFIOKernel", dependencies: ["VFIOCore", "VFIOSyscalls", "VFIOBuffers"]),
        .target(name: "VFIOMock", dependencies: ["VFIOCore", "VFIOSyscalls", "VFIOBuffers", "VFIOStream"]),

        // L4
        .target(
            name: "VFIOMigration",
            dependencies: ["VFIOCore", "VFIOKernel", "VFIOStream", "VFIOSyscalls", "VFIOBuffers"]
        ),
        // The emulator's `mock:` devices as a device provider, for the CLI and for test authors;
        // nothing a VMM links needs it.
        .target(name: "VFIOMockDevices", dependencies: ["VFIOMigration", "VFIOKernel", "VFIOMock", "VFIOCore", "VFIOStream"]),

        // L5
        .executableTarget(
            name: "vfio-migrate",
            dependencies: [
                "VFIOMigration", "VFIOMockDevices",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "tools/vfio-migrate"
        ),

        // The embedding example (docs/embedding.md): a small VMM driving a migration step by step.
        .executableTarget(
            name: "mini-vmm",
            dependencies: ["VFIOMigration", "VFIOMockDevices"],
            path: "Examples/MiniVMM"
        ),

        // Tests. CVFIOSystemHeaderCheck compiles our definitions next to the system
        // <linux/vfio.h> so a test can show the two agree where both define a thing.
        .target(name: "CVFIOSystemHeaderCheck", dependencies: ["CVFIO"], path: "Tests/CVFIOSystemHeaderCheck"),
        .testTarget(
            name: "VFIOSyscallsTests",
            dependencies: ["VFIOSyscalls", "CVFIO", "CVFIOSystemHeaderCheck", "VFIOBuffers"],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(name: "VFIOStreamTests", dependencies: ["VFIOStream", "VFIOBuffers"], resources: [.copy("Fixtures")]),
        .testTarget(name: "VFIOCoreTests", dependencies: ["VFIOCore", "VFIOStream", "VFIOBuffers"]),
        .testTarget(
            name: "VFIOKernelTests",
            dependencies: ["VFIOKernel", "VFIOMock", "VFIOMockDevices", "VFIOCore", "VFIOSyscalls", "VFIOStream"]
        ),
        .testTarget(
            name: "VFIOMockTests",
            dependencies: ["VFIOMock", "VFIOKernel", "VFIOCore", "VFIOSyscalls", "VFIOStream"]
        ),
        .testTarget(
            name: "VFIOConformanceTests",
            dependencies: ["VFIOMigration", "VFIOMockDevices", "VFIOKernel", "VFIOMock", "VFIOCore", "VFIOSyscalls", "VFIOStream"]
        ),
        .testTarget(
            name: "VFIOMemoryTests",
            dependencies: ["VFIOMigration", "VFIOMockDevices", "VFIOMock", "VFIOKernel", "VFIOCore", "VFIOStream", "VFIOSyscalls", "VFIOBuffers"]
        ),
        .testTarget(
            name: "VFIOMigrationTests",
            dependencies: ["VFIOMigration", "VFIOMockDevices", "VFIOMock", "VFIOCore", "VFIOStream", "VFIOKernel", "VFIOBuffers"],
            resources: [.copy("Fixtures")]
        ),
    ]
)
