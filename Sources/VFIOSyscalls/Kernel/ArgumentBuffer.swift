// An ioctl argument built in 8-byte-aligned storage: a uAPI struct, optionally followed by a
// payload (VFIO_DEVICE_FEATURE) or capability space (GET_INFO). It lends the kernel its bytes
// as UserMemory for exactly one call.
import SystemPackage

struct ArgumentBuffer {
    private var storage: [UInt64]
    let byteCount: Int

    init(byteCount: Int) {
        precondition(byteCount > 0)
        self.byteCount = byteCount
        self.storage = Array(repeating: 0, count: (byteCount + 7) / 8)
    }

    /// Stores a uAPI struct (a plain C struct) at `offset`.
    mutating func store<T>(_ value: T, at offset: Int = 0) {
        precondition(offset >= 0 && offset + MemoryLayout<T>.size <= byteCount, "argument store out of range")
        storage.withUnsafeMutableBytes { raw in
            // SAFETY: the destination range was checked against the buffer's size.
            raw.storeBytes(of: value, toByteOffset: offset, as: T.self)
        }
    }

    /// Loads a uAPI struct from `offset` (unaligned-safe).
    func load<T>(_ type: T.Type, at offset: Int = 0) -> T {
        precondition(offset >= 0 && offset + MemoryLayout<T>.size <= byteCount, "argument load out of range")
        return storage.withUnsafeBytes { raw in
            // SAFETY: the source range was checked against the buffer's size.
            raw.loadUnaligned(fromByteOffset: offset, as: T.self)
        }
    }

    /// The bytes as the kernel left them (for capability chains).
    var bytes: [UInt8] {
        storage.withUnsafeBytes { Array($0.prefix(byteCount)) }
    }

    /// Issues one call with the buffer as the pointer argument; `extra` are further regions the
    /// argument points to (a bitmap, a range array), kept alive by the caller around this call.
    mutating func withArgument<R>(
        extra: [UserRegion] = [],
        _ body: (IoctlArgument) throws(SyscallError) -> R
    ) throws(SyscallError) -> R {
        let count = byteCount
        let result: Result<R, SyscallError> = storage.withUnsafeMutableBytes { raw in
            // SAFETY: the storage stays alive and unmoved for the duration of this closure.
            let address = UInt(bitPattern: raw.baseAddress)
            let region = UserRegion(address: address, count: count, writable: true)
            do throws(SyscallError) {
                return .success(try body(.pointer(address: address, memory: UserMemory([region] + extra))))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }
}

/// Lends an array of 64-bit words (a dirty bitmap, a DMA-logging range table) to the kernel.
func withUserRegion<R>(
    of words: inout [UInt64], writable: Bool,
    _ body: (UserRegion) throws(SyscallError) -> R
) throws(SyscallError) -> R {
    let result: Result<R, SyscallError> = words.withUnsafeMutableBytes { raw in
        // SAFETY: the array's storage is pinned and alive for this closure.
        let region = UserRegion(address: UInt(bitPattern: raw.baseAddress), count: raw.count, writable: writable)
        do throws(SyscallError) { return .success(try body(region)) } catch { return .failure(error) }
    }
    return try result.get()
}

/// Little-endian reads from kernel-filled bytes, with bounds checks (capability chains).
struct CapabilityReader {
    let bytes: [UInt8]

    func u16(_ offset: Int) -> UInt16? { value(offset) }
    func u32(_ offset: Int) -> UInt32? { value(offset) }
    func u64(_ offset: Int) -> UInt64? { value(offset) }

    private func value<T: FixedWidthInteger>(_ offset: Int) -> T? {
        let size = MemoryLayout<T>.size
        guard offset >= 0, offset <= bytes.count - size else { return nil }
        var v: T = 0
        for i in 0..<size { v |= T(bytes[offset + i]) << (8 * i) }
        return v
    }

    /// Walks the chain from `first`; yields (id, version, offset). Stops on a loop or a bad offset.
    func capabilities(from first: UInt32) -> [(id: UInt16, version: UInt16, offset: Int)] {
        var found: [(UInt16, UInt16, Int)] = []
        var next = Int(first)
        var seen: Set<Int> = []
        while next != 0, next >= 8, !seen.contains(next), let id = u16(next), let version = u16(next + 2),
              let following = u32(next + 4) {
            seen.insert(next)
            found.append((id, version, next))
            next = Int(following)
        }
        return found
    }
}
