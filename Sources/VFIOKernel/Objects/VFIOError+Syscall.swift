// How a failed system call becomes an engine error: the operation and errno are kept, the code
// says what kind of failure it is.
import VFIOCore
import VFIOSyscalls

extension VFIOError {
    init(syscall error: SyscallError, device: String? = nil, message: String? = nil) {
        self.init(
            VFIOError.code(for: error.errno),
            message ?? "\(error.operation) failed",
            device: device ?? error.object,
            operation: error.operation,
            errno: error.errno)
    }

    static func wrap<T: ~Copyable>(_ body: () throws(SyscallError) -> T) throws(VFIOError) -> T {
        do {
            return try body()
        } catch {
            throw VFIOError(syscall: error)
        }
    }
}
