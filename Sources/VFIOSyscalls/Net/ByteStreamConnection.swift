// What the migration transport needs of a connection, plain or TLS: blocking reads and
// writes of IOBuffer ranges on the calling thread, a gather write, a half close.
import VFIOBuffers

/// A connected byte stream. Blocking and thread-confined: one thread at a time calls it
/// (it may be handed to another thread between calls). Errors are `SyscallError` for the
/// socket (ETIMEDOUT after an idle timeout, EPIPE or ECONNRESET from a gone peer) and, on
/// TLS connections, `TLSError` for the protocol.
public protocol ByteStreamConnection: AnyObject, Sendable, CustomStringConvertible {
    /// Reads at most `range.count` bytes into `buffer[range]`; 0 is the end of the stream.
    func read(into buffer: IOBuffer, range: Range<Int>) throws -> Int
    /// Writes all of `buffer[range]`.
    func write(_ buffer: IOBuffer, range: Range<Int>) throws
    /// Writes all of every slice, in order, as one stream of bytes.
    func write(gather slices: [BufferSlice]) throws
    /// Ends the sending direction (the peer reads the end of the stream); reading goes on.
    func shutdownWrite() throws
    /// Closes the connection; further calls throw. Idempotent.
    func close() throws
    /// Shuts the socket down in both directions, from any thread: a call blocked in another
    /// thread returns (with an error or the end of the stream) and every later call fails.
    /// The descriptor stays open until `close()`; never call it concurrently with `close()`.
    func interrupt()
    /// A read or write that makes no progress for `timeout` fails with ETIMEDOUT (nil: waits).
    func setIdleTimeout(_ timeout: Duration?) throws
    /// The peer's address, e.g. "[::1]:4444".
    var peerAddress: String { get }
}

extension ByteStreamConnection {
    /// Reads until `range` is full or the stream ends; returns the bytes read.
    public func readFully(into buffer: IOBuffer, range: Range<Int>) throws -> Int {
        var done = 0
        while done < range.count {
            let n = try read(into: buffer, range: range.lowerBound + done..<range.upperBound)
            if n == 0 { break }
            done += n
        }
        return done
    }
}
