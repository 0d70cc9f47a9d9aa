// Group ioctls: status decode, SET_CONTAINER's pointer-to-fd argument, the NUL-terminated
// device name, and that every one goes to the group fd.
import SystemPackage
import Testing
import VFIOSyscalls

@Suite struct GroupIoctlTests {
    @Test func openRecordsTheGroupPath() throws {
        let kernel = RecordingKernel()
        let group = try GroupFD.open(groupPath, kernel: kernel)
        #expect(kernel.kind(of: group.rawValue) == .group)
        #expect(kernel.calls.only?.path == "/dev/vfio/12")
        #expect(kernel.calls.only?.syscall == .open)
    }

    @Test func openFailureNamesTheGroup() {
        let kernel = RecordingKernel()
        kernel.script(.open, .fail(.resourceBusy))
        let error = #expect(throws: SyscallError.self) { _ = try GroupFD.open(groupPath, kernel: kernel) }
        #expect(error?.description.hasPrefix("open on group /dev/vfio/12 failed: EBUSY") == true)
    }

    @Test(arguments: [(0 as UInt32, false, false), (1, true, false), (2, false, true), (3, true, true), (0xFFFF_FFFC, false, false)])
    func statusDecodesViableAndContainerSet(flags: UInt32, viable: Bool, containerSet: Bool) throws {
        let kernel = RecordingKernel()
        let group = try GroupFD.open(groupPath, kernel: kernel)
        kernel.onIoctl(Req.groupGetStatus, on: .group, .answer { inv throws(Errno) in
            try inv.setField(flags, at: 4)
            return 0
        })
        let status = try group.status()
        #expect(status.viable == viable)
        #expect(status.containerSet == containerSet)
        let call = try #require(kernel.ioctls.only)
        #expect(call.request == 0x3B67)
        #expect(call.kind == .group)
        #expect(call.argumentBytes == leBytes(UInt32(8)) + leBytes(UInt32(0)))
    }

    @Test func setContainerPassesAPointerToTheContainerFdNumber() throws {
        let kernel = RecordingKernel()
        let container = try ContainerFD.open(kernel: kernel)
        let group = try GroupFD.open(groupPath, kernel: kernel)
        var seen: Int32?
        kernel.onIoctl(Req.groupSetContainer, on: .group, .answer { inv throws(Errno) in
            // What the kernel does: get_user an int from the pointer.
            seen = try inv.field(Int32.self, at: 0)
            return 0
        })
        try group.setContainer(container)
        #expect(seen == container.rawValue)
        let call = try #require(kernel.ioctls.only)
        #expect(call.request == 0x3B68)
        #expect(call.kind == .group)
        #expect(call.fd == group.rawValue)
        #expect(call.value == nil)
        #expect(call.argumentBytes.count == 4)
        #expect(call.argumentBytes.i32(0) == container.rawValue)
    }

    @Test func setContainerFailureNamesTheGroup() throws {
        let kernel = RecordingKernel()
        let container = try ContainerFD.open(kernel: kernel)
        let group = try GroupFD.open(groupPath, kernel: kernel)
        kernel.onIoctl(Req.groupSetContainer, .fail(.invalidArgument))
        let error = #expect(throws: SyscallError.self) { try group.setContainer(container) }
        #expect(error?.description.hasPrefix("VFIO_GROUP_SET_CONTAINER on group /dev/vfio/12 failed: EINVAL") == true)
    }

    @Test func unsetContainerHasNoArgument() throws {
        let kernel = RecordingKernel()
        let group = try GroupFD.open(groupPath, kernel: kernel)
        try group.unsetContainer()
        let call = try #require(kernel.ioctls.only)
        #expect(call.request == 0x3B69)
        #expect(call.kind == .group)
        #expect(call.noArgument)

        kernel.onIoctl(Req.groupUnsetContainer, .fail(.resourceBusy))
        let error = #expect(throws: SyscallError.self) { try group.unsetContainer() }
        #expect(error?.description.hasPrefix("VFIO_GROUP_UNSET_CONTAINER on group /dev/vfio/12 failed: EBUSY") == true)
    }

    @Test(arguments: ["0000:06:0d.0", "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001"])
    func openDevicePassesANulTerminatedNameAndAdoptsTheFd(name: String) throws {
        let kernel = RecordingKernel()
        let group = try GroupFD.open(groupPath, kernel: kernel)
        var read: String?
        kernel.onIoctl(Req.groupGetDeviceFD, on: .group, .answer { inv throws(Errno) in
            read = try inv.memory.loadCString(at: inv.address)
            return Int(inv.newDescriptor(.device, name: read ?? ""))
        })
        let device = try group.openDevice(name)
        #expect(read == name)
        #expect(device.name == name)
        #expect(kernel.kind(of: device.rawValue) == .device)
        let call = try #require(kernel.ioctls.only)
        #expect(call.request == 0x3B6A)
        #expect(call.kind == .group)
        #expect(call.argumentBytes == Array(name.utf8) + [0])
    }

    @Test func openDeviceFailureNamesTheDeviceAndGroup() throws {
        let kernel = RecordingKernel()
        let group = try GroupFD.open(groupPath, kernel: kernel)
        kernel.onIoctl(Req.groupGetDeviceFD, .fail(.noSuchFileOrDirectory))
        let error = #expect(throws: SyscallError.self) { _ = try group.openDevice(deviceName) }
        #expect(error?.description.hasPrefix("VFIO_GROUP_GET_DEVICE_FD(0000:06:0d.0) on group /dev/vfio/12 failed: ENOENT") == true)
    }
}
