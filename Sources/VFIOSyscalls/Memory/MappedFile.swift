// Guest RAM backed by a file the engine maps itself: a memfd, a hugetlbfs or tmpfs file, or a
// regular file. The mapping is shared (the VMM and the devices see the same pages), read-only
// where the engine only reads it (a save) and read-write where it writes pages (a load).
// The file's size is checked first: touching a mapping past the end of its file is SIGBUS.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemPackage
import VFIOBuffers

public enum MappedFile {
    /// Maps `length` bytes of the file at `path` from `offset` (a multiple of the system page
    /// size; of the huge page size on hugetlbfs). `populate` faults every page in at once
    /// (MAP_POPULATE), so reading the memory later takes no page fault per page.
    public static func map(
        path: String, offset: UInt64, length: UInt64, writable: Bool, populate: Bool = true
    ) throws(SyscallError) -> IOBuffer {
        let fd = Glibc.open(path, writable ? O_RDWR | O_CLOEXEC : O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw SyscallError(operation: "open(\(writable ? "read-write" : "read-only"))", object: "file \(path)", errno: Errno(rawValue: errno)) }
        defer { Glibc.close(fd) }
        return try map(fd, name: "file \(path)", offset: offset, length: length, writable: writable, populate: populate)
    }

    /// Maps part of an open file (a memfd the VMM created, say). The descriptor is only used
    /// for the call; the mapping stays valid after the caller closes it.
    public static func map(
        descriptor: FileDescriptor, offset: UInt64, length: UInt64, writable: Bool, populate: Bool = true
    ) throws(SyscallError) -> IOBuffer {
        try map(descriptor.rawValue, name: "file descriptor \(descriptor.rawValue)", offset: offset, length: length,
                writable: writable, populate: populate)
    }

    private static func map(
        _ fd: CInt, name: String, offset: UInt64, length: UInt64, writable: Bool, populate: Bool
    ) throws(SyscallError) -> IOBuffer {
        func fail(_ operation: String, _ code: Errno) -> SyscallError { SyscallError(operation: operation, object: name, errno: code) }
        guard length > 0, length <= UInt64(Int.max), offset <= UInt64(Int64.max) else { throw fail("mmap(length \(length))", .invalidArgument) }
        var info = stat()
        if fstat(fd, &info) < 0 { throw fail("fstat", Errno(rawValue: errno)) }
        let size = UInt64(max(0, info.st_size))
        guard offset <= size, length <= size - offset else {
            throw fail("mmap(offset \(offset) + length \(length) past the file's \(size) bytes)", .invalidArgument)
        }
        let protection = writable ? PROT_READ | PROT_WRITE : PROT_READ
        let flags = MAP_SHARED | (populate ? MAP_POPULATE : 0)
        // SAFETY: a fresh mapping the kernel places; it is owned by the returned buffer and
        // unmapped exactly once, from its deinit.
        let base = mmap(nil, Int(length), protection, flags, fd, off_t(offset))
        guard let base, base != MAP_FAILED else { throw fail("mmap(offset \(offset), length \(length))", Errno(rawValue: errno)) }
        return IOBuffer(adopting: base, capacity: Int(length)) { pointer, count in
            // SAFETY: the mapping made above, released once.
            _ = munmap(pointer, count)
        }
    }
}
