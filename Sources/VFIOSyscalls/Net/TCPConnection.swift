// A connected TCP socket: blocking reads and writes with an idle timeout (SO_RCVTIMEO and
// SO_SNDTIMEO, so a call that waits costs no extra system call), writes that never raise
// SIGPIPE (MSG_NOSIGNAL), a gather write over sendmsg.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemPackage
import VFIOBuffers

/// A TCP connection. Thread-confined (see `ByteStreamConnection`); closed on deinit.
public final class TCPConnection: ByteStreamConnection, @unchecked Sendable {
    package let socket: Socket
    public let peerAddress: String
    public let localAddress: String
    /// "TCP connection to 10.0.0.2:4444" or "TCP connection from 10.0.0.1:50312".
    public let description: String
    public private(set) var idleTimeout: Duration?
    /// Set when a TLSConnection took the socket over: plain I/O on it would corrupt the stream.
    package var handedOver = false

    init(socket: Socket, outbound: Bool, options: TCPOptions) throws(SyscallError) {
        self.socket = socket
        peerAddress = socket.peerAddress?.text ?? "(unknown peer)"
        localAddress = socket.localAddress?.text ?? "(unknown address)"
        description = outbound ? "TCP connection to \(peerAddress)" : "TCP connection from \(peerAddress)"
        try setNoDelay(options.noDelay)
        try setIdleTimeout(options.idleTimeout)
    }

    /// Connects to the first address `address` resolves to that accepts within `timeout`.
    public static func connect(to address: NetworkAddress, timeout: Duration, options: TCPOptions = TCPOptions()) throws -> TCPConnection {
        let object = "TCP connection to \(address)"
        var lastError: SyscallError?
        for resolved in try address.resolve(passive: false) {
            do {
                let socket = try opened(family: resolved.family, options: options, object: object)
                try connect(socket, to: resolved, timeout: timeout, object: "TCP connection to \(resolved.text)")
                return try TCPConnection(socket: socket, outbound: true, options: options)
            } catch {
                lastError = error
            }
        }
        throw lastError ?? SyscallError(operation: "connect", object: object, errno: .noSuchAddressOrDevice)
    }

    /// A socket with the buffer sizes set before the handshake, so the window scale fits them.
    static func opened(family: CInt, options: TCPOptions, object: String) throws(SyscallError) -> Socket {
        let socket = try retryingInterrupts("socket", on: object) { () throws(Errno) in try Socket.open(family: family) }
        if let size = options.sendBufferSize {
            try retryingInterrupts("setsockopt(SO_SNDBUF=\(size))", on: object) { () throws(Errno) in
                try socket.setOption(SOL_SOCKET, SO_SNDBUF, CInt(clamping: size))
            }
        }
        if let size = options.receiveBufferSize {
            try retryingInterrupts("setsockopt(SO_RCVBUF=\(size))", on: object) { () throws(Errno) in
                try socket.setOption(SOL_SOCKET, SO_RCVBUF, CInt(clamping: size))
            }
        }
        return socket
    }

    /// A non-blocking connect waited for with poll, so the timeout holds whatever the network does.
    private static func connect(_ socket: Socket, to address: SocketAddress, timeout: Duration, object: String) throws(SyscallError) {
        let operation = "connect (within \(describe(timeout)))"
        try retryingInterrupts("fcntl(O_NONBLOCK)", on: object) { () throws(Errno) in try socket.setNonBlocking(true) }
        do {
            try socket.connect(address)
        } catch .nowInProgress, .interrupted {
            let seen = try retryingInterrupts(operation, on: object) { () throws(Errno) in
                try socket.wait(for: Int16(POLLOUT), timeout: timeout)
            }
            guard seen != 0 else { throw SyscallError(operation: operation, object: object, errno: .timedOut) }
            let status = try retryingInterrupts("getsockopt(SO_ERROR)", on: object) { () throws(Errno) in
                try socket.intOption(SOL_SOCKET, SO_ERROR)
            }
            if status != 0 { throw SyscallError(operation: operation, object: object, errno: Errno(rawValue: status)) }
        } catch {
            throw SyscallError(operation: operation, object: object, errno: error)
        }
        try retryingInterrupts("fcntl(blocking)", on: object) { () throws(Errno) in try socket.setNonBlocking(false) }
    }

    // MARK: Reading and writing

    /// The socket, or the error a call on a closed or handed-over connection gets.
    private func usable(_ operation: String) throws(SyscallError) -> Socket {
        guard socket.isOpen, !handedOver else {
            let state = handedOver ? "handed over to TLS" : "closed"
            throw SyscallError(operation: operation, object: "\(description) (\(state))", errno: .badFileDescriptor)
        }
        return socket
    }

    /// One call, EINTR retried, EAGAIN (the idle timeout expired) reported as ETIMEDOUT.
    private func transfer(_ operation: @autoclosure () -> String, _ call: () throws(Errno) -> Int) throws(SyscallError) -> Int {
        do {
            return try retryingInterrupts(operation(), on: description, call)
        } catch where error.errno == .resourceTemporarilyUnavailable || error.errno == .wouldBlock {
            let idle = idleTimeout.map { " (no progress for \(describe($0)))" } ?? ""
            throw SyscallError(operation: operation() + idle, object: description, errno: .timedOut)
        }
    }

    public func read(into buffer: IOBuffer, range: Range<Int>) throws(SyscallError) -> Int {
        let socket = try usable("read")
        guard !range.isEmpty else { return 0 }
        return try buffer.withUnsafeMutableBytes(in: range) { (raw) throws(SyscallError) -> Int in
            // SAFETY: `raw` is the caller's buffer range, alive for this call.
            let region = UserRegion(address: UInt(bitPattern: raw.baseAddress), count: raw.count, writable: true)
            return try transfer("read") { () throws(Errno) in try socket.receive(region) }
        }
    }

    public func write(_ buffer: IOBuffer, range: Range<Int>) throws(SyscallError) {
        let socket = try usable("write")
        guard !range.isEmpty else { return }
        try buffer.withUnsafeBytes(in: range) { (raw) throws(SyscallError) in
            // SAFETY: `raw` is the caller's buffer range, alive for this call.
            let region = UserRegion(address: UInt(bitPattern: raw.baseAddress), count: raw.count, writable: false)
            var done = 0
            while done < region.count {
                done += try transfer("write (\(done) of \(region.count) bytes written)") { () throws(Errno) in
                    try socket.send(region.dropFirst(done))
                }
            }
        }
    }

    public func write(gather slices: [BufferSlice]) throws(SyscallError) {
        let socket = try usable("writev")
        let total = slices.reduce(0) { $0 + $1.range.count }
        var done = 0
        try slices.forEachRegionGroup { (group: inout IOVecGroup) throws(SyscallError) in
            while !group.isEmpty {
                let vectors = group.remaining
                let n = try transfer("writev (\(done) of \(total) bytes written)") { () throws(Errno) in
                    try socket.send(gather: vectors)
                }
                done += n
                group.consume(n)
            }
        }
    }

    public func shutdownWrite() throws(SyscallError) {
        let socket = try usable("shutdown(SHUT_WR)")
        try retryingInterrupts("shutdown(SHUT_WR)", on: description) { () throws(Errno) in try socket.shutdown(CInt(SHUT_WR)) }
    }

    public func interrupt() {
        // shutdown(2) on a descriptor another thread is blocked on wakes that thread at once.
        guard socket.isOpen else { return }
        try? socket.shutdown(CInt(SHUT_RDWR))
    }

    public func close() throws(SyscallError) {
        guard socket.isOpen else { return }
        try retryingInterrupts("close", on: description) { () throws(Errno) in try socket.close() }
    }

    // MARK: Settings

    /// A read or write that makes no progress for `timeout` then fails with ETIMEDOUT.
    public func setIdleTimeout(_ timeout: Duration?) throws(SyscallError) {
        guard socket.isOpen else { throw SyscallError(operation: "set idle timeout", object: "\(description) (closed)", errno: .badFileDescriptor) }
        for (name, label) in [(SO_RCVTIMEO, "SO_RCVTIMEO"), (SO_SNDTIMEO, "SO_SNDTIMEO")] {
            try retryingInterrupts("setsockopt(\(label))", on: description) { () throws(Errno) in try socket.setTimeout(name, timeout) }
        }
        idleTimeout = timeout
    }

    public func setNoDelay(_ enabled: Bool) throws(SyscallError) {
        guard socket.isOpen else { throw SyscallError(operation: "set TCP_NODELAY", object: "\(description) (closed)", errno: .badFileDescriptor) }
        try retryingInterrupts("setsockopt(TCP_NODELAY=\(enabled))", on: description) { () throws(Errno) in
            try socket.setOption(CInt(IPPROTO_TCP), TCP_NODELAY, CInt(enabled ? 1 : 0))
        }
    }

    /// The kernel's send and receive buffer sizes (it doubles what was asked, for bookkeeping).
    public func bufferSizes() throws(SyscallError) -> (send: Int, receive: Int) {
        guard socket.isOpen else { throw SyscallError(operation: "getsockopt", object: "\(description) (closed)", errno: .badFileDescriptor) }
        let send = try retryingInterrupts("getsockopt(SO_SNDBUF)", on: description) { () throws(Errno) in try socket.intOption(SOL_SOCKET, SO_SNDBUF) }
        let receive = try retryingInterrupts("getsockopt(SO_RCVBUF)", on: description) { () throws(Errno) in try socket.intOption(SOL_SOCKET, SO_RCVBUF) }
        return (Int(send), Int(receive))
    }

    public var noDelay: Bool {
        (try? socket.intOption(CInt(IPPROTO_TCP), TCP_NODELAY)).map { $0 != 0 } ?? false
    }
}
