// Group ioctls (/dev/vfio/N).
import CVFIO
import SystemPackage

extension KernelFD where Kind == GroupKind {
    /// VFIO_GROUP_GET_STATUS.
    public func status() throws(SyscallError) -> GroupStatus {
        var arg = ArgumentBuffer(byteCount: MemoryLayout<cvfio_group_status>.size)
        var status = cvfio_group_status()
        status.argsz = UInt32(MemoryLayout<cvfio_group_status>.size)
        arg.store(status)
        _ = try arg.withArgument { (a) throws(SyscallError) in try call("VFIO_GROUP_GET_STATUS", UInt(CVFIO_GROUP_GET_STATUS), a) }
        let out = arg.load(cvfio_group_status.self)
        return GroupStatus(
            viable: out.flags & UInt32(CVFIO_GROUP_FLAGS_VIABLE) != 0,
            containerSet: out.flags & UInt32(CVFIO_GROUP_FLAGS_CONTAINER_SET) != 0)
    }

    /// VFIO_GROUP_SET_CONTAINER: the argument is a pointer to the container's fd number.
    public func setContainer(_ container: borrowing ContainerFD) throws(SyscallError) {
        var arg = ArgumentBuffer(byteCount: 4)
        arg.store(Int32(container.rawValue))
        _ = try arg.withArgument { (a) throws(SyscallError) in
            try call("VFIO_GROUP_SET_CONTAINER", UInt(CVFIO_GROUP_SET_CONTAINER), a)
        }
    }

    /// VFIO_GROUP_UNSET_CONTAINER: every device fd of the group must be closed first.
    public func unsetContainer() throws(SyscallError) {
        _ = try call("VFIO_GROUP_UNSET_CONTAINER", UInt(CVFIO_GROUP_UNSET_CONTAINER), .none)
    }

    /// VFIO_GROUP_GET_DEVICE_FD: `name` is a PCI address ("0000:06:0d.0") or an mdev UUID.
    public func openDevice(_ name: String) throws(SyscallError) -> DeviceFD {
        var bytes = Array(name.utf8)
        bytes.append(0)
        var arg = ArgumentBuffer(byteCount: bytes.count)
        for (i, b) in bytes.enumerated() { arg.store(b, at: i) }
        let fd = try arg.withArgument { (a) throws(SyscallError) in
            try call("VFIO_GROUP_GET_DEVICE_FD(\(name))", UInt(CVFIO_GROUP_GET_DEVICE_FD), a)
        }
        return DeviceFD(kernel: kernel, rawValue: fd, label: name)
    }
}
