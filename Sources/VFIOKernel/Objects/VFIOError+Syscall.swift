// How a failed system call becomes an engine error: one factory per kind of operation, each
// keeping the call's name and errno and choosing the code and the words.
import SystemPackage
import VFIOCore
import VFIOSyscalls

extension ErrorNumber {
    /// The engine's errno value for a syscall layer errno.
    package init(_ errno: Errno) { self.init(rawValue: errno.rawValue) }
}

extension VFIOError {
    /// A VFIO ioctl on a container, group or device failed.
    static func ioctl(_ error: SyscallError, device: String? = nil, message: String? = nil) -> VFIOError {
        let errno = ErrorNumber(error.errno)
        return VFIOError(code(for: errno), message ?? "\(error.operation) failed", device: device ?? error.object,
                         operation: error.operation, errno: errno)
    }

    /// A read, write or PRECOPY_INFO on a migration data fd failed; ENODEV means the session ended.
    static func dataSession(_ error: SyscallError, device: String, _ what: String) -> VFIOError {
        let errno = ErrorNumber(error.errno)
        if errno == .noDevice {
            return VFIOError(
                .sessionEnded, "\(what): the migration session ended (the device changed state or was reset)",
                device: device, operation: error.operation, errno: errno)
        }
        return VFIOError(code(for: errno), what, device: device, operation: error.operation, errno: errno)
    }

    /// Runs a syscall-layer call, turning its error into an ioctl error on `device`.
    static func wrapping<T: ~Copyable>(device: String? = nil, _ body: () throws(SyscallError) -> T) throws(VFIOError) -> T {
        do {
            return try body()
        } catch {
            throw ioctl(error, device: device)
        }
    }
}
