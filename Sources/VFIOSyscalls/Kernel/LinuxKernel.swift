// LinuxKernel: the KernelInterface that makes the real system calls. Each function is one
// libc call; errno is read straight after it, before anything else can touch it.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemPackage

package final class LinuxKernel: KernelInterface {
    /// The process's one real kernel.
    package static let shared = LinuxKernel()
    package let name = "linux"
    private init() {}

    @inline(never)
    private static func lastErrno() -> Errno { Errno(rawValue: errno) }

    package func open(_ path: String, _ flags: OpenFlags) throws(Errno) -> CInt {
        let fd = Glibc.open(path, flags.rawValue | O_CLOEXEC, 0o644)
        if fd < 0 { throw Self.lastErrno() }
        return fd
    }

    package func close(_ fd: CInt) throws(Errno) {
        // close is never retried: on Linux the fd is gone even when EINTR is returned.
        if Glibc.close(fd) < 0 { throw Self.lastErrno() }
    }

    package func ioctl(_ fd: CInt, _ request: UInt, _ argument: IoctlArgument) throws(Errno) -> CInt {
        let result: CInt
        switch argument {
        case .none:
            result = Glibc.ioctl(fd, request)
        case .value(let value):
            result = Glibc.ioctl(fd, request, CInt(truncatingIfNeeded: value))
        case .pointer(let address, _):
            // SAFETY: the address points at the argument the typed wrapper built and keeps alive for this call.
            guard let pointer = UnsafeMutableRawPointer(bitPattern: address) else { throw .badAddress }
            result = Glibc.ioctl(fd, request, pointer)
        }
        if result < 0 { throw Self.lastErrno() }
        return result
    }

    package func read(_ fd: CInt, into region: UserRegion) throws(Errno) -> Int {
        // SAFETY: the region is writable caller memory of `count` bytes, alive for this call.
        let n = Glibc.read(fd, UnsafeMutableRawPointer(bitPattern: region.address), region.count)
        if n < 0 { throw Self.lastErrno() }
        return n
    }

    package func write(_ fd: CInt, from region: UserRegion) throws(Errno) -> Int {
        // SAFETY: the region is caller memory of `count` bytes, alive for this call.
        let n = Glibc.write(fd, UnsafeRawPointer(bitPattern: region.address), region.count)
        if n < 0 { throw Self.lastErrno() }
        return n
    }

    package func pread(_ fd: CInt, into region: UserRegion, offset: Int64) throws(Errno) -> Int {
        // SAFETY: as read, at an explicit file offset.
        let n = Glibc.pread(fd, UnsafeMutableRawPointer(bitPattern: region.address), region.count, off_t(offset))
        if n < 0 { throw Self.lastErrno() }
        return n
    }

    package func pwrite(_ fd: CInt, from region: UserRegion, offset: Int64) throws(Errno) -> Int {
        // SAFETY: as write, at an explicit file offset.
        let n = Glibc.pwrite(fd, UnsafeRawPointer(bitPattern: region.address), region.count, off_t(offset))
        if n < 0 { throw Self.lastErrno() }
        return n
    }

    package func setNonBlocking(_ fd: CInt, _ enabled: Bool) throws(Errno) {
        let flags = fcntl(fd, F_GETFL)
        if flags < 0 { throw Self.lastErrno() }
        let updated = enabled ? flags | O_NONBLOCK : flags & ~O_NONBLOCK
        if fcntl(fd, F_SETFL, updated) < 0 { throw Self.lastErrno() }
    }
}

extension LinuxKernel {
    /// fsync(2); EINVAL (pipes, sockets, /dev/null) means there is nothing to flush.
    package func sync(_ fd: CInt) throws(Errno) {
        if fsync(fd) < 0 && errno != EINVAL && errno != EROFS { throw Self.lastErrno() }
    }

    /// rename(2): `to` is replaced atomically, or left as it was when the call fails.
    package func rename(_ from: String, to: String) throws(Errno) {
        if Glibc.rename(from, to) < 0 { throw Self.lastErrno() }
    }
}

// Primitives a kernel emulator needs to hand out real file descriptors.
extension LinuxKernel {
    /// A pipe with close-on-exec ends: (read end, write end).
    package func makePipe() throws(Errno) -> (read: CInt, write: CInt) {
        var fds: (CInt, CInt) = (-1, -1)
        let rc = withUnsafeMutablePointer(to: &fds) { p in
            // SAFETY: a (CInt, CInt) tuple is laid out as the int[2] pipe2 fills.
            p.withMemoryRebound(to: CInt.self, capacity: 2) { pipe($0) }
        }
        if rc < 0 { throw Self.lastErrno() }
        _ = fcntl(fds.0, F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds.1, F_SETFD, FD_CLOEXEC)
        return (fds.0, fds.1)
    }

    /// Grows a pipe's buffer (F_SETPIPE_SZ); returns the size the kernel granted.
    @discardableResult
    package func setPipeSize(_ fd: CInt, _ bytes: Int) throws(Errno) -> Int {
        let rc = fcntl(fd, 1031 /* F_SETPIPE_SZ */, CInt(bytes))
        if rc < 0 { throw Self.lastErrno() }
        return Int(rc)
    }

    /// Bytes waiting in a pipe or socket (FIONREAD).
    package func bytesReadable(_ fd: CInt) throws(Errno) -> Int {
        var count: CInt = 0
        // SAFETY: FIONREAD writes one int into `count`.
        let rc = withUnsafeMutablePointer(to: &count) { Glibc.ioctl(fd, UInt(FIONREAD), $0) }
        if rc < 0 { throw Self.lastErrno() }
        return Int(count)
    }

    /// A fresh, unique fd number that refers to nothing useful (/dev/null), for an emulated
    /// object; closing it frees the number like closing the real object would.
    package func reserveDescriptor() throws(Errno) -> CInt {
        try open("/dev/null", .readOnly)
    }

    /// Number of open descriptors in this process (for leak checks).
    package func openDescriptorCount() throws(Errno) -> Int {
        guard let dir = opendir("/proc/self/fd") else { throw Self.lastErrno() }
        defer { closedir(dir) }
        var count = 0
        while readdir(dir) != nil { count += 1 }
        return count - 3 // ".", ".." and the directory stream's own fd
    }
}
