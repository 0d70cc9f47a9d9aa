// A live migration with guest memory, the same check on the mock and (in the guest suite) on
// the test mdevs: guest RAM is a tmpfs file mapped into the source's container, the device's
// DMA engine writes into it between pre-copy rounds, and after the save and the load the
// target's RAM file equals the source's and the target device holds the source's state.
import Foundation
import Testing
import VFIOBuffers
import VFIOCore
import VFIOKernel
import VFIOMigration
import VFIOMockDevices

@Suite(.serialized) struct MemoryConformanceTests {
    static var targets: [MigrationTarget] {
        Targets.migratable.filter {
            if case .hardware = $0.kind { return false }
            if case .mock(let options) = $0.kind { return options.contains("pre-copy") && options.contains("p2p") }
            return true
        }
    }

    func ramFile(_ name: String, bytes: Int, fill: (Int) -> UInt8) throws -> String {
        // A tmpfs file as guest RAM: /dev/shm where it is mounted, else the temporary
        // directory (the guest's root is a RAM file system, with no /dev/shm).
        let directory = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : FileManager.default.temporaryDirectory.path
        let path = "\(directory)/vfio-conformance-\(getpid())-\(name)"
        try Data((0..<bytes).map(fill)).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test(arguments: MemoryConformanceTests.targets)
    func targetMemoryEqualsTheSourcesAfterALiveMigration(target: MigrationTarget) throws {
        let (_, source, destination) = try target.open()
        try target.dirtySourceState(source)
        let bytes = 256 * 4096
        let iova: UInt64 = 0x10_0000
        let sourcePath = try ramFile("src", bytes: bytes) { UInt8(truncatingIfNeeded: $0 &* 131 &+ $0 >> 12) }
        let targetPath = try ramFile("dst", bytes: bytes) { _ in 0 }
        defer {
            unlink(sourcePath)
            unlink(targetPath)
        }
        // The VMM's view (read-write, mapped for the device's DMA) and the engine's (read-only).
        let vmmRAM = try GuestMemoryRegion.mapping(file: sourcePath, iova: iova, writable: true)
        try source.container.map(vmmRAM)
        let memory = try GuestMemory([try GuestMemoryRegion.mapping(file: sourcePath, iova: iova, writable: false)])
        let targetMemory = try GuestMemory([try GuestMemoryRegion.mapping(file: targetPath, iova: iova, writable: true)])

        let file = NSTemporaryDirectory() + "vfio-memory-conformance-\(getpid()).vfiomig"
        defer { unlink(file) }
        let writer = DMAWriter(device: source)
        let saved = try Migration.save(
            [source], to: file, options: SaveOptions(chunkSize: 256 << 10),
            policy: DowntimePolicy(downtimeLimit: .milliseconds(2), switchoverBandwidth: 100e6), pipeline: nil,
            memory: memory, roundByteBudget: 256 << 10,
            afterRound: { round in
                // The device writes a page of its own memory into guest RAM while pre-copy runs.
                try? writer.writeBytes(iova: iova + UInt64(round.index * 7 % 256) * 4096, length: 4096)
            })
        #expect(saved.report.rounds.count >= 4, "\(saved.report.rounds.count) rounds")
        #expect(saved.report.rounds.contains { ($0.memoryDirtyBytes ?? 0) > 0 }, "the tracker saw the DMA writes")
        let loaded = try Migration.load([destination], from: try FileChannel.reading(file), leaving: .running, memory: targetMemory)
        #expect(loaded.report.memory?.records ?? 0 > 0)
        let written = try Data(contentsOf: URL(fileURLWithPath: sourcePath))
        #expect(written != Data((0..<bytes).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ $0 >> 12) }), "the DMA writes changed the source's RAM")
        #expect(try Data(contentsOf: URL(fileURLWithPath: targetPath)) == written)
        #expect(try target.sameState(source, destination))
    }
}

extension DMAWriter {
    /// Writes real bytes: the mock's DMA hook with a pattern, or the test device's engine
    /// (its BAR0 data area).
    func writeBytes(iova: UInt64, length: UInt64) throws {
        if let mock = device.mock {
            try mock.dmaWrite(iova: iova, bytes: (0..<Int(length)).map { UInt8(truncatingIfNeeded: $0 ^ 0x5A) })
            return
        }
        try write(iova: iova, length: length)
    }
}
