// The migration data fd a MIG_DEVICE_STATE SET returns: read in saving states, write in
// RESUMING, VFIO_MIG_GET_PRECOPY_INFO in PRE_COPY. Not seekable; closed exactly once, by
// `close()` (consuming) or when its owner ends.
import CVFIO
import SystemPackage
import VFIOBuffers

/// VFIO_MIG_GET_PRECOPY_INFO as the kernel filled it.
public struct PreCopyCounters: Sendable, Equatable {
    public var initialBytes: UInt64
    public var dirtyBytes: UInt64
    /// Meaningful only after MIG_PRECOPY_INFOv2 was set on the device (0 is passed in).
    public var flags: UInt32
    public var reinitialized: Bool { flags & UInt32(CVFIO_PRECOPY_INFO_REINIT) != 0 }
}

extension KernelFD where Kind == MigrationDataKind {
    /// The device whose session this is.
    public var deviceName: String { label }

    /// One read into `buffer[range]`. EINTR is retried; ENOMSG, EAGAIN, ENODEV are thrown for
    /// the caller to interpret (they mean different things in different states).
    public func read(into buffer: IOBuffer, range: Range<Int>) throws(SyscallError) -> Int {
        try buffer.withUnsafeMutableBytes(in: range) { (raw) throws(SyscallError) -> Int in
            // SAFETY: `raw` is the caller's buffer range, alive for this call.
            let region = UserRegion(address: UInt(bitPattern: raw.baseAddress), count: raw.count, writable: true)
            return try retryingInterrupts("read", on: object) { () throws(Errno) in try kernel.read(rawValue, into: region) }
        }
    }

    /// One write from `buffer[range]`; returns bytes accepted.
    public func write(from buffer: IOBuffer, range: Range<Int>) throws(SyscallError) -> Int {
        try buffer.withUnsafeBytes(in: range) { (raw) throws(SyscallError) -> Int in
            // SAFETY: `raw` is the caller's buffer range, alive for this call.
            let region = UserRegion(address: UInt(bitPattern: raw.baseAddress), count: raw.count, writable: false)
            return try retryingInterrupts("write", on: object) { () throws(Errno) in try kernel.write(rawValue, from: region) }
        }
    }

    /// VFIO_MIG_GET_PRECOPY_INFO.
    public func preCopyInfo() throws(SyscallError) -> PreCopyCounters {
        let size = MemoryLayout<cvfio_precopy_info>.size
        var info = cvfio_precopy_info()
        info.argsz = UInt32(size)
        var arg = ArgumentBuffer(byteCount: size)
        arg.store(info)
        _ = try arg.withArgument { (a) throws(SyscallError) in
            try call("VFIO_MIG_GET_PRECOPY_INFO", UInt(CVFIO_MIG_GET_PRECOPY_INFO), a)
        }
        let out = arg.load(cvfio_precopy_info.self)
        return PreCopyCounters(initialBytes: out.initial_bytes, dirtyBytes: out.dirty_bytes, flags: out.flags)
    }

    /// fcntl(F_SETFL) clearing O_NONBLOCK: reads and writes wait.
    public func makeBlocking() throws(SyscallError) {
        try retryingInterrupts("fcntl(O_NONBLOCK=false)", on: object) { () throws(Errno) in try kernel.setNonBlocking(rawValue, false) }
    }

    /// fcntl(F_SETFL) setting O_NONBLOCK: "nothing now" is EAGAIN.
    public func makeNonBlocking() throws(SyscallError) {
        try retryingInterrupts("fcntl(O_NONBLOCK=true)", on: object) { () throws(Errno) in try kernel.setNonBlocking(rawValue, true) }
    }
}
