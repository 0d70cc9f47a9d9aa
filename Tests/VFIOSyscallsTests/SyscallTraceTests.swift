// Cross-cutting properties of the syscall layer, seen in the recorded trace: EINTR is retried
// transparently with the same argument, close never is, each request reaches only its kind
// of fd (0x3B75 is two different ioctls), owners close their fd once, and errors read
// "<operation> on <object> failed: <ERRNO>".
import SystemPackage
import Testing
import VFIOBuffers
import VFIOSyscalls

@Suite struct SyscallTraceTests {
    /// The last three attempts of `syscall` were EINTR, EINTR, success, with identical
    /// arguments (the wrapper rebuilt nothing between attempts).
    static func expectRetriedTwice(
        _ kernel: RecordingKernel, _ syscall: SyscallKind, request: UInt? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let attempts = kernel.calls.filter { $0.syscall == syscall && (request == nil || $0.request == request) }
        #expect(attempts.count == 3, sourceLocation: sourceLocation)
        guard attempts.count == 3 else { return }
        #expect(attempts.map(\.error) == [.interrupted, .interrupted, nil], sourceLocation: sourceLocation)
        #expect(Set(attempts.map(\.argumentBytes)).count == 1, sourceLocation: sourceLocation)
        #expect(Set(attempts.map(\.fd)).count == 1, sourceLocation: sourceLocation)
        #expect(Set(attempts.map(\.value)).count == 1, sourceLocation: sourceLocation)
        #expect(Set(attempts.map(\.offset)).count == 1, sourceLocation: sourceLocation)
    }

    @Test func containerWrappersRetryEINTR() throws {
        let kernel = RecordingKernel()
        kernel.script(.open, .interrupted(2))
        let container = try ContainerFD.open(kernel: kernel)
        Self.expectRetriedTwice(kernel, .open)
        #expect(kernel.kind(of: container.rawValue) == .container)

        kernel.onIoctl(Req.checkExtension, .interrupted(2) { _ throws(Errno) in 1 })
        #expect(try container.checkExtension(3))
        Self.expectRetriedTwice(kernel, .ioctl, request: 0x3B65)

        kernel.onIoctl(Req.iommuGetInfo, .interrupted(2, then: iommuInfoKernel(capOffset: 24, caps: [(24, Cap.dmaAvail(next: 0, 77))])))
        #expect(try container.iommuInfo().dmaAvailable == 77)
        Self.expectRetriedTwice(kernel, .ioctl, request: 0x3B70)

        kernel.onIoctl(Req.iommuUnmapDMA, .interrupted(2) { inv throws(Errno) in
            try inv.setField(UInt64(0x2000), at: 16)
            return 0
        })
        #expect(try container.unmapDMA(iova: 0x10_0000, size: 0x2000) == 0x2000)
        Self.expectRetriedTwice(kernel, .ioctl, request: 0x3B72)
    }

    @Test func groupWrappersRetryEINTR() throws {
        let kernel = RecordingKernel()
        let container = try ContainerFD.open(kernel: kernel)
        let group = try GroupFD.open(groupPath, kernel: kernel)

        kernel.onIoctl(Req.groupSetContainer, .interrupted(2))
        try group.setContainer(container)
        Self.expectRetriedTwice(kernel, .ioctl, request: 0x3B68)

        kernel.onIoctl(Req.groupGetDeviceFD, .interrupted(2))
        let device = try group.openDevice(deviceName)
        Self.expectRetriedTwice(kernel, .ioctl, request: 0x3B6A)
        // Only the successful attempt installed a device fd.
        #expect(kernel.ioctls.filter { $0.request == 0x3B6A }.compactMap(\.result) == [Int(device.rawValue)])
    }

    @Test func deviceWrappersRetryEINTR() throws {
        let kernel = RecordingKernel()
        let device = try openTestDevice(kernel)

        kernel.onIoctl(Req.deviceFeature, on: .device, .interrupted(2) { inv throws(Errno) in
            try inv.setField(Int32(inv.newDescriptor(.data, name: "save")), at: 12)
            return 0
        })
        let data = try device.setMigrationState(6)
        Self.expectRetriedTwice(kernel, .ioctl, request: 0x3B75)
        // Only the successful attempt installed a data fd, and the owner holds it.
        #expect(kernel.calls.compactMap { call in call.request == 0x3B75 ? call.error : nil } == [.interrupted, .interrupted])
        guard let data else {
            Issue.record("no data fd adopted")
            return
        }
        #expect(kernel.kind(of: data.rawValue) == .data)
        #expect(data.rawValue == device.rawValue + 1)

        kernel.script(.pread, .interrupted(2) { inv throws(Errno) in
            try inv.memory.copyOut([1, 2, 3, 4], to: inv.address)
            return 4
        })
        kernel.onIoctl(Req.deviceGetRegionInfo, .answer { inv throws(Errno) in
            try inv.setField(UInt64(0x1000), at: 16)
            try inv.setField(UInt64(0x7_0000_0000), at: 24)
            return 0
        })
        let config = try device.regionInfo(7)
        #expect(try device.readRegion(config, at: 0, count: 4) == [1, 2, 3, 4])
        Self.expectRetriedTwice(kernel, .pread)
    }

    @Test func dataFDWrappersRetryEINTR() throws {
        let kernel = RecordingKernel()
        let data = try openTestDataFD(kernel, state: 6)
        let buffer = IOBuffer(capacity: 4096)

        kernel.script(.read, .interrupted(2) { _ throws(Errno) in 10 })
        #expect(try data.read(into: buffer, range: 0..<4096) == 10)
        Self.expectRetriedTwice(kernel, .read)

        kernel.script(.write, .interrupted(2))
        #expect(try data.write(from: buffer, range: 0..<100) == 100)
        Self.expectRetriedTwice(kernel, .write)

        kernel.onIoctl(Req.migGetPrecopyInfo, .interrupted(2) { inv throws(Errno) in
            try inv.setField(UInt64(5), at: 8)
            return 0
        })
        #expect(try data.preCopyInfo().initialBytes == 5)
        Self.expectRetriedTwice(kernel, .ioctl, request: 0x3B79)

        kernel.script(.setNonBlocking, .interrupted(2))
        try data.makeNonBlocking()
        Self.expectRetriedTwice(kernel, .setNonBlocking)
    }

    @Test func anErrorAfterEINTRIsReportedWithItsOwnErrno() throws {
        let kernel = RecordingKernel()
        let device = try openTestDevice(kernel)
        kernel.onIoctl(Req.deviceFeature, .fail(.noDevice, after: 3))
        let error = #expect(throws: SyscallError.self) { _ = try device.migrationState() }
        #expect(error?.errno == .noDevice)
        #expect(error?.description.hasPrefix("VFIO_DEVICE_FEATURE[MIG_DEVICE_STATE|GET] on device 0000:06:0d.0 failed: ENODEV") == true)
        #expect(kernel.ioctls.filter { $0.request == 0x3B75 }.count == 4)
    }

    @Test func ownersCloseTheirFdOnceAndCloseIsNotRetried() throws {
        let kernel = RecordingKernel()
        var fds: [CInt] = []
        do {
            let container = try ContainerFD.open(kernel: kernel)
            let group = try GroupFD.open(groupPath, kernel: kernel)
            let device = try group.openDevice(deviceName)
            fds = [container.rawValue, group.rawValue, device.rawValue]
            // Every close in this scope is interrupted once; Linux has closed the fd anyway.
            for _ in fds { kernel.script(.close, .fail(.interrupted)) }
            #expect(fds.allSatisfy { kernel.closeCount($0) == 0 })
        }
        #expect(fds.map { kernel.closeCount($0) } == [1, 1, 1])
        #expect(fds.allSatisfy { !kernel.isOpen($0) })
        #expect(kernel.calls.filter { $0.syscall == .close }.count == 3)
    }

    /// The legacy bring-up and a migration round; every request must land on its own kind of fd.
    @Test func everyRequestReachesOnlyItsKindOfFd() throws {
        let kernel = RecordingKernel()
        let container = try ContainerFD.open(kernel: kernel)
        _ = try container.apiVersion()
        _ = try container.checkExtension(3)
        let group = try GroupFD.open(groupPath, kernel: kernel)
        _ = try group.status()
        try group.setContainer(container)
        try container.setIOMMU(3)
        _ = try container.iommuInfo()
        try container.mapDMA(vaddr: 0x7000_0000, iova: 0, size: 0x1000, access: .readWrite)
        try container.startDirtyTracking()
        var bitmap = [UInt64](repeating: 0, count: 1)
        try container.dirtyBitmap(iova: 0, size: 0x1000, pageSize: 0x1000, into: &bitmap)
        let device = try group.openDevice(deviceName)
        _ = try device.info()
        _ = try device.migrationFlags()
        _ = try device.migrationState()
        _ = try device.probeFeature(.dmaLoggingStart, for: .set)
        _ = try device.startDMALogging(ranges: [DMARange(iova: 0, length: 0x1000)], pageSize: 0x1000)
        try device.dmaLoggingReport(iova: 0, length: 0x1000, pageSize: 0x1000, into: &bitmap)
        try device.stopDMALogging()
        kernel.onIoctl(Req.deviceFeature, .answer { inv throws(Errno) in
            try inv.setField(Int32(inv.newDescriptor(.data, name: "save")), at: 12)
            return 0
        })
        if let data = try device.setMigrationState(6) {
            _ = try data.preCopyInfo()
        }
        _ = try device.regionInfo(0)
        _ = try device.irqInfo(0)
        _ = try container.unmapDMA(iova: 0, size: 0x1000)
        _ = try container.unmapAllDMA()
        try device.reset()
        try group.unsetContainer()

        let expected: [UInt: FDKind] = [
            0x3B64: .container, 0x3B65: .container, 0x3B66: .container, 0x3B70: .container,
            0x3B71: .container, 0x3B72: .container,
            0x3B67: .group, 0x3B68: .group, 0x3B69: .group, 0x3B6A: .group,
            0x3B6B: .device, 0x3B6C: .device, 0x3B6D: .device, 0x3B6F: .device,
            0x3B79: .data,
        ]
        let ioctls = kernel.ioctls
        #expect(ioctls.count == 25)
        for call in ioctls {
            let request = try #require(call.request)
            if request == 0x3B75 {
                // DIRTY_PAGES flags are 1/2/4; a feature always has GET, SET or PROBE set.
                let flags = try #require(call.argumentBytes.u32(4))
                #expect(call.kind == (flags >= 0x1_0000 ? .device : .container), "flags 0x\(String(flags, radix: 16))")
            } else {
                #expect(call.kind == expected[request], "request 0x\(String(request, radix: 16))")
            }
        }
        #expect(ioctls.filter { $0.request == 0x3B75 && $0.kind == .container }.count == 2)
        #expect(ioctls.filter { $0.request == 0x3B75 && $0.kind == .device }.count == 7)
    }

    @Test func scriptsForOneKindAreNotConsumedByTheOther() throws {
        // setDirtyTracking and migrationState share 0x3B75; a device-only script must wait.
        let kernel = RecordingKernel()
        let container = try ContainerFD.open(kernel: kernel)
        let device = try openTestDevice(kernel)
        kernel.onIoctl(0x3B75, on: .device, .answer { inv throws(Errno) in
            try inv.setField(UInt32(5), at: 8)
            return 0
        })
        try container.stopDirtyTracking()
        #expect(kernel.pendingScripts == 1)
        #expect(try device.migrationState() == 5)
        #expect(kernel.pendingScripts == 0)
        let shared = kernel.ioctls.filter { $0.request == 0x3B75 }
        #expect(shared.map(\.kind) == [.container, .device])
        #expect(shared.map(\.fd) == [container.rawValue, device.rawValue])
        #expect(shared.map { $0.argumentBytes.u32(4) } == [0x2, 0x1_0002])
    }

    @Test func errorDescriptionsNameOperationObjectAndErrno() {
        let error = SyscallError(operation: "VFIO_DEVICE_FEATURE[MIG_DEVICE_STATE|SET]", object: "device 0000:06:0d.0", errno: .invalidArgument)
        #expect(error.description.hasPrefix("VFIO_DEVICE_FEATURE[MIG_DEVICE_STATE|SET] on device 0000:06:0d.0 failed: EINVAL ("))
        let names: [(CInt, String)] = [(22, "EINVAL"), (25, "ENOTTY"), (19, "ENODEV"), (42, "ENOMSG"), (14, "EFAULT"), (95, "EOPNOTSUPP"), (4, "EINTR")]
        for (raw, name) in names {
            #expect(SyscallError.errnoName(Errno(rawValue: raw)) == name)
        }
        #expect(SyscallError.errnoName(Errno(rawValue: 200)) == "errno 200")
    }

    @Test func ebadfOnAnOwnedDescriptorStopsTheProcess() async {
        await #expect(processExitsWith: .failure) {
            let kernel = RecordingKernel()
            let container = try ContainerFD.open(kernel: kernel)
            kernel.onIoctl(Req.getAPIVersion, .fail(.badFileDescriptor))
            _ = try container.apiVersion()
        }
    }
}
