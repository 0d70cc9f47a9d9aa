// One owner type for every VFIO descriptor, told apart by a phantom kind: the ioctls a kind
// accepts are the methods of that kind's extension, so 0x3B75 (VFIO_IOMMU_DIRTY_PAGES on a
// container, VFIO_DEVICE_FEATURE on a device) can only ever be issued on the right fd.
// Opening, the one EINTR policy, error naming and closing are written once, here.
import SystemPackage

/// What a descriptor refers to; decides which ioctls its owner offers.
public protocol DescriptorKind {
    /// How messages name an object of this kind ("container", "group", "device").
    static var noun: String { get }
}

/// `/dev/vfio/vfio`: container ioctls.
public enum ContainerKind: DescriptorKind { public static let noun = "container" }
/// `/dev/vfio/N`: group ioctls.
public enum GroupKind: DescriptorKind { public static let noun = "group" }
/// A device fd from VFIO_GROUP_GET_DEVICE_FD: device ioctls and VFIO_DEVICE_FEATURE.
public enum DeviceKind: DescriptorKind { public static let noun = "device" }
/// A migration data fd from a MIG_DEVICE_STATE SET: read/write and PRECOPY_INFO.
public enum MigrationDataKind: DescriptorKind { public static let noun = "migration data fd" }

/// An open descriptor of kind `Kind`, closed exactly once: by `close()` or when the owner ends.
public struct KernelFD<Kind: DescriptorKind>: ~Copyable, Sendable {
    package let kernel: any KernelInterface
    package private(set) var rawValue: CInt
    /// The path it was opened from, or the device name it belongs to; every error carries it.
    public let label: String

    package init(kernel: any KernelInterface, rawValue: CInt, label: String) {
        self.kernel = kernel
        self.rawValue = rawValue
        self.label = label
    }

    deinit { if rawValue >= 0 { try? kernel.close(rawValue) } }

    /// How errors name the object, e.g. "device 0000:06:0d.0"; a data fd names its number
    /// and device ("migration data fd 12 of device 0000:06:0d.0"), as there may be several.
    public var object: String {
        Kind.self == MigrationDataKind.self ? "\(Kind.noun) \(rawValue) of device \(label)" : "\(Kind.noun) \(label)"
    }

    /// Opens `path` read-write on `kernel` (close-on-exec is always set).
    package static func open(_ path: String, kernel: any KernelInterface) throws(SyscallError) -> KernelFD<Kind> {
        let fd = try retryingInterrupts("open", on: "\(Kind.noun) \(path)") { () throws(Errno) in
            try kernel.open(path, .readWrite)
        }
        return KernelFD(kernel: kernel, rawValue: fd, label: path)
    }

    /// Closes now, reporting what close(2) said (the descriptor is gone either way).
    public consuming func close() throws(SyscallError) {
        let fd = rawValue
        let object = self.object
        rawValue = -1
        do {
            try kernel.close(fd)
        } catch {
            throw SyscallError(operation: "close", object: object, errno: error)
        }
    }

    /// True until closed.
    package var isOpen: Bool { rawValue >= 0 }

    /// Closes in place, for an owner that keeps the value behind a lock; later calls fail with
    /// EBADF-free misuse checks by the owner (see `isOpen`). close(2) errors are dropped: the
    /// descriptor is gone either way.
    package mutating func closeInPlace() {
        guard rawValue >= 0 else { return }
        try? kernel.close(rawValue)
        rawValue = -1
    }

    /// One ioctl with the EINTR policy; `name` says which call and sub-operation it is.
    package func call(_ name: String, _ request: UInt, _ argument: IoctlArgument) throws(SyscallError) -> CInt {
        try retryingInterrupts(name, on: object) { () throws(Errno) in try kernel.ioctl(rawValue, request, argument) }
    }
}

public typealias ContainerFD = KernelFD<ContainerKind>
public typealias GroupFD = KernelFD<GroupKind>
public typealias DeviceFD = KernelFD<DeviceKind>
public typealias MigrationDataFD = KernelFD<MigrationDataKind>
