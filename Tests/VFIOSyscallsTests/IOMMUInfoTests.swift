// VFIO_IOMMU_GET_INFO: the fixed struct, the capability chain as the kernel lays it out
// (any order, offsets from the buffer start, not necessarily aligned), and the
// "buffer too small: argsz grows, re-issue" protocol.
import SystemPackage
import Testing
import VFIOSyscalls

/// Kernel-side builders for type1 info capabilities (layouts from the fact sheet, §1.5).
enum Cap {
    static func header(id: UInt16, version: UInt16 = 1, next: UInt32) -> [UInt8] {
        leBytes(id) + leBytes(version) + leBytes(next)
    }

    /// id 1: nr_iovas @8, reserved @12, ranges @16 as {start, end inclusive}.
    static func iovaRange(next: UInt32, _ ranges: [(UInt64, UInt64)]) -> [UInt8] {
        header(id: 1, next: next) + leBytes(UInt32(ranges.count)) + leBytes(UInt32(0))
            + ranges.flatMap { leBytes($0.0) + leBytes($0.1) }
    }

    /// id 2: flags @8, pad @12, pgsize_bitmap @16, max_dirty_bitmap_size @24.
    static func migration(next: UInt32, flags: UInt32 = 0, pageSizes: UInt64, maxBitmapBytes: UInt64) -> [UInt8] {
        header(id: 2, next: next) + leBytes(flags) + leBytes(UInt32(0)) + leBytes(pageSizes) + leBytes(maxBitmapBytes)
    }

    /// id 3: avail @8.
    static func dmaAvail(next: UInt32, _ avail: UInt32) -> [UInt8] {
        header(id: 3, next: next) + leBytes(avail)
    }

    /// A capability the wrapper does not know; its body looks like a DMA_AVAIL to catch
    /// a decoder that ignores ids.
    static func unknown(next: UInt32) -> [UInt8] {
        header(id: 0x42, version: 7, next: next) + leBytes(UInt32(1))
    }
}

/// Answers GET_INFO like type1: if argsz cannot hold the chain, only argsz is rewritten
/// (with CAPS set and cap_offset 0); otherwise the struct and every cap are copied out.
func iommuInfoKernel(
    flags: UInt32 = 0x3, pageSizes: UInt64 = 0x4020_1000, capOffset: UInt32,
    caps: [(offset: Int, bytes: [UInt8])]
) -> (Invocation) throws(Errno) -> Int {
    let needed = caps.map { $0.offset + $0.bytes.count }.max() ?? 24
    return { inv throws(Errno) in
        let argsz = try inv.field(UInt32.self, at: 0)
        guard argsz >= 16 else { throw .invalidArgument }
        try inv.setField(flags, at: 4)
        try inv.setField(pageSizes, at: 8)
        if Int(argsz) < needed {
            try inv.setField(UInt32(needed), at: 0)
            try inv.setField(UInt32(0), at: 16)
            return 0
        }
        try inv.setField(capOffset, at: 16)
        for cap in caps { try inv.memory.copyOut(cap.bytes, to: inv.address + UInt(cap.offset)) }
        return 0
    }
}

@Suite struct IOMMUInfoTests {
    static let ranges: [(UInt64, UInt64)] = [(0, 0xFEDF_FFFF), (0xFEF0_0000, 0xFF_FFFF_FFFF)]
    static let expectedRanges = ranges.map { IOVARange(start: $0.0, last: $0.1) }

    static func expectMigrationCap(_ migration: IOMMUInfo.Migration?, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(migration?.flags == 0, sourceLocation: sourceLocation)
        #expect(migration?.pageSizes == 0x1000, sourceLocation: sourceLocation)
        #expect(migration?.maxDirtyBitmapBytes == 268_435_456, sourceLocation: sourceLocation)
    }

    /// MIGRATION @24, an unknown cap @57, DMA_AVAIL @69, IOVA_RANGE @83: out of id order and
    /// at odd offsets. `lastNext` is where the last cap points (0 ends the chain).
    static func scrambledChain(lastNext: UInt32 = 0) -> [(offset: Int, bytes: [UInt8])] {
        [
            (24, Cap.migration(next: 57, pageSizes: 0x1000, maxBitmapBytes: 268_435_456)),
            (57, Cap.unknown(next: 69)),
            (69, Cap.dmaAvail(next: 83, 65535)),
            (83, Cap.iovaRange(next: lastNext, ranges)),
        ]
    }

    @Test func decodesAllThreeCapsInAnyOrderAtOddOffsetsSkippingUnknown() throws {
        let kernel = RecordingKernel()
        let container = try ContainerFD.open(kernel: kernel)
        kernel.onIoctl(Req.iommuGetInfo, on: .container, .answer(iommuInfoKernel(capOffset: 24, caps: Self.scrambledChain())))
        let info = try container.iommuInfo()
        #expect(info.pageSizes == 0x4020_1000)
        #expect(info.iovaRanges == Self.expectedRanges)
        Self.expectMigrationCap(info.migration)
        #expect(info.dmaAvailable == 65535)

        let call = try #require(kernel.ioctls.only)
        #expect(call.request == 0x3B70)
        #expect(call.kind == .container)
        let bytes = call.argumentBytes
        #expect(bytes.count >= 24)
        #expect(bytes.u32(0) == UInt32(bytes.count)) // argsz is the whole buffer, caps space included
        #expect(bytes.u32(4) == 0)
        #expect(bytes.dropFirst(4).allSatisfy { $0 == 0 })
    }

    @Test(.timeLimit(.minutes(1)))
    func aLoopingChainEndsWithEachCapDecodedOnce() throws {
        for loopTarget: UInt32 in [24, 69, 83] {
            let kernel = RecordingKernel()
            let container = try ContainerFD.open(kernel: kernel)
            kernel.onIoctl(Req.iommuGetInfo, .answer(iommuInfoKernel(capOffset: 24, caps: Self.scrambledChain(lastNext: loopTarget))))
            let info = try container.iommuInfo()
            #expect(info.iovaRanges == Self.expectedRanges, "loop back to \(loopTarget)")
            Self.expectMigrationCap(info.migration)
            #expect(info.dmaAvailable == 65535)
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func aNextPastTheBufferEndStopsTheWalk() throws {
        let kernel = RecordingKernel()
        let container = try ContainerFD.open(kernel: kernel)
        let caps: [(offset: Int, bytes: [UInt8])] = [(24, Cap.dmaAvail(next: 0xFFFF_FFF0, 12))]
        kernel.onIoctl(Req.iommuGetInfo, .answer(iommuInfoKernel(capOffset: 24, caps: caps)))
        let info = try container.iommuInfo()
        #expect(info.dmaAvailable == 12)
        #expect(info.migration == nil)
        #expect(info.iovaRanges.isEmpty)
    }

    @Test func tooSmallBufferIsReissuedWithTheArgszTheKernelAsked() throws {
        let kernel = RecordingKernel()
        let container = try ContainerFD.open(kernel: kernel)
        // 40 IOVA ranges: 16 + 40 * 16 = 656 bytes of cap after the 24-byte struct.
        let many = (0..<40).map { (UInt64($0) << 32, UInt64($0) << 32 | 0xFFFF_FFFF) }
        let caps: [(offset: Int, bytes: [UInt8])] = [
            (24, Cap.dmaAvail(next: 36, 9)),
            (36, Cap.iovaRange(next: 0, many)),
        ]
        let needed = 36 + 16 + 40 * 16
        let answer = iommuInfoKernel(capOffset: 24, caps: caps)
        kernel.onIoctl(Req.iommuGetInfo, .answer(answer))
        kernel.onIoctl(Req.iommuGetInfo, .answer(answer))
        let info = try container.iommuInfo()
        #expect(info.iovaRanges.count == 40)
        #expect(info.iovaRanges.last == IOVARange(start: 39 << 32, last: 39 << 32 | 0xFFFF_FFFF))
        #expect(info.dmaAvailable == 9)

        let calls = kernel.ioctls
        #expect(calls.count == 2)
        #expect(calls.allSatisfy { $0.request == 0x3B70 && $0.kind == .container })
        let first = try #require(calls.first).argumentBytes
        let second = try #require(calls.last).argumentBytes
        #expect(try #require(first.u32(0)) < UInt32(needed))
        #expect(second.u32(0) == UInt32(needed))
        #expect(second.count == needed)
    }

    @Test func aKernelThatKeepsAskingForMoreIsAnErrorNotAHang() throws {
        let kernel = RecordingKernel()
        let container = try ContainerFD.open(kernel: kernel)
        for _ in 0..<8 {
            kernel.onIoctl(Req.iommuGetInfo, .answer { inv throws(Errno) in
                let argsz = try inv.field(UInt32.self, at: 0)
                try inv.setField(argsz + 64, at: 0)
                try inv.setField(UInt32(0x2), at: 4)
                return 0
            })
        }
        let error = #expect(throws: SyscallError.self) { _ = try container.iommuInfo() }
        #expect(error?.operation == "VFIO_IOMMU_GET_INFO")
        #expect(error?.object == "container /dev/vfio/vfio")
        #expect(kernel.ioctls.count < 8)
    }

    @Test func withoutFlagsNothingIsDecoded() throws {
        let kernel = RecordingKernel()
        let container = try ContainerFD.open(kernel: kernel)
        // Caps are in the buffer but CAPS (1<<1) and PGSIZES (1<<0) are not set.
        kernel.onIoctl(Req.iommuGetInfo, .answer(iommuInfoKernel(flags: 0, capOffset: 24, caps: Self.scrambledChain())))
        let info = try container.iommuInfo()
        #expect(info.pageSizes == nil)
        #expect(info.iovaRanges.isEmpty)
        #expect(info.migration == nil)
        #expect(info.dmaAvailable == nil)
    }

    @Test func noMigrationCapMeansNoContainerDirtyTracking() throws {
        // The iommufd compatibility container reports only DMA_AVAIL and IOVA_RANGE.
        let kernel = RecordingKernel()
        let container = try ContainerFD.open(kernel: kernel)
        let caps: [(offset: Int, bytes: [UInt8])] = [
            (24, Cap.iovaRange(next: 64, [(0, 0xFFFF_FFFF_FFFF)])),
            (64, Cap.dmaAvail(next: 0, .max)),
        ]
        kernel.onIoctl(Req.iommuGetInfo, .answer(iommuInfoKernel(capOffset: 24, caps: caps)))
        let info = try container.iommuInfo()
        #expect(info.migration == nil)
        #expect(info.dmaAvailable == .max)
        #expect(info.iovaRanges == [IOVARange(start: 0, last: 0xFFFF_FFFF_FFFF)])
    }
}
