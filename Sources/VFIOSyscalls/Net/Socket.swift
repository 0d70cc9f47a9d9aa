// The socket calls the transport makes, over one owned descriptor. Sockets are always the
// real kernel (like StreamFD): there is no emulated network. Each call reads errno straight
// after the libc call; EINTR is retried here or by the caller's loop, once.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemPackage
import VFIOBuffers

/// One TCP socket descriptor, closed exactly once (by close() or deinit). Thread-confined.
package final class Socket {
    package private(set) var rawValue: CInt

    init(adopting fd: CInt) { rawValue = fd }

    deinit { if rawValue >= 0 { _ = Glibc.close(rawValue) } }

    var isOpen: Bool { rawValue >= 0 }

    @inline(never)
    static func lastErrno() -> Errno { Errno(rawValue: errno) }

    /// A new close-on-exec TCP socket of `family`.
    static func open(family: CInt) throws(Errno) -> Socket {
        let fd = socket(family, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), CInt(IPPROTO_TCP))
        if fd < 0 { throw lastErrno() }
        return Socket(adopting: fd)
    }

    /// Closes now; the descriptor is gone whatever close returns (never retried on Linux).
    func close() throws(Errno) {
        guard rawValue >= 0 else { return }
        let fd = rawValue
        rawValue = -1
        if Glibc.close(fd) < 0 { throw Self.lastErrno() }
    }

    func bind(_ address: SocketAddress) throws(Errno) {
        let rc = address.withSockaddr { Glibc.bind(rawValue, $0, $1) }
        if rc < 0 { throw Self.lastErrno() }
    }

    func listen(backlog: Int) throws(Errno) {
        if Glibc.listen(rawValue, CInt(clamping: backlog)) < 0 { throw Self.lastErrno() }
    }

    /// accept, then close-on-exec (Glibc's Swift module has no accept4); the new socket is
    /// blocking whatever the listener is.
    func accept() throws(Errno) -> Socket {
        let fd = Glibc.accept(rawValue, nil, nil)
        if fd < 0 { throw Self.lastErrno() }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        return Socket(adopting: fd)
    }

    func connect(_ address: SocketAddress) throws(Errno) {
        let rc = address.withSockaddr { Glibc.connect(rawValue, $0, $1) }
        if rc < 0 { throw Self.lastErrno() }
    }

    /// Waits until `events` (POLLIN, POLLOUT) or `timeout`; returns the events seen, [] on timeout.
    /// EINTR restarts the wait with the time that is left.
    func wait(for events: Int16, timeout: Duration?) throws(Errno) -> Int16 {
        let clock = ContinuousClock()
        let deadline = timeout.map { clock.now + $0 }
        while true {
            var entry = pollfd(fd: rawValue, events: events, revents: 0)
            let milliseconds: CInt
            if let deadline {
                let left = deadline - clock.now
                milliseconds = left <= .zero ? 0 : CInt(clamping: Int64(((left / .milliseconds(1)).rounded(.up))))
            } else {
                milliseconds = -1
            }
            let rc = poll(&entry, 1, milliseconds)
            if rc < 0 {
                if errno == EINTR { continue }
                throw Self.lastErrno()
            }
            return rc == 0 ? 0 : entry.revents
        }
    }

    func setNonBlocking(_ enabled: Bool) throws(Errno) {
        let flags = fcntl(rawValue, F_GETFL)
        if flags < 0 { throw Self.lastErrno() }
        let updated = enabled ? flags | O_NONBLOCK : flags & ~O_NONBLOCK
        if fcntl(rawValue, F_SETFL, updated) < 0 { throw Self.lastErrno() }
    }

    func setOption<T: BitwiseCopyable>(_ level: CInt, _ name: CInt, _ value: T) throws(Errno) {
        let rc = withUnsafeBytes(of: value) { bytes in
            // SAFETY: setsockopt reads exactly the option value's bytes, alive for this call.
            setsockopt(rawValue, level, name, bytes.baseAddress, socklen_t(bytes.count))
        }
        if rc < 0 { throw Self.lastErrno() }
    }

    func intOption(_ level: CInt, _ name: CInt) throws(Errno) -> CInt {
        var value: CInt = 0
        var length = socklen_t(MemoryLayout<CInt>.size)
        if getsockopt(rawValue, level, name, &value, &length) < 0 { throw Self.lastErrno() }
        return value
    }

    /// SO_RCVTIMEO / SO_SNDTIMEO: a blocking call that makes no progress for `timeout` fails
    /// with EAGAIN; nil waits for ever.
    func setTimeout(_ name: CInt, _ timeout: Duration?) throws(Errno) {
        var value = timeval()
        if let timeout, timeout > .zero {
            let (seconds, attoseconds) = timeout.components
            value.tv_sec = Int(seconds)
            value.tv_usec = Int(attoseconds / 1_000_000_000_000)
            if value.tv_sec == 0 && value.tv_usec == 0 { value.tv_usec = 1 }
        }
        try setOption(SOL_SOCKET, name, value)
    }

    /// One send of `region` without SIGPIPE; returns bytes accepted.
    func send(_ region: UserRegion) throws(Errno) -> Int {
        // SAFETY: the region is caller memory of `count` bytes, alive for this call.
        let n = Glibc.send(rawValue, UnsafeRawPointer(bitPattern: region.address), region.count, CInt(MSG_NOSIGNAL))
        if n < 0 { throw Self.lastErrno() }
        return n
    }

    /// One sendmsg of `vectors` (at most IOV_MAX, 1024) without SIGPIPE; returns bytes accepted.
    func send(gather vectors: UnsafeMutableBufferPointer<iovec>) throws(Errno) -> Int {
        var message = msghdr()
        // SAFETY: the iovecs and the memory they name are the caller's, alive for this call.
        message.msg_iov = vectors.baseAddress
        message.msg_iovlen = vectors.count
        let n = sendmsg(rawValue, &message, CInt(MSG_NOSIGNAL))
        if n < 0 { throw Self.lastErrno() }
        return n
    }

    /// One recv into `region`; 0 is the end of the stream.
    func receive(_ region: UserRegion) throws(Errno) -> Int {
        // SAFETY: the region is writable caller memory of `count` bytes, alive for this call.
        let n = recv(rawValue, UnsafeMutableRawPointer(bitPattern: region.address), region.count, 0)
        if n < 0 { throw Self.lastErrno() }
        return n
    }

    func shutdown(_ how: CInt) throws(Errno) {
        if Glibc.shutdown(rawValue, how) < 0 { throw Self.lastErrno() }
    }

    /// SO_LINGER with a zero timeout: close sends a reset instead of a FIN.
    func resetOnClose() {
        _ = try? setOption(SOL_SOCKET, SO_LINGER, linger(l_onoff: 1, l_linger: 0))
    }

    var localAddress: SocketAddress? { SocketAddress.filled { getsockname(rawValue, $0, $1) } }
    var peerAddress: SocketAddress? { SocketAddress.filled { getpeername(rawValue, $0, $1) } }
}
