// The migration data fd a MIG_DEVICE_STATE SET returns: read in saving states, write in
// RESUMING, VFIO_MIG_GET_PRECOPY_INFO in PRE_COPY. Not seekable; closed exactly once.
import CVFIO
import SystemPackage
import VFIOBuffers

public struct MigrationDataFD: ~Copyable {
    public let kernel: any KernelInterface
    public private(set) var rawValue: CInt
    public let deviceName: String
    /// The state whose arc opened this session (a saving state or RESUMING).
    public let openedIn: UInt32

    init(kernel: any KernelInterface, rawValue: CInt, deviceName: String, state: UInt32) {
        self.kernel = kernel
        self.rawValue = rawValue
        self.deviceName = deviceName
        self.openedIn = state
    }

    deinit { if rawValue >= 0 { try? kernel.close(rawValue) } }

    var object: String { "migration data fd \(rawValue) of device \(deviceName)" }

    /// Closes the fd now, reporting an error close returns (the fd is gone either way).
    public consuming func close() throws(SyscallError) {
        let fd = rawValue
        let object = self.object
        rawValue = -1
        do {
            try kernel.close(fd)
        } catch {
            throw SyscallError(operation: "close", object: object, errno: error)
        }
    }

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

    /// VFIO_MIG_GET_PRECOPY_INFO: initial bytes, dirty bytes and the flags the kernel left
    /// (meaningful only after MIG_PRECOPY_INFOv2 was set on the device; 0 is passed in).
    public func preCopyInfo() throws(SyscallError) -> (initial: UInt64, dirty: UInt64, flags: UInt32) {
        let size = MemoryLayout<cvfio_precopy_info>.size
        var info = cvfio_precopy_info()
        info.argsz = UInt32(size)
        var arg = ArgumentBuffer(byteCount: size)
        arg.store(info)
        _ = try arg.withArgument { (a) throws(SyscallError) in
            try retryingInterrupts("VFIO_MIG_GET_PRECOPY_INFO", on: object) { () throws(Errno) in
                try kernel.ioctl(rawValue, UInt(CVFIO_MIG_GET_PRECOPY_INFO), a)
            }
        }
        let out = arg.load(cvfio_precopy_info.self)
        return (out.initial_bytes, out.dirty_bytes, out.flags)
    }

    /// fcntl(F_SETFL, O_NONBLOCK) on or off.
    public func setNonBlocking(_ enabled: Bool) throws(SyscallError) {
        try retryingInterrupts("fcntl(O_NONBLOCK=\(enabled))", on: object) { () throws(Errno) in
            try kernel.setNonBlocking(rawValue, enabled)
        }
    }
}
