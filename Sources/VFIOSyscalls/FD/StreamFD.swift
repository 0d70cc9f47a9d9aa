// A plain file, pipe or socket the migration stream is written to or read from. Always the
// real kernel: the stream's sink is never emulated.
import SystemPackage
import VFIOBuffers

public struct StreamFD: ~Copyable {
    package let rawValue: CInt
    public let name: String
    private let owned: Bool
    /// Decided once: how a write avoids SIGPIPE on this descriptor.
    private let target: WriteTarget

    /// Opens `path` for reading.
    public static func openForReading(_ path: String) throws(SyscallError) -> StreamFD {
        try open(path, flags: .readOnly, "open(read)")
    }

    /// Opens `path` for writing, created or truncated.
    public static func create(_ path: String) throws(SyscallError) -> StreamFD {
        try open(path, flags: [.writeOnly, .create, .truncate], "open(write)")
    }

    private static func open(_ path: String, flags: OpenFlags, _ operation: String) throws(SyscallError) -> StreamFD {
        let fd = try retryingInterrupts(operation, on: "file \(path)") { () throws(Errno) in
            try LinuxKernel.shared.open(path, flags)
        }
        return StreamFD(rawValue: fd, name: path, owned: true)
    }

    /// Moves a complete file written under `temporary` to `final` in one rename(2): a reader
    /// sees the old file or the new one, and a failure leaves the old one in place.
    public static func replace(_ final: String, with temporary: String) throws(SyscallError) {
        try retryingInterrupts("rename(\(temporary))", on: "file \(final)") { () throws(Errno) in
            try LinuxKernel.shared.rename(temporary, to: final)
        }
    }

    /// Standard input (0) or output (1); not closed on deinit.
    package static func standard(_ fd: CInt) -> StreamFD {
        StreamFD(rawValue: fd, name: fd == 0 ? "standard input" : "standard output", owned: false)
    }

    /// Adopts a descriptor the caller opened (a socket, a pipe end); closed on deinit.
    package static func adopting(_ fd: CInt, name: String) -> StreamFD {
        StreamFD(rawValue: fd, name: name, owned: true)
    }

    private init(rawValue: CInt, name: String, owned: Bool) {
        self.rawValue = rawValue
        self.name = name
        self.owned = owned
        self.target = (try? LinuxKernel.shared.writeTarget(of: rawValue)) ?? .pipe
    }

    deinit { if owned { try? LinuxKernel.shared.close(rawValue) } }

    /// Writes all of `buffer[range]`, looping over short writes. ENOSPC, EPIPE and friends are
    /// reported with the byte count that did reach the file; a vanished reader of a pipe or
    /// socket is EPIPE, never a SIGPIPE.
    public func writeAll(_ buffer: IOBuffer, _ range: Range<Int>) throws(SyscallError) {
        try buffer.withUnsafeBytes(in: range) { (raw) throws(SyscallError) in
            // SAFETY: `raw` is the caller's buffer range, alive for this call.
            let region = UserRegion(address: UInt(bitPattern: raw.baseAddress), count: raw.count, writable: false)
            var done = 0
            while done < region.count {
                let n = try retryingInterrupts("write (\(done) of \(region.count) bytes written)", on: name) { () throws(Errno) in
                    try LinuxKernel.shared.writeWithoutSIGPIPE(rawValue, from: region.dropFirst(done), target: target)
                }
                // write(2) returning 0 for a non-empty request means the file takes no more.
                guard n > 0 else { throw SyscallError(operation: "write (\(done) of \(region.count) bytes written)", object: name, errno: .noSpace) }
                done += n
            }
        }
    }

    /// Writes the slices in order with writev(2), as few calls as the kernel allows; the same
    /// rules for short writes, a full file and a vanished reader as `writeAll(_:_:)`.
    public func writeAll(gather slices: [BufferSlice]) throws(SyscallError) {
        let total = slices.reduce(0) { $0 + $1.range.count }
        var done = 0
        let fd = rawValue, target = target
        try slices.forEachRegionGroup { (group: inout IOVecGroup) throws(SyscallError) in
            while !group.isEmpty {
                let vectors = group.remaining
                let n = try retryingInterrupts("writev (\(done) of \(total) bytes written)", on: name) { () throws(Errno) in
                    try LinuxKernel.shared.writevWithoutSIGPIPE(fd, from: vectors, target: target)
                }
                guard n > 0 else { throw SyscallError(operation: "writev (\(done) of \(total) bytes written)", object: name, errno: .noSpace) }
                done += n
                group.consume(n)
            }
        }
    }

    /// Writes all of `bytes` (headers; small).
    public func writeAll(_ bytes: [UInt8]) throws(SyscallError) {
        guard !bytes.isEmpty else { return }
        let buffer = IOBuffer(capacity: bytes.count)
        buffer.write(bytes, at: 0)
        try writeAll(buffer, 0..<bytes.count)
    }

    /// Reads up to `range.count` bytes; 0 means end of file.
    public func read(into buffer: IOBuffer, _ range: Range<Int>) throws(SyscallError) -> Int {
        try buffer.withUnsafeMutableBytes(in: range) { (raw) throws(SyscallError) -> Int in
            // SAFETY: `raw` is the caller's buffer range, alive for this call.
            let region = UserRegion(address: UInt(bitPattern: raw.baseAddress), count: raw.count, writable: true)
            return try retryingInterrupts("read", on: name) { () throws(Errno) in try LinuxKernel.shared.read(rawValue, into: region) }
        }
    }

    /// Reads until `range` is full or the file ends; returns bytes read.
    public func readFully(into buffer: IOBuffer, _ range: Range<Int>) throws(SyscallError) -> Int {
        var done = 0
        while done < range.count {
            let n = try read(into: buffer, range.lowerBound + done..<range.upperBound)
            if n == 0 { break }
            done += n
        }
        return done
    }

    /// fsync, so a capture that reported success is on disk.
    public func sync() throws(SyscallError) {
        try retryingInterrupts("fsync", on: name) { () throws(Errno) in try LinuxKernel.shared.sync(rawValue) }
    }
}
