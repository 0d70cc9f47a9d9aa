// Writing to a socket or a pipe whose reader is gone must be an EPIPE error, never a SIGPIPE
// that kills the process (a VMM embedding the engine, or `vfio-migrate save -o - | head`).
// Sockets take MSG_NOSIGNAL; for pipes the signal is blocked on the writing thread for the
// call, and the one the failed write raised is taken back before the mask is restored.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemPackage

/// What kind of file a descriptor is, as far as SIGPIPE is concerned.
package enum WriteTarget: Sendable {
    case socket, pipe, other
}

extension LinuxKernel {
    /// fstat(2): socket, pipe/FIFO, or anything else.
    package func writeTarget(of fd: CInt) throws(Errno) -> WriteTarget {
        var info = stat()
        if fstat(fd, &info) < 0 { throw Errno(rawValue: errno) }
        switch info.st_mode & S_IFMT {
        case S_IFSOCK: return .socket
        case S_IFIFO: return .pipe
        default: return .other
        }
    }

    /// write(2) that reports a vanished reader as EPIPE instead of raising SIGPIPE.
    package func writeWithoutSIGPIPE(_ fd: CInt, from region: UserRegion, target: WriteTarget) throws(Errno) -> Int {
        switch target {
        case .other:
            return try write(fd, from: region)
        case .socket:
            // SAFETY: the region is caller memory of `count` bytes, alive for this call.
            let n = Glibc.send(fd, UnsafeRawPointer(bitPattern: region.address), region.count, Int32(MSG_NOSIGNAL))
            if n < 0 { throw Errno(rawValue: errno) }
            return n
        case .pipe:
            return try Self.withSIGPIPETakenBack {
                // SAFETY: the region is caller memory of `count` bytes, alive for this call.
                Glibc.write(fd, UnsafeRawPointer(bitPattern: region.address), region.count)
            }
        }
    }

    /// writev(2) (sendmsg for a socket) of `vectors` in order, with the same SIGPIPE rule.
    /// Returns the bytes written, which may be fewer than asked.
    package func writevWithoutSIGPIPE(_ fd: CInt, from vectors: UnsafeMutableBufferPointer<iovec>, target: WriteTarget) throws(Errno) -> Int {
        switch target {
        case .socket:
            var message = msghdr()
            // SAFETY: the iovecs and the memory they name are the caller's, alive for this call.
            message.msg_iov = vectors.baseAddress
            message.msg_iovlen = vectors.count
            let n = sendmsg(fd, &message, CInt(MSG_NOSIGNAL))
            if n < 0 { throw Errno(rawValue: errno) }
            return n
        case .pipe:
            // SAFETY: as above; the kernel only reads the named memory.
            return try Self.withSIGPIPETakenBack { Glibc.writev(fd, vectors.baseAddress, CInt(vectors.count)) }
        case .other:
            // SAFETY: as above.
            let n = Glibc.writev(fd, vectors.baseAddress, CInt(vectors.count))
            if n < 0 { throw Errno(rawValue: errno) }
            return n
        }
    }

    /// Runs one write with SIGPIPE blocked on this thread; a failed write's pending SIGPIPE is
    /// taken back before the mask is restored, so it is never delivered.
    private static func withSIGPIPETakenBack(_ write: () -> Int) throws(Errno) -> Int {
        var blocked = sigset_t()
        sigemptyset(&blocked)
        sigaddset(&blocked, SIGPIPE)
        var previous = sigset_t()
        pthread_sigmask(SIG_BLOCK, &blocked, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        let n = write()
        if n >= 0 { return n }
        let failure = errno
        if failure == EPIPE {
            var now = timespec(tv_sec: 0, tv_nsec: 0)
            _ = sigtimedwait(&blocked, nil, &now)
        }
        throw Errno(rawValue: failure)
    }
}
