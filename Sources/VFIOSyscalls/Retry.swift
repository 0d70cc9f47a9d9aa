// The one place EINTR is handled, and the one place an errno that means "our bug" crashes.
import SystemPackage

/// Runs `call` until it does not fail with EINTR; any other errno becomes a SyscallError
/// naming `operation` and `object`. EBADF on a descriptor we own is a programmer error
/// (a use after close), so it stops the process instead of being reported.
@inline(__always)
func retryingInterrupts<T>(
    _ operation: @autoclosure () -> String,
    on object: @autoclosure () -> String,
    _ call: () throws(Errno) -> T
) throws(SyscallError) -> T {
    while true {
        do {
            return try call()
        } catch .interrupted {
            continue
        } catch {
            precondition(error != .badFileDescriptor, "\(operation()) on \(object()): EBADF on an owned descriptor")
            throw SyscallError(operation: operation(), object: object(), errno: error)
        }
    }
}
