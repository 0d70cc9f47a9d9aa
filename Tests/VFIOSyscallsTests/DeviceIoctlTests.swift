// Device ioctls and region I/O: GET_INFO / GET_REGION_INFO / GET_IRQ_INFO encodings and
// decodes, RESET, and pread/pwrite offsets across short transfers.
import SystemPackage
import Testing
import VFIOSyscalls

@Suite struct DeviceIoctlTests {
    @Test func infoSendsArgsz24AndDecodesCounts() throws {
        let kernel = RecordingKernel()
        let device = try openTestDevice(kernel)
        kernel.onIoctl(Req.deviceGetInfo, on: .device, .answer { inv throws(Errno) in
            try inv.setField(UInt32(0x83), at: 4) // RESET | PCI | CAPS
            try inv.setField(UInt32(9), at: 8)
            try inv.setField(UInt32(5), at: 12)
            return 0
        })
        let info = try device.info()
        #expect(info.flags == 0x83)
        #expect(info.regionCount == 9)
        #expect(info.irqCount == 5)
        #expect(info.supportsReset)
        #expect(info.isPCI)
        let call = try #require(kernel.lastIoctl(0x3B6B))
        #expect(call.kind == .device)
        #expect(call.fd == device.rawValue)
        #expect(call.argumentBytes.count == 24)
        #expect(call.argumentBytes.u32(0) == 24)
        #expect(call.argumentBytes.dropFirst(4).allSatisfy { $0 == 0 })
    }

    @Test func infoWithoutResetFlag() throws {
        let kernel = RecordingKernel()
        let device = try openTestDevice(kernel)
        kernel.onIoctl(Req.deviceGetInfo, .answer { inv throws(Errno) in
            try inv.setField(UInt32(0x2), at: 4)
            return 0
        })
        let info = try device.info()
        #expect(!info.supportsReset)
        #expect(info.isPCI)
    }

    @Test func regionInfoSendsTheIndexAndDecodesSizeAndOffset() throws {
        let kernel = RecordingKernel()
        let device = try openTestDevice(kernel)
        kernel.onIoctl(Req.deviceGetRegionInfo, on: .device, .answer { inv throws(Errno) in
            let index = try inv.field(UInt32.self, at: 8)
            try inv.setField(UInt32(0x7), at: 4) // READ | WRITE | MMAP
            try inv.setField(UInt64(0x100), at: 16)
            try inv.setField(UInt64(index) << 40, at: 24)
            return 0
        })
        let region = try device.regionInfo(7)
        #expect(region.index == 7)
        #expect(region.flags == 0x7)
        #expect(region.size == 0x100)
        #expect(region.offset == 7 << 40)
        #expect(region.readable && region.writable && region.mappable)
        let call = try #require(kernel.lastIoctl(0x3B6C))
        #expect(call.kind == .device)
        let bytes = call.argumentBytes
        #expect(bytes.count == 32)
        #expect(bytes.u32(0) == 32)
        #expect(bytes.u32(4) == 0)
        #expect(bytes.u32(8) == 7)
        #expect(bytes.dropFirst(12).allSatisfy { $0 == 0 })
    }

    @Test func regionInfoErrorNamesTheIndexAndDevice() throws {
        let kernel = RecordingKernel()
        let device = try openTestDevice(kernel)
        kernel.onIoctl(Req.deviceGetRegionInfo, .fail(.invalidArgument))
        let error = #expect(throws: SyscallError.self) { _ = try device.regionInfo(12) }
        #expect(error?.description.hasPrefix("VFIO_DEVICE_GET_REGION_INFO(12) on device 0000:06:0d.0 failed: EINVAL") == true)
    }

    @Test func irqInfoSendsTheIndexAndDecodesCount() throws {
        let kernel = RecordingKernel()
        let device = try openTestDevice(kernel)
        kernel.onIoctl(Req.deviceGetIRQInfo, on: .device, .answer { inv throws(Errno) in
            try inv.setField(UInt32(0x9), at: 4) // EVENTFD | NORESIZE
            try inv.setField(UInt32(2048), at: 12)
            return 0
        })
        let irq = try device.irqInfo(2)
        #expect(irq.index == 2)
        #expect(irq.flags == 0x9)
        #expect(irq.count == 2048)
        let call = try #require(kernel.lastIoctl(0x3B6D))
        #expect(call.kind == .device)
        #expect(call.argumentBytes == leBytes(UInt32(16)) + leBytes(UInt32(0)) + leBytes(UInt32(2)) + leBytes(UInt32(0)))
    }

    @Test func resetHasNoArgumentAndGoesToTheDevice() throws {
        let kernel = RecordingKernel()
        let device = try openTestDevice(kernel)
        try device.reset()
        let call = try #require(kernel.lastIoctl(0x3B6F))
        #expect(call.kind == .device)
        #expect(call.noArgument)

        kernel.onIoctl(Req.deviceReset, .fail(.noIoctl))
        let error = #expect(throws: SyscallError.self) { try device.reset() }
        #expect(error?.description.hasPrefix("VFIO_DEVICE_RESET on device 0000:06:0d.0 failed: ENOTTY") == true)
    }

    static let barOffset: UInt64 = 0x20_0000_0000

    /// BAR2 as GET_REGION_INFO reports it (RegionInfo has no public initializer on purpose:
    /// a region comes from the kernel). Consumes no script of the caller's.
    static func bar2(_ device: borrowing DeviceFD, _ kernel: RecordingKernel) throws -> RegionInfo {
        kernel.onIoctl(Req.deviceGetRegionInfo, .answer { inv throws(Errno) in
            try inv.setField(UInt32(0x3), at: 4)
            try inv.setField(UInt64(0x1000), at: 16)
            try inv.setField(barOffset, at: 24)
            return 0
        })
        return try device.regionInfo(2)
    }

    @Test func readRegionFollowsShortReadsAtAdvancingOffsets() throws {
        let kernel = RecordingKernel()
        let device = try openTestDevice(kernel)
        let bar = try Self.bar2(device, kernel)
        let content = (0..<64).map { UInt8($0 * 3 & 0xFF) }
        for chunk in [5, 11, 0x30] { // the last answer is clipped to what is left
            kernel.script(.pread, on: .device, .answer { inv throws(Errno) in
                guard let region = inv.region, let offset = inv.offset else { throw .invalidArgument }
                let start = Int(offset - Int64(Self.barOffset) - 0x10)
                let n = min(chunk, region.count)
                try inv.memory.copyOut(content[start..<(start + n)], to: region.address)
                return n
            })
        }
        let bytes = try device.readRegion(bar, at: 0x10, count: 21)
        #expect(bytes == Array(content[0..<21]))
        let preads = kernel.calls.filter { $0.syscall == .pread }
        #expect(preads.count == 3)
        #expect(preads.allSatisfy { $0.kind == .device && $0.fd == device.rawValue })
        #expect(preads.map(\.offset) == [0x20_0000_0010, 0x20_0000_0015, 0x20_0000_0020])
        #expect(preads.map { $0.region?.count } == [21, 16, 5])
        let first = try #require(preads.first?.region?.address)
        #expect(preads.map { $0.region!.address - first } == [0, 5, 16])
        #expect(preads.allSatisfy { $0.region!.writable })
    }

    @Test func readRegionStopsAtEndOfFile() throws {
        let kernel = RecordingKernel()
        let device = try openTestDevice(kernel)
        let bar = try Self.bar2(device, kernel)
        kernel.script(.pread, .answer { inv throws(Errno) in
            try inv.memory.copyOut([0xAA, 0xBB, 0xCC], to: inv.address)
            return 3
        })
        kernel.script(.pread, .answer { _ throws(Errno) in 0 })
        let bytes = try device.readRegion(bar, at: 0, count: 8)
        #expect(bytes == [0xAA, 0xBB, 0xCC])
        #expect(kernel.calls.filter { $0.syscall == .pread }.count == 2)
    }

    @Test func readRegionErrorNamesRegionOffsetAndDevice() throws {
        let kernel = RecordingKernel()
        let device = try openTestDevice(kernel)
        let bar = try Self.bar2(device, kernel)
        kernel.script(.pread, .fail(.ioError))
        let error = #expect(throws: SyscallError.self) { _ = try device.readRegion(bar, at: 0x40, count: 4) }
        #expect(error?.description.hasPrefix("pread(region 2 +0x40) on device 0000:06:0d.0 failed: EIO") == true)
    }

    @Test func writeRegionSendsEveryByteOnceAcrossShortWrites() throws {
        let kernel = RecordingKernel()
        let device = try openTestDevice(kernel)
        let bar = try Self.bar2(device, kernel)
        let payload = (0..<29).map { UInt8(0xF0 ^ $0) }
        kernel.script(.pwrite, on: .device, .answer { _ throws(Errno) in 7 })
        kernel.script(.pwrite, on: .device, .answer { _ throws(Errno) in 1 })
        try device.writeRegion(bar, at: 0x100, bytes: payload)
        let pwrites = kernel.calls.filter { $0.syscall == .pwrite }
        #expect(pwrites.count == 3)
        #expect(pwrites.allSatisfy { $0.kind == .device })
        #expect(pwrites.map(\.offset) == [0x20_0000_0100, 0x20_0000_0107, 0x20_0000_0108])
        // What the kernel could copy in on each attempt; the accepted prefixes join to the payload.
        let accepted = [7, 1, 21]
        let sent = zip(pwrites, accepted).flatMap { $0.0.argumentBytes.prefix($0.1) }
        #expect(sent == payload)
        #expect(pwrites.map { $0.argumentBytes.count } == [29, 22, 21])
        #expect(pwrites.allSatisfy { !$0.region!.writable })
    }

    @Test func writeRegionBufferIsReadOnlyToTheKernel() throws {
        let kernel = RecordingKernel()
        let device = try openTestDevice(kernel)
        let bar = try Self.bar2(device, kernel)
        kernel.script(.pwrite, .answer { inv throws(Errno) in
            try inv.memory.copyOut([0], to: inv.address) // a kernel writing into a write() buffer
            return 1
        })
        let error = #expect(throws: SyscallError.self) { try device.writeRegion(bar, at: 0, bytes: [1, 2]) }
        #expect(error?.errno == .badAddress)
        #expect(error?.description.contains("EFAULT") == true)
    }
}
