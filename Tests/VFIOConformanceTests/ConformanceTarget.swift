// The devices the conformance suite runs against: the mock always, real devices when the
// environment names them (in the guest harness, or on real hardware):
//   VFIO_TEST_MDEV=<uuid1>,<uuid2>   two migratable vfio_testdev mdevs (tools/vfio-test-device)
//   VFIO_TEST_EDU=<bdf>              a vfio-pci device without migration (QEMU's edu)
//   VFIO_TEST_DEVICE=<spec>          a migratable device on real hardware (saved, reset, loaded back)
import Foundation
import VFIOCore
import VFIOKernel
import VFIOMigration
import VFIOMockDevices
import VFIOMock

let environment = ProcessInfo.processInfo.environment

/// A pair of devices to migrate between (source, target), or one device loaded back into itself.
struct MigrationTarget: Sendable, CustomStringConvertible {
    enum Kind: Sendable {
        case mock(options: String)
        case testDevice(source: String, target: String)
        case hardware(spec: String)
    }
    let kind: Kind
    var description: String {
        switch kind {
        case .mock(let options): "mock(\(options))"
        case .testDevice: "vfio_testdev"
        case .hardware(let spec): "hardware \(spec)"
        }
    }

    var isMock: Bool { if case .mock = kind { true } else { false } }

    /// Opens source and target in a fresh environment.
    func open() throws -> (env: DeviceEnvironment, source: VFIODevice, target: VFIODevice) {
        let env = DeviceEnvironment.withMockDevices()
        switch kind {
        case .mock(let options):
            let source = try env.open("mock:src?\(options)&seed=11")
            let target = try env.open("mock:dst?\(options)&seed=12")
            return (env, source, target)
        case .testDevice(let s, let t):
            return (env, try env.open(s), try env.open(t))
        case .hardware(let spec):
            let device = try env.open(spec)
            return (env, device, device)
        }
    }

    /// True when the target now holds the source's state.
    func sameState(_ source: VFIODevice, _ target: VFIODevice) throws -> Bool {
        switch kind {
        case .mock:
            return source.mock!.stateDigest == target.mock!.stateDigest
        case .testDevice:
            let a = try source.regionInfo(0)
            let b = try target.regionInfo(0)
            guard a.size == b.size else { return false }
            let left = try source.readRegion(a, count: Int(a.size))
            let right = try target.readRegion(b, count: Int(b.size))
            return left == right
        case .hardware:
            return true // opaque device: accepting the stream on RESUMING -> STOP is the check
        }
    }

    /// Makes the source's state differ from a freshly reset device's, where that is possible.
    func dirtySourceState(_ source: VFIODevice) throws {
        switch kind {
        case .mock:
            _ = source.mock!.mutateState(blocks: 3)
        case .testDevice:
            let bar = try source.regionInfo(0)
            var bytes: [UInt8] = []
            for i in 0..<256 { bytes.append(UInt8(truncatingIfNeeded: i &* 37 &+ 11)) }
            try source.writeRegion(bar, at: 0x100, bytes: bytes)
        case .hardware:
            break
        }
    }
}

enum Targets {
    static let mockFlagSets = ["stop-copy", "stop-copy,p2p", "stop-copy,pre-copy", "stop-copy,p2p,pre-copy"]

    static var migratable: [MigrationTarget] {
        var targets = mockFlagSets.map { MigrationTarget(kind: .mock(options: "flags=\($0)&state=256KiB")) }
        if let pair = environment["VFIO_TEST_MDEV"]?.split(separator: ",").map(String.init), pair.count >= 2 {
            targets.append(MigrationTarget(kind: .testDevice(source: pair[0], target: pair[1])))
        }
        if let spec = environment["VFIO_TEST_DEVICE"], !spec.isEmpty {
            targets.append(MigrationTarget(kind: .hardware(spec: spec)))
        }
        return targets
    }

    /// Devices for container/group/IOMMU checks: (spec, precise dirty tracking expected, migratable).
    struct IOMMUTarget: Sendable, CustomStringConvertible {
        let spec: String
        let preciseDirty: Bool
        let migratable: Bool
        let isMock: Bool
        var description: String { spec }
    }

    static var iommu: [IOMMUTarget] {
        var targets = [
            IOMMUTarget(spec: "mock:pci0?flags=none&dma-logging=no", preciseDirty: false, migratable: false, isMock: true),
            IOMMUTarget(spec: "mock:mdev0?mdev-type=mock-1", preciseDirty: true, migratable: true, isMock: true),
        ]
        if let edu = environment["VFIO_TEST_EDU"], !edu.isEmpty {
            targets.append(IOMMUTarget(spec: edu, preciseDirty: false, migratable: false, isMock: false))
        }
        if let first = environment["VFIO_TEST_MDEV"]?.split(separator: ",").first {
            targets.append(IOMMUTarget(spec: String(first), preciseDirty: true, migratable: true, isMock: false))
        }
        return targets
    }
}
