// Guest memory regions backed by a file the engine maps: read-only for a save (the engine
// never writes the source's memory), read-write for a load.
import SystemPackage
import VFIOBuffers
import VFIOCore
import VFIOSyscalls

extension GuestMemoryRegion {
    /// Bytes `offset ..< offset + length` of the file at `path` (a memfd's /proc path, a
    /// hugetlbfs or tmpfs file, a regular file) as the region at `iova`. `length` nil: the
    /// rest of the file. `writable` for a load target; a save maps read-only.
    public static func mapping(
        file path: String, offset: UInt64 = 0, length: UInt64? = nil, iova: UInt64, pageSize: UInt64 = 4096,
        writable: Bool, populate: Bool = true
    ) throws(VFIOError) -> GuestMemoryRegion {
        let size: UInt64
        if let length {
            size = length
        } else {
            let total = try fileSize(path)
            guard total > offset else { throw VFIOError(.invalidArgument, "the file is \(total) bytes, nothing after offset \(offset)", device: path) }
            size = total - offset
        }
        let buffer = try mapped(path) { () throws(SyscallError) in
            try MappedFile.map(path: path, offset: offset, length: size, writable: writable, populate: populate)
        }
        return try GuestMemoryRegion(iova: iova, length: size, pageSize: pageSize, buffer: buffer, writable: writable, name: path)
    }

    /// Part of an open file (a memfd the VMM made) as the region at `iova`; the descriptor
    /// is only used for the call.
    public static func mapping(
        descriptor: FileDescriptor, offset: UInt64 = 0, length: UInt64, iova: UInt64, pageSize: UInt64 = 4096,
        writable: Bool, populate: Bool = true, name: String
    ) throws(VFIOError) -> GuestMemoryRegion {
        let buffer = try mapped(name) { () throws(SyscallError) in
            try MappedFile.map(descriptor: descriptor, offset: offset, length: length, writable: writable, populate: populate)
        }
        return try GuestMemoryRegion(iova: iova, length: length, pageSize: pageSize, buffer: buffer, writable: writable, name: name)
    }

    private static func mapped(_ name: String, _ map: () throws(SyscallError) -> IOBuffer) throws(VFIOError) -> IOBuffer {
        do {
            return try map()
        } catch {
            let errno = ErrorNumber(error.errno)
            throw VFIOError(VFIOError.code(for: errno), "cannot map guest memory", device: name, operation: error.operation, errno: errno)
        }
    }

    private static func fileSize(_ path: String) throws(VFIOError) -> UInt64 {
        do {
            let fd = try FileDescriptor.open(path, .readOnly)
            defer { try? fd.close() }
            return UInt64(try fd.seek(offset: 0, from: .end))
        } catch {
            let errno = (error as? Errno).map { ErrorNumber($0) }
            throw VFIOError(errno.map { VFIOError.code(for: $0) } ?? .ioFailure, "cannot read the size of the guest memory file", device: path, operation: "open/lseek", errno: errno)
        }
    }
}
