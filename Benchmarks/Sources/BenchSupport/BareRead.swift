// The "bare read" baseline: read(2) of the same number of bytes into the same place in the
// record buffer, from a file whose pages are already in the page cache. That is the least any
// real data source costs (one kernel copy and a system call), with no framing and no CRC.
#if canImport(Glibc)
import Glibc
#endif
import VFIOBuffers

public final class PageCacheFile {
    public let length: Int
    private let fd: CInt

    /// Creates an unlinked temporary file holding `length` bytes of `buffer[range]` and reads
    /// it once so its pages are cached.
    public init(copying buffer: IOBuffer, _ range: Range<Int>, directory: String = "/tmp") {
        length = range.count
        var template = Array("\(directory)/vfio-bench-XXXXXX".utf8CString)
        // SAFETY: mkstemp writes the file name into the template array it is given, in place.
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        precondition(fd >= 0, "mkstemp in \(directory) failed: errno \(errno)")
        // SAFETY: the template is a NUL-terminated C string for the duration of the call.
        _ = template.withUnsafeBufferPointer { unlink($0.baseAddress!) }
        self.fd = fd
        // SAFETY: the range was checked by IOBuffer; pwrite reads exactly that many bytes.
        let written = buffer.withUnsafeBytes(in: range) { pwrite(fd, $0.baseAddress, $0.count, 0) }
        precondition(written == length, "could not write the bare-read file: errno \(errno)")
        _ = read(into: buffer, at: range.lowerBound)
    }

    deinit { close(fd) }

    /// pread(2) of the whole file into `buffer[offset ..< offset + length]`.
    @inline(never)
    @discardableResult
    public func read(into buffer: IOBuffer, at offset: Int) -> Int {
        // SAFETY: the destination range was checked by IOBuffer; pread writes at most its count.
        let n = buffer.withUnsafeMutableBytes(in: offset..<(offset + length)) { pread(fd, $0.baseAddress, $0.count, 0) }
        precondition(n == length, "short read of the bare-read file: \(n) of \(length) (errno \(errno))")
        return n
    }
}
