// Teardown must run in the kernel's order: device fds closed, then the group leaves its
// container (VFIO_GROUP_UNSET_CONTAINER fails with EBUSY while a device fd is open), then the
// group fd and the container fd close. A tracing kernel in front of the emulator records it.
import SystemPackage
import Testing
import VFIOKernel
import VFIOMock
import VFIOSyscalls

final class TracingKernel: KernelInterface, @unchecked Sendable {
    let inner: MockKernel
    var log: [String] = []
    var kinds: [CInt: String] = [:]
    let name = "tracing"
    init(_ inner: MockKernel) { self.inner = inner }

    func open(_ path: String, _ flags: OpenFlags) throws(Errno) -> CInt {
        let fd = try inner.open(path, flags)
        kinds[fd] = path.hasSuffix("/vfio") ? "container" : "group"
        return fd
    }
    func close(_ fd: CInt) throws(Errno) {
        log.append("close \(kinds[fd] ?? "fd")")
        try inner.close(fd)
    }
    func ioctl(_ fd: CInt, _ request: UInt, _ argument: IoctlArgument) throws(Errno) -> CInt {
        do {
            let result = try inner.ioctl(fd, request, argument)
            if request == 0x3B69 { log.append("unset container") }
            if request == 0x3B6A { kinds[result] = "device" }
            return result
        } catch {
            if request == 0x3B69 { log.append("unset container failed \(error)") }
            throw error
        }
    }
    func read(_ fd: CInt, into region: UserRegion) throws(Errno) -> Int { try inner.read(fd, into: region) }
    func write(_ fd: CInt, from region: UserRegion) throws(Errno) -> Int { try inner.write(fd, from: region) }
    func pread(_ fd: CInt, into region: UserRegion, offset: Int64) throws(Errno) -> Int { try inner.pread(fd, into: region, offset: offset) }
    func pwrite(_ fd: CInt, from region: UserRegion, offset: Int64) throws(Errno) -> Int { try inner.pwrite(fd, from: region, offset: offset) }
    func setNonBlocking(_ fd: CInt, _ enabled: Bool) throws(Errno) { try inner.setNonBlocking(fd, enabled) }
}

@Suite struct CloseOrderTests {
    private func openAndDrop(_ kernel: TracingKernel, _ device: MockDevice) throws {
        let opened = try VFIODevice.open(
            vfioName: device.kernelName, groupNumber: device.groupNumber, kernel: kernel,
            identity: DeviceIdentity(driverName: "mock", driverVersion: "1"))
        _ = try opened.info()
    }

    @Test func devicesCloseBeforeTheGroupLeavesItsContainer() throws {
        let mock = MockKernel()
        let device = mock.addDevice(MockDeviceConfiguration(name: "order"))
        let kernel = TracingKernel(mock)
        try openAndDrop(kernel, device)
        #expect(kernel.log == ["close device", "unset container", "close group", "close container"])
        #expect(mock.openDescriptorCount == 0)
    }
}
