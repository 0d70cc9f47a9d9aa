// The syscall layer's one error: which operation, on which object, and the errno.
import SystemPackage
import VFIOBuffers

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
        errnoSymbol(e.rawValue) ?? "errno \(e.rawValue)"
    }
}
