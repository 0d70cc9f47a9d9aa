// A listening TCP socket. It is non-blocking and waited on with poll, so accept honours its
// timeout even when a connection disappears between the wake-up and the accept.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemPackage

/// A bound, listening socket. Thread-confined (one thread accepts); closed on deinit.
public final class TCPListener: @unchecked Sendable, CustomStringConvertible {
    package let socket: Socket
    /// The address actually bound, e.g. "127.0.0.1:40731" after asking for port 0.
    public let localAddress: String
    public let port: UInt16
    public let options: TCPOptions
    public var description: String { "TCP listener on \(localAddress)" }

    private init(socket: Socket, address: SocketAddress, options: TCPOptions) {
        self.socket = socket
        localAddress = address.text
        port = address.port
        self.options = options
    }

    /// Binds the first address `address` resolves to that can be bound and listens on it.
    /// Every accepted connection gets `options` (buffer sizes are inherited from the listener).
    public static func bind(_ address: NetworkAddress, backlog: Int = 16, options: TCPOptions = TCPOptions()) throws -> TCPListener {
        let object = "TCP listener on \(address)"
        var lastError: SyscallError?
        for resolved in try address.resolve(passive: true) {
            do {
                let socket = try TCPConnection.opened(family: resolved.family, options: options, object: object)
                try retryingInterrupts("setsockopt(SO_REUSEADDR)", on: object) { () throws(Errno) in
                    try socket.setOption(SOL_SOCKET, SO_REUSEADDR, CInt(1))
                }
                try retryingInterrupts("bind", on: "TCP listener on \(resolved.text)") { () throws(Errno) in try socket.bind(resolved) }
                try retryingInterrupts("listen", on: object) { () throws(Errno) in try socket.listen(backlog: backlog) }
                try retryingInterrupts("fcntl(O_NONBLOCK)", on: object) { () throws(Errno) in try socket.setNonBlocking(true) }
                return TCPListener(socket: socket, address: socket.localAddress ?? resolved, options: options)
            } catch {
                lastError = error
            }
        }
        throw lastError ?? SyscallError(operation: "bind", object: object, errno: .noSuchAddressOrDevice)
    }

    /// The next connection; ETIMEDOUT when none arrives within `timeout` (nil: wait for ever).
    public func accept(timeout: Duration?) throws(SyscallError) -> TCPConnection {
        guard socket.isOpen else { throw SyscallError(operation: "accept", object: "\(description) (closed)", errno: .badFileDescriptor) }
        let operation = timeout.map { "accept (within \(describe($0)))" } ?? "accept"
        let clock = ContinuousClock()
        let deadline = timeout.map { clock.now + $0 }
        while true {
            let accepted: Socket
            do throws(Errno) {
                accepted = try socket.accept()
            } catch where error == .resourceTemporarilyUnavailable || error == .interrupted || error.rawValue == ECONNABORTED {
                let left = deadline.map { $0 - clock.now }
                if let left, left <= .zero { throw SyscallError(operation: operation, object: description, errno: .timedOut) }
                let seen = try retryingInterrupts(operation, on: description) { () throws(Errno) in
                    try socket.wait(for: Int16(POLLIN), timeout: left)
                }
                if seen == 0 { throw SyscallError(operation: operation, object: description, errno: .timedOut) }
                continue
            } catch {
                throw SyscallError(operation: operation, object: description, errno: error)
            }
            return try TCPConnection(socket: accepted, outbound: false, options: options)
        }
    }

    public func close() throws(SyscallError) {
        guard socket.isOpen else { return }
        try retryingInterrupts("close", on: description) { () throws(Errno) in try socket.close() }
    }
}
