// A pipe as a benchmark's sink: the data path under test writes the write end, a thread of
// ours drains the read end into a buffer of its own (what a reader such as `ssh` or `zstd`
// would do at best). `finish` ends the stream and says how many bytes came through.
import Foundation
import VFIOBuffers
import VFIOCore
import VFIOSyscalls

public final class PipeSink: ByteSink, @unchecked Sendable {
    private let pipe: BenchPipe
    private let done = DispatchSemaphore(value: 0)
    private var drained: UInt64 = 0
    private var failure: VFIOError?
    private var finished = false
    public let name = "pipe"

    /// A pipe of `size` bytes (1 MiB: the kernel's default pipe-max-size) drained in reads of
    /// `size`.
    public init(size: Int = 1 << 20) throws(VFIOError) {
        do { pipe = try BenchPipe(size: size) } catch { throw ConnectionChannel.failure(error, "cannot make a pipe", "a benchmark pipe") }
        let thread = Thread { [self] in drain() }
        thread.name = "vfio-bench-drain"
        thread.start()
    }

    /// The pipe buffer the kernel granted.
    public var pipeSize: Int { pipe.size }

    private func drain() {
        let buffer = IOBuffer(capacity: pipe.size)
        var total: UInt64 = 0
        do {
            while true {
                let n = try pipe.reader.read(into: buffer, 0..<buffer.capacity)
                if n == 0 { break }
                total += UInt64(n)
            }
        } catch {
            failure = ConnectionChannel.failure(error, "failed to drain the pipe", "pipe (read end)")
        }
        drained = total
        done.signal()
    }

    public func write(_ buffer: IOBuffer, _ range: Range<Int>) throws(VFIOError) {
        do { try pipe.write(buffer, range) } catch { throw ConnectionChannel.failure(error, "failed to write the pipe", name) }
    }

    /// Closes the write end, waits for the drain to read the end: the bytes it read.
    @discardableResult
    public func finish() throws(VFIOError) -> UInt64 {
        if !finished {
            finished = true
            pipe.closeWriteEnd()
            done.wait()
        }
        if let failure { throw failure }
        return drained
    }

    deinit { _ = try? finish() }
}
