// Emulated DMA into this process's memory, for the kernel emulator: a device writing guest
// memory through its IOMMU mapping writes the mapping's host virtual address. The emulator
// validates the IOVA side (mapped, writable, fully inside, vaddr valid) but cannot know the
// vaddr is real memory, so the copy goes through process_vm_writev on ourselves: the kernel
// checks the destination and answers EFAULT instead of the process faulting.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemPackage

package enum ProcessMemory {
    private typealias WriteV = @convention(c) (
        pid_t, UnsafePointer<iovec>?, UInt, UnsafePointer<iovec>?, UInt, UInt
    ) -> Int

    /// process_vm_writev, looked up once: the C library has it, Swift's Glibc module does not
    /// declare it.
    private static let writev: WriteV? = {
        guard let symbol = dlsym(nil, "process_vm_writev") else { return nil }
        // SAFETY: the symbol is glibc's process_vm_writev, whose C signature WriteV restates.
        return unsafeBitCast(symbol, to: WriteV.self)
    }()

    /// Copies bytes `byteRange` of `elements`' storage to `address` in this process. Returns
    /// the bytes written, fewer when the destination stops being writable part way; throws
    /// when none could be (EFAULT: not mapped or not writable; ENOSYS where the call is
    /// unavailable).
    package static func write<T: BitwiseCopyable>(_ elements: [T], byteRange: Range<Int>, at address: UInt64) throws(Errno) -> Int {
        guard let writev else { throw .noFunction }
        guard !byteRange.isEmpty else { return 0 }
        let result: Int = elements.withUnsafeBytes { raw in
            precondition(byteRange.lowerBound >= 0 && byteRange.upperBound <= raw.count, "write range outside the array")
            // SAFETY: the local side is the array's pinned storage; the remote side is only a number the kernel checks.
            var local = iovec(iov_base: UnsafeMutableRawPointer(mutating: raw.baseAddress! + byteRange.lowerBound), iov_len: byteRange.count)
            var remote = iovec(iov_base: UnsafeMutableRawPointer(bitPattern: UInt(address)), iov_len: byteRange.count)
            return writev(getpid(), &local, 1, &remote, 1, 0)
        }
        if result < 0 { throw Errno(rawValue: errno) }
        if result == 0 { throw .badAddress }
        return result
    }

    /// Writes `count` copies of `byte` at `address` (see `write`).
    package static func fill(_ byte: UInt8, count: Int, at address: UInt64) throws(Errno) -> Int {
        let bytes = [UInt8](repeating: byte, count: count)
        return try write(bytes, byteRange: 0..<count, at: address)
    }
}
