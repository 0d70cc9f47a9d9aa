// The caller's memory as a kernel (or a kernel emulator) reaches it: copy-in and copy-out at
// user addresses, each checked against the regions the call made reachable. An access outside
// them fails with EFAULT, as a real copy_from_user on an unmapped address would, so an
// emulator can never read past a buffer the engine sized wrongly.
import SystemPackage

/// One span of caller memory: where it is, how long, and whether the kernel may write it.
/// Valid only for the duration of the call it was passed to.
package struct UserRegion: Sendable, Equatable {
    package let address: UInt
    package let count: Int
    package let writable: Bool

    package init(address: UInt, count: Int, writable: Bool) {
        precondition(count >= 0, "negative region length")
        self.address = address
        self.count = count
        self.writable = writable
    }

    /// The first `n` bytes (a short read or write).
    package func prefix(_ n: Int) -> UserRegion {
        UserRegion(address: address, count: min(n, count), writable: writable)
    }

    /// The bytes after the first `n`.
    package func dropFirst(_ n: Int) -> UserRegion {
        let n = min(n, count)
        return UserRegion(address: address + UInt(n), count: count - n, writable: writable)
    }

    func contains(_ address: UInt, _ length: Int) -> Bool {
        address >= self.address && length >= 0
            && address - self.address <= UInt(count)
            && UInt(length) <= UInt(count) - (address - self.address)
    }
}

/// The set of regions one call made reachable, with the kernel's copy primitives over them.
package struct UserMemory: Sendable {
    package let regions: [UserRegion]

    package init(_ regions: [UserRegion]) { self.regions = regions }

    private func region(_ address: UInt, _ length: Int, write: Bool) throws(Errno) -> UserRegion {
        for r in regions where r.contains(address, length) {
            if write && !r.writable { throw .badAddress }
            return r
        }
        throw .badAddress
    }

    /// copy_from_user: `count` bytes at `address`.
    package func copyIn(from address: UInt, count: Int) throws(Errno) -> [UInt8] {
        _ = try region(address, count, write: false)
        // SAFETY: [address, address+count) lies inside a region the caller made reachable for this call.
        return Array(UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: address), count: count))
    }

    /// copy_to_user: `bytes` to `address`.
    package func copyOut(_ bytes: some Collection<UInt8>, to address: UInt) throws(Errno) {
        _ = try region(address, bytes.count, write: true)
        guard !bytes.isEmpty else { return }
        // SAFETY: the destination lies inside a writable region the caller made reachable for this call.
        UnsafeMutableRawBufferPointer(start: UnsafeMutableRawPointer(bitPattern: address), count: bytes.count)
            .copyBytes(from: bytes)
    }

    /// Loads a little-endian integer at `address`.
    package func load<T: FixedWidthInteger>(_ type: T.Type, at address: UInt) throws(Errno) -> T {
        let bytes = try copyIn(from: address, count: MemoryLayout<T>.size)
        var value: T = 0
        for (i, b) in bytes.enumerated() { value |= T(truncatingIfNeeded: b) << (8 * i) }
        return value
    }

    /// Stores a little-endian integer at `address`.
    package func store<T: FixedWidthInteger>(_ value: T, at address: UInt) throws(Errno) {
        var bytes = [UInt8](repeating: 0, count: MemoryLayout<T>.size)
        for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
        try copyOut(bytes, to: address)
    }

    /// Reads a NUL-terminated string starting at `address` (at most `limit` bytes).
    package func loadCString(at address: UInt, limit: Int = 4096) throws(Errno) -> String {
        var bytes: [UInt8] = []
        var cursor = address
        while bytes.count < limit {
            let b = try load(UInt8.self, at: cursor)
            if b == 0 { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(b)
            cursor += 1
        }
        throw .fileNameTooLong
    }
}
