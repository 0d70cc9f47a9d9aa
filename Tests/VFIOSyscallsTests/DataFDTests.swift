// The migration data fd: read/write go to the data fd with the caller's buffer range,
// VFIO_MIG_GET_PRECOPY_INFO (0x3B79) is issued on the data fd, O_NONBLOCK, and the fd is
// closed exactly once whichever way the owner ends.
import SystemPackage
import Testing
import VFIOBuffers
import VFIOSyscalls

@Suite struct DataFDTests {
    @Test func readFillsTheRequestedRangeOfTheBuffer() throws {
        let kernel = RecordingKernel()
        let data = try openTestDataFD(kernel)
        let stream: [UInt8] = Array("opaque device state".utf8)
        kernel.script(.read, on: .data, .answer { inv throws(Errno) in
            guard let region = inv.region else { throw .invalidArgument }
            let n = min(region.count, stream.count)
            try inv.memory.copyOut(stream.prefix(n), to: region.address)
            return n
        })
        let buffer = IOBuffer(capacity: 4096)
        let n = try data.read(into: buffer, range: 100..<164)
        #expect(n == stream.count)
        #expect(buffer.bytes(100..<(100 + n)) == stream)
        #expect(buffer.bytes(0..<100).allSatisfy { $0 == 0 })
        let call = try #require(kernel.calls.last { $0.syscall == .read })
        #expect(call.fd == data.rawValue)
        #expect(call.kind == .data)
        #expect(call.region?.count == 64)
        #expect(call.region?.writable == true)
    }

    @Test func readEndOfStreamIsZero() throws {
        let kernel = RecordingKernel()
        let data = try openTestDataFD(kernel)
        let buffer = IOBuffer(capacity: 4096)
        #expect(try data.read(into: buffer, range: 0..<4096) == 0)
    }

    @Test(arguments: [(42 as CInt, "ENOMSG"), (11, "EAGAIN"), (19, "ENODEV")])
    func readErrnosAreThrownNamingTheDataFdAndDevice(raw: CInt, name: String) throws {
        let kernel = RecordingKernel()
        let data = try openTestDataFD(kernel)
        kernel.script(.read, .fail(Errno(rawValue: raw)))
        let buffer = IOBuffer(capacity: 4096)
        let error = #expect(throws: SyscallError.self) { _ = try data.read(into: buffer, range: 0..<4096) }
        #expect(error?.errno.rawValue == raw)
        #expect(error?.description.hasPrefix("read on migration data fd \(data.rawValue) of device 0000:06:0d.0 failed: \(name)") == true)
    }

    @Test func writeHandsTheKernelExactlyTheRangeReadOnly() throws {
        let kernel = RecordingKernel()
        let data = try openTestDataFD(kernel, state: 4) // RESUMING
        let buffer = IOBuffer(capacity: 4096)
        let payload = (0..<200).map { UInt8(truncatingIfNeeded: $0 * 7) }
        buffer.write(payload, at: 50)
        kernel.script(.write, on: .data, .answer { _ throws(Errno) in 120 }) // a short write
        let n = try data.write(from: buffer, range: 50..<250)
        #expect(n == 120)
        let call = try #require(kernel.calls.last { $0.syscall == .write })
        #expect(call.kind == .data)
        #expect(call.fd == data.rawValue)
        #expect(call.argumentBytes == payload)
        #expect(call.region?.writable == false)
    }

    @Test func writeErrorNamesTheDataFd() throws {
        let kernel = RecordingKernel()
        let data = try openTestDataFD(kernel, state: 4)
        kernel.script(.write, .fail(.operationNotSupported))
        let buffer = IOBuffer(capacity: 64)
        let error = #expect(throws: SyscallError.self) { _ = try data.write(from: buffer, range: 0..<64) }
        #expect(error?.operation == "write")
        #expect(error?.description.contains("EOPNOTSUPP") == true)
        #expect(error?.object.hasSuffix("of device 0000:06:0d.0") == true)
    }

    @Test func preCopyInfoIsIssuedOnTheDataFdWithArgsz24() throws {
        let kernel = RecordingKernel()
        let data = try openTestDataFD(kernel, state: 6) // PRE_COPY
        kernel.onIoctl(Req.migGetPrecopyInfo, on: .data, .answer { inv throws(Errno) in
            try inv.setField(UInt64(0x10_0000), at: 8)
            try inv.setField(UInt64(0x2000), at: 16)
            try inv.setField(UInt32(1), at: 4) // REINIT, as a v2 kernel reports it
            return 0
        })
        let info = try data.preCopyInfo()
        #expect(info.initialBytes == 0x10_0000)
        #expect(info.dirtyBytes == 0x2000)
        #expect(info.flags == 1)
        #expect(info.reinitialized)
        let call = try #require(kernel.lastIoctl(0x3B79))
        #expect(call.kind == .data)
        #expect(call.fd == data.rawValue)
        #expect(call.argumentBytes.count == 24)
        #expect(call.argumentBytes.u32(0) == 24)
        #expect(call.argumentBytes.dropFirst(4).allSatisfy { $0 == 0 })
    }

    @Test func preCopyInfoOutsidePreCopyNamesTheIoctl() throws {
        let kernel = RecordingKernel()
        let data = try openTestDataFD(kernel)
        kernel.onIoctl(Req.migGetPrecopyInfo, .fail(.invalidArgument))
        let error = #expect(throws: SyscallError.self) { _ = try data.preCopyInfo() }
        #expect(error?.description.hasPrefix("VFIO_MIG_GET_PRECOPY_INFO on migration data fd \(data.rawValue) of device 0000:06:0d.0 failed: EINVAL") == true)
    }

    @Test func setNonBlockingGoesToTheDataFd() throws {
        let kernel = RecordingKernel()
        let data = try openTestDataFD(kernel)
        try data.makeNonBlocking()
        try data.makeBlocking()
        let calls = kernel.calls.filter { $0.syscall == .setNonBlocking }
        #expect(calls.map(\.nonBlocking) == [true, false])
        #expect(calls.allSatisfy { $0.kind == .data && $0.fd == data.rawValue })
    }

    @Test func explicitCloseClosesExactlyOnce() throws {
        let kernel = RecordingKernel()
        let data = try openTestDataFD(kernel)
        let fd = data.rawValue
        try data.close()
        #expect(kernel.closeCount(fd) == 1)
        #expect(kernel.calls.filter { $0.syscall == .close && $0.fd == fd }.count == 1)
    }

    @Test func droppingTheOwnerClosesExactlyOnce() throws {
        let kernel = RecordingKernel()
        var fd: CInt = -1
        do {
            let data = try openTestDataFD(kernel)
            fd = data.rawValue
            #expect(kernel.closeCount(fd) == 0)
        }
        #expect(kernel.closeCount(fd) == 1)
        #expect(!kernel.isOpen(fd))
    }

    @Test(arguments: [Errno.interrupted, .ioError])
    func aFailedCloseIsReportedAndNeverRetried(errno: Errno) throws {
        let kernel = RecordingKernel()
        let data = try openTestDataFD(kernel)
        let fd = data.rawValue
        kernel.script(.close, on: .data, .fail(errno))
        // close consumes the owner, so it cannot run inside #expect's closure.
        var error: SyscallError?
        do { try data.close() } catch let e { error = e }
        #expect(error != nil)
        #expect(error?.operation == "close")
        #expect(error?.errno == errno)
        #expect(error?.object == "migration data fd \(fd) of device 0000:06:0d.0")
        #expect(kernel.closeCount(fd) == 1)
        #expect(!kernel.isOpen(fd))
    }
}
