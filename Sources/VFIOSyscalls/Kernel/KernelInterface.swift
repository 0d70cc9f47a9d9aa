// The kernel boundary. Every VFIO syscall the engine makes goes through a KernelInterface:
// LinuxKernel forwards to libc; VFIOMock's emulator answers the same calls the way the kernel
// does, so the typed fd owners and their encoding/decoding run unchanged in tests.
//
// An emulator sees exactly what the kernel sees: an fd number, a request number, and the
// caller's memory, reachable only through UserMemory's bounds-checked copy-in/copy-out.
import SystemPackage

/// The third argument of an ioctl, as the kernel receives it.
package enum IoctlArgument: Sendable {
    /// No argument (VFIO_GET_API_VERSION, VFIO_DEVICE_RESET, ...).
    case none
    /// An integer passed by value (VFIO_CHECK_EXTENSION, VFIO_SET_IOMMU).
    case value(UInt)
    /// A pointer into the caller's memory; `memory` lists every region the call makes
    /// reachable (the argument struct and any buffer it points to).
    case pointer(address: UInt, memory: UserMemory)
}

/// Flags for `open`; close-on-exec is always added.
package struct OpenFlags: OptionSet, Sendable {
    package let rawValue: Int32
    package init(rawValue: Int32) { self.rawValue = rawValue }
    /// O_RDONLY is zero: the empty set.
    package static let readOnly: OpenFlags = []
    package static let writeOnly = OpenFlags(rawValue: 1)
    package static let readWrite = OpenFlags(rawValue: 2)
    package static let create = OpenFlags(rawValue: 0o100)
    package static let truncate = OpenFlags(rawValue: 0o1000)
    package static let nonBlocking = OpenFlags(rawValue: 0o4000)
}

/// The system calls the engine makes on VFIO objects and migration data fds.
/// Implementations return the raw result; retrying EINTR is the caller's job (Retry.swift).
package protocol KernelInterface: AnyObject, Sendable {
    /// A short name for messages ("linux", "mock").
    var name: String { get }
    func open(_ path: String, _ flags: OpenFlags) throws(Errno) -> CInt
    func close(_ fd: CInt) throws(Errno)
    func ioctl(_ fd: CInt, _ request: UInt, _ argument: IoctlArgument) throws(Errno) -> CInt
    func read(_ fd: CInt, into region: UserRegion) throws(Errno) -> Int
    func write(_ fd: CInt, from region: UserRegion) throws(Errno) -> Int
    func pread(_ fd: CInt, into region: UserRegion, offset: Int64) throws(Errno) -> Int
    func pwrite(_ fd: CInt, from region: UserRegion, offset: Int64) throws(Errno) -> Int
    func setNonBlocking(_ fd: CInt, _ enabled: Bool) throws(Errno)
}
