// VFIO_DEVICE_FEATURE (0x3B75 on a device fd): header argsz/flags, each payload at its
// fact-sheet offset, the out-parameters the kernel writes back, and data fd adoption.
import SystemPackage
import Testing
import VFIOSyscalls

@Suite struct DeviceFeatureTests {
    /// Checks the 8-byte feature header of the recorded call and returns the whole argument.
    static func featureCall(
        _ kernel: RecordingKernel, flags: UInt32, argsz: UInt32,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> RecordedCall {
        let call = try #require(kernel.lastIoctl(0x3B75), sourceLocation: sourceLocation)
        #expect(call.kind == .device, sourceLocation: sourceLocation)
        #expect(call.argumentBytes.count == Int(argsz), sourceLocation: sourceLocation)
        #expect(call.argumentBytes.u32(0) == argsz, sourceLocation: sourceLocation)
        #expect(call.argumentBytes.u32(4) == flags, sourceLocation: sourceLocation)
        return call
    }

    // MARK: PROBE

    static let probes: [(DeviceFeature, FeatureAccess, UInt32)] = [
        (.dmaLoggingStart, .set, 0x6_0006), // PROBE | SET | DMA_LOGGING_START
        (.migration, .get, 0x5_0001), // PROBE | GET | MIGRATION
        (.migrationDeviceState, [.get, .set], 0x7_0002), // PROBE | GET | SET | MIG_DEVICE_STATE
        (.migrationDataSize, [], 0x4_0009), // PROBE | MIG_DATA_SIZE
        (.preCopyInfoV2, .set, 0x6_000C), // PROBE | SET | MIG_PRECOPY_INFOv2
    ]

    @Test(arguments: probes)
    func probeEncodesProbeDirectionAndIndex(feature: DeviceFeature, access: FeatureAccess, flags: UInt32) throws {
        let kernel = RecordingKernel()
        let device = try openTestDevice(kernel)
        #expect(try device.probeFeature(feature, for: access))
        _ = try Self.featureCall(kernel, flags: flags, argsz: 8)
    }

    @Test(arguments: [Errno.noIoctl, .invalidArgument, .operationNotSupported])
    func probeNoForNotSupportedErrnos(errno: Errno) throws {
        let kernel = RecordingKernel()
        let device = try openTestDevice(kernel)
        kernel.onIoctl(Req.deviceFeature, on: .device, .fail(errno))
        #expect(try device.probeFeature(.dmaLoggingStart, for: .set) == false)
        #expect(kernel.pendingScripts == 0)
    }

    @Test(arguments: [Errno.noDevice, .ioError, .noMemory, .badAddress])
    func probeThrowsOtherErrnos(errno: Errno) throws {
        let kernel = RecordingKernel()
        let device = try openTestDevice(kernel)
        kernel.onIoctl(Req.deviceFeature, .fail(errno))
        let error = #expect(throws: SyscallError.self) { _ = try device.probeFeature(.dmaLoggingStart, for: .set) }
        #expect(error?.errno == errno)
        #expect(error?.operation == "VFIO_DEVICE_FEATURE[DMA_LOGGING_START|PROBE|SET]")
        #expect(error?.object == "device 0000:06:0d.0")
    }

    // MARK: MIGRATION

    @Test(arguments: [0x1 as UInt64, 0x3, 0x5, 0x7])
    func migrationFlagsGetsFeature1(flags: UInt64) throws {
        let kernel = RecordingKernel()
        let device = try openTestDevice(kernel)
        kernel.onIoctl(Req.deviceFeature, on: .device, .answer { inv throws(Errno) in
            try inv.setField(flags, at: 8)
            return 0
        })
        #expect(try device.migrationFlags() == flags)
        let call = try Self.featureCall(kernel, flags: 0x1_0001, argsz: 16)
        #expect(call.argumentBytes.u64(8) == 0)
    }

    @Test func migrationFlagsWithoutMigrationSupportIsENOTTY() throws {
        let kernel = RecordingKernel()
        let device = try openTestDevice(kernel)
        kernel.onIoctl(Req.deviceFeature, .fail(.noIoctl))
        let error = #expect(throws: SyscallError.self) { _ = try device.migrationFlags() }
        #expect(error?.description.hasPrefix("VFIO_DEVICE_FEATURE[MIGRATION|GET] on device 0000:06:0d.0 failed: ENOTTY") == true)
    }

    // MARK: MIG_DEVICE_STATE

    @Test func migrationStateGetsFeature2AndDecodesTheState() throws {
        let kernel = RecordingKernel()
        let device = try openTestDevice(kernel)
        kernel.onIoctl(Req.deviceFeature, on: .device, .answer { inv throws(Errno) in
            try inv.setField(UInt32(6), at: 8) // PRE_COPY
            try inv.setField(Int32(-1), at: 12)
            return 0
        })
        #expect(try device.migrationState() == 6)
        _ = try Self.featureCall(kernel, flags: 0x1_0002, argsz: 16)
    }

    @Test func setMigrationStateSendsStateAndMinusOneAndAdoptsTheReturnedFd() throws {
        let kernel = RecordingKernel()
        let device = try openTestDevice(kernel)
        var dataFD: CInt = -1
        var dataFDGoingIn: Int32?
        kernel.onIoctl(Req.deviceFeature, on: .device, .answer { inv throws(Errno) in
            dataFDGoingIn = try inv.field(Int32.self, at: 12)
            dataFD = inv.newDescriptor(.data, name: "save")
            try inv.setField(Int32(dataFD), at: 12)
            return 0
        })
        let data = try device.setMigrationState(3) // STOP_COPY
        #expect(dataFDGoingIn == -1)
        let call = try Self.featureCall(kernel, flags: 0x2_0002, argsz: 16)
        #expect(call.argumentBytes.u32(8) == 3)
        #expect(call.argumentBytes.i32(12) == -1)

        guard let data else {
            Issue.record("SET returned no data fd although the kernel installed one")
            return
        }
        #expect(data.rawValue == dataFD)
        #expect(data.deviceName == deviceName)
        #expect(kernel.kind(of: data.rawValue) == .data)
        try data.close()
        #expect(kernel.closeCount(dataFD) == 1)
        #expect(!kernel.isOpen(dataFD))
    }

    @Test func setMigrationStateWithMinusOneBackReturnsNil() throws {
        let kernel = RecordingKernel()
        let device = try openTestDevice(kernel)
        kernel.onIoctl(Req.deviceFeature, .answer { inv throws(Errno) in
            try inv.setField(Int32(-1), at: 12)
            return 0
        })
        if try device.setMigrationState(1) != nil { // STOP
            Issue.record("data_fd -1 must mean no session")
        }
        #expect(kernel.calls.allSatisfy { $0.syscall != .close || $0.kind != .data })
    }

    @Test func failedSetNamesFeatureDirectionDeviceAndErrno() throws {
        let kernel = RecordingKernel()
        let device = try openTestDevice(kernel)
        // The kernel copies the struct back (data_fd -1, the requested state) and then fails.
        kernel.onIoctl(Req.deviceFeature, on: .device, Response(error: .invalidArgument) { inv throws(Errno) in
            try inv.setField(Int32(-1), at: 12)
            return 0
        })
        let error = #expect(throws: SyscallError.self) { _ = try device.setMigrationState(6) }
        #expect(error?.operation == "VFIO_DEVICE_FEATURE[MIG_DEVICE_STATE|SET]")
        #expect(error?.object == "device 0000:06:0d.0")
        #expect(error?.errno == .invalidArgument)
        let text = try #require(error?.description)
        #expect(text.hasPrefix("VFIO_DEVICE_FEATURE[MIG_DEVICE_STATE|SET] on device 0000:06:0d.0 failed: EINVAL"))
    }

    // MARK: MIG_DATA_SIZE

    @Test func migrationDataSizeGetsFeature9() throws {
        let kernel = RecordingKernel()
        let device = try openTestDevice(kernel)
        kernel.onIoctl(Req.deviceFeature, on: .device, .answer { inv throws(Errno) in
            try inv.setField(UInt64(0x1_2345_6789), at: 8)
            return 0
        })
        #expect(try device.migrationDataSize() == 0x1_2345_6789)
        _ = try Self.featureCall(kernel, flags: 0x1_0009, argsz: 16)
    }

    // MARK: MIG_PRECOPY_INFOv2

    @Test func enablingPreCopyInfoV2SetsFeature12WithNoPayload() throws {
        let kernel = RecordingKernel()
        let device = try openTestDevice(kernel)
        try device.enablePreCopyInfoV2()
        _ = try Self.featureCall(kernel, flags: 0x2_000C, argsz: 8)
    }

    @Test func preCopyInfoV2RefusalNamesTheFeature() throws {
        let kernel = RecordingKernel()
        let device = try openTestDevice(kernel)
        kernel.onIoctl(Req.deviceFeature, on: .device, .fail(.noIoctl))
        let error = #expect(throws: SyscallError.self) { try device.enablePreCopyInfoV2() }
        #expect(error?.operation == "VFIO_DEVICE_FEATURE[MIG_PRECOPY_INFOv2|SET]")
        #expect(error?.errno == .noIoctl)
    }

    // MARK: DMA logging

    @Test func startDMALoggingPointsAtAReadableRangeTableAndReturnsThePageSize() throws {
        let kernel = RecordingKernel()
        let device = try openTestDevice(kernel)
        var tableSeenByKernel: [UInt8] = []
        kernel.onIoctl(Req.deviceFeature, on: .device, .answer { inv throws(Errno) in
            let count = try inv.field(UInt32.self, at: 16)
            let pointer = try inv.field(UInt64.self, at: 24)
            tableSeenByKernel = try inv.memory.copyIn(from: UInt(pointer), count: Int(count) * 16)
            try inv.setField(UInt64(0x20_0000), at: 8) // the driver picks 2 MiB
            return 0
        })
        let ranges = [
            DMARange(iova: 0x1000_0000, length: 0x40_0000), DMARange(iova: 0x8000_0000, length: 0x1000),
            DMARange(iova: 0x1_0000_0000, length: 0x2000_0000),
        ]
        let chosen = try device.startDMALogging(ranges: ranges, pageSize: 4096)
        #expect(chosen == 0x20_0000)
        #expect(tableSeenByKernel == ranges.flatMap { leBytes($0.iova) + leBytes($0.length) })

        let call = try Self.featureCall(kernel, flags: 0x2_0006, argsz: 32)
        let bytes = call.argumentBytes
        #expect(bytes.u64(8) == 4096) // page_size going in
        #expect(bytes.u32(16) == 3) // num_ranges
        #expect(bytes.u32(20) == 0) // __reserved
        let pointer = UInt(try #require(bytes.u64(24)))
        #expect(call.regions[pointer].map { Array($0.prefix(48)) } == tableSeenByKernel)
        #expect(!call.writableRegions.contains(pointer))
    }

    @Test func startDMALoggingTooManyRangesNamesTheFeature() throws {
        let kernel = RecordingKernel()
        let device = try openTestDevice(kernel)
        kernel.onIoctl(Req.deviceFeature, .fail(Errno(rawValue: 7)))
        let error = #expect(throws: SyscallError.self) {
            _ = try device.startDMALogging(ranges: [DMARange(iova: 0, length: 0x1000)], pageSize: 4096)
        }
        #expect(error?.description.hasPrefix("VFIO_DEVICE_FEATURE[DMA_LOGGING_START|SET] on device 0000:06:0d.0 failed: E2BIG") == true)
    }

    @Test func stopDMALoggingIsASetWithoutPayload() throws {
        let kernel = RecordingKernel()
        let device = try openTestDevice(kernel)
        try device.stopDMALogging()
        _ = try Self.featureCall(kernel, flags: 0x2_0007, argsz: 8)
    }

    @Test func dmaLoggingReportPreZeroesAndDecodesBits() throws {
        let kernel = RecordingKernel()
        let device = try openTestDevice(kernel)
        var zeroedOnEntry = false
        kernel.onIoctl(Req.deviceFeature, on: .device, .answer { inv throws(Errno) in
            let length = try inv.field(UInt64.self, at: 16)
            let pageSize = try inv.field(UInt64.self, at: 24)
            let bitmap = UInt(try inv.field(UInt64.self, at: 32))
            let bytes = Int((length / pageSize + 63) / 64 * 8)
            zeroedOnEntry = try inv.memory.copyIn(from: bitmap, count: bytes).allSatisfy { $0 == 0 }
            // Dirty: the first page, and the page at iova + 130 pages (word 2, bit 2).
            try inv.memory.store(UInt64(1), at: bitmap)
            try inv.memory.store(UInt64(1) << 2, at: bitmap + 16)
            return 0
        })
        var bitmap = [UInt64](repeating: .max, count: 3)
        try device.dmaLoggingReport(iova: 0x1000_0000, length: 192 * 4096, pageSize: 4096, into: &bitmap)
        #expect(zeroedOnEntry)
        #expect(bitmap == [1, 0, 4])

        let call = try Self.featureCall(kernel, flags: 0x1_0008, argsz: 40)
        let bytes = call.argumentBytes
        #expect(bytes.u64(8) == 0x1000_0000)
        #expect(bytes.u64(16) == 192 * 4096)
        #expect(bytes.u64(24) == 4096)
        let pointer = UInt(try #require(bytes.u64(32)))
        #expect(call.regions[pointer]?.count == 24)
        #expect(call.writableRegions.contains(pointer))
    }

    @Test func dmaLoggingReportFailureNamesTheFeature() throws {
        let kernel = RecordingKernel()
        let device = try openTestDevice(kernel)
        kernel.onIoctl(Req.deviceFeature, .fail(.invalidArgument))
        var bitmap = [UInt64](repeating: 0, count: 1)
        let error = #expect(throws: SyscallError.self) {
            try device.dmaLoggingReport(iova: 0, length: 4096, pageSize: 4096, into: &bitmap)
        }
        #expect(error?.operation == "VFIO_DEVICE_FEATURE[DMA_LOGGING_REPORT|GET]")
    }
}
