// The least any data path can do with the same bytes, for the benchmark's raw baselines: a
// pread of a file the page cache holds, a memcpy between two buffers, and a pipe with a thread
// that drains it. Nothing here frames, checksums or hands off.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemPackage
import VFIOBuffers

package enum BenchIO {
    /// memcpy of `source[range]` to `destination[offset...]`.
    package static func copy(_ source: IOBuffer, _ range: Range<Int>, to destination: IOBuffer, at offset: Int) {
        source.withUnsafeBytes(in: range) { from in
            destination.withUnsafeMutableBytes(in: offset..<offset + range.count) { to in
                // SAFETY: both views were bounds-checked by IOBuffer and live for this call; two
                // distinct buffers never overlap, and one buffer's ranges are the caller's to keep apart.
                _ = memcpy(to.baseAddress!, from.baseAddress!, range.count)
            }
        }
    }
}

extension BenchIO {
    /// CPU time of the whole process so far (every thread, user and system), in seconds.
    package static func processCPUSeconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }
}

extension StreamFD {
    /// pread(2) of up to `range.count` bytes at `offset` into `buffer[range]`; 0 at the end.
    package func read(into buffer: IOBuffer, _ range: Range<Int>, atOffset offset: Int) throws(SyscallError) -> Int {
        try buffer.withUnsafeMutableBytes(in: range) { (raw) throws(SyscallError) -> Int in
            // SAFETY: `raw` is the caller's buffer range, alive for this call.
            let region = UserRegion(address: UInt(bitPattern: raw.baseAddress), count: raw.count, writable: true)
            return try retryingInterrupts("pread at \(offset)", on: name) { () throws(Errno) in
                try LinuxKernel.shared.pread(rawValue, into: region, offset: Int64(offset))
            }
        }
    }
}

/// A pipe for a benchmark's sink: the write end for the data path under test, the read end for
/// a thread that drains it. Closing the write end ends the drain's stream.
package final class BenchPipe: @unchecked Sendable {
    private var writer: StreamFD?
    package let reader: StreamFD
    /// The pipe's buffer as the kernel granted it.
    package let size: Int

    /// `size`: the pipe buffer asked for (F_SETPIPE_SZ); the kernel may grant less.
    package init(size: Int) throws(SyscallError) {
        let ends = try retryingInterrupts("pipe", on: "a benchmark pipe") { () throws(Errno) in try LinuxKernel.shared.makePipe() }
        reader = StreamFD.adopting(ends.read, name: "pipe (read end)")
        writer = StreamFD.adopting(ends.write, name: "pipe")
        // A smaller pipe than asked only slows both sides of a comparison alike.
        self.size = (try? LinuxKernel.shared.setPipeSize(ends.write, size)) ?? 65536
    }

    /// Writes all of `buffer[range]` to the write end (EPIPE once it was closed).
    package func write(_ buffer: IOBuffer, _ range: Range<Int>) throws(SyscallError) {
        guard writer != nil else { throw SyscallError(operation: "write", object: "pipe (write end closed)", errno: .brokenPipe) }
        try writer!.writeAll(buffer, range)
    }

    /// Closes the write end: the reader then reads the end of the stream.
    package func closeWriteEnd() { writer = nil }
}
