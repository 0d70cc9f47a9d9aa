// A VFIO group joined to a container. It holds its container, and every device holds its
// group, so closing runs in the kernel's order: devices, then the group leaves, then the container.
import VFIOCore
import VFIOSyscalls

public final class VFIOGroup: Sendable {
    let fd: GroupFD
    public let number: Int
    public let container: VFIOContainer

    /// Opens /dev/vfio/`number`, requires it viable, joins `container` and sets its IOMMU.
    public init(number: Int, container: VFIOContainer, devRoot: String = "/dev") throws(VFIOError) {
        self.number = number
        self.container = container
        let path = "\(devRoot)/vfio/\(number)"
        fd = try VFIOError.wrapping { () throws(SyscallError) in try GroupFD.open(path, kernel: container.kernel) }
        let status = try VFIOError.wrapping { () throws(SyscallError) in try fd.status() }
        guard status.viable else {
            throw VFIOError(
                .busy, "IOMMU group \(number) is not viable", device: "group \(path)",
                hint: "bind every device in IOMMU group \(number) to vfio-pci, or unbind it")
        }
        if !status.containerSet {
            try VFIOError.wrapping { () throws(SyscallError) in try fd.setContainer(container.fd) }
        }
        try container.ensureIOMMU()
    }

    deinit {
        // Device fds are closed by now (each device holds this group); errors here leave nothing to undo.
        try? fd.unsetContainer()
    }

    /// VFIO_GROUP_GET_STATUS.
    public func status() throws(VFIOError) -> GroupStatus {
        try VFIOError.wrapping { () throws(SyscallError) in try fd.status() }
    }

    func openDeviceFD(_ name: String) throws(VFIOError) -> DeviceFD {
        try VFIOError.wrapping { () throws(SyscallError) in try fd.openDevice(name) }
    }
}
