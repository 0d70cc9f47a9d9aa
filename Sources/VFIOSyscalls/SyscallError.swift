// The syscall layer's one error: which operation, on which object, and the errno.
import SystemPackage

public struct SyscallError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The call and sub-operation, e.g. "VFIO_DEVICE_FEATURE[MIG_DEVICE_STATE|SET]".
    public let operation: String
    /// What it was issued on, e.g. "device 0000:06:0d.0" or "container /dev/vfio/vfio".
    public let object: String
    public let errno: Errno

    public init(operation: String, object: String, errno: Errno) {
        self.operation = operation
        self.object = object
        self.errno = errno
    }

    public var description: String {
        "\(operation) on \(object) failed: \(Self.errnoName(errno)) (\(errno.description))"
    }

    /// The symbolic errno name, for messages people grep for.
    public static func errnoName(_ e: Errno) -> String {
        // Linux numbering (x86-64 and arm64 agree for these).
        let names: [CInt: String] = [
            1: "EPERM", 2: "ENOENT", 4: "EINTR", 5: "EIO", 6: "ENXIO", 7: "E2BIG", 9: "EBADF",
            11: "EAGAIN", 12: "ENOMEM", 13: "EACCES", 14: "EFAULT", 16: "EBUSY", 17: "EEXIST",
            19: "ENODEV", 22: "EINVAL", 24: "EMFILE", 25: "ENOTTY", 27: "EFBIG", 28: "ENOSPC",
            29: "ESPIPE", 32: "EPIPE", 34: "ERANGE", 36: "ENAMETOOLONG", 42: "ENOMSG",
            75: "EOVERFLOW", 95: "EOPNOTSUPP", 122: "EDQUOT",
        ]
        return names[e.rawValue] ?? "errno \(e.rawValue)"
    }
}
