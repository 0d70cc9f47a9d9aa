// A connection (TCP or TLS) as the engine's byte sink and source: the stream writer and reader
// run over it unchanged, errors become VFIOErrors that name the connection, the operation, the
// errno and how far the stream had got.
import Synchronization
import VFIOBuffers
import VFIOCore
import VFIOSyscalls

/// A source that another thread can interrupt, so a reader blocked in it returns.
public protocol InterruptibleByteSource: ByteSource {
    func interrupt()
}

public final class ConnectionChannel: ByteSink, InterruptibleByteSource, Sendable {
    public let connection: any ByteStreamConnection
    /// "tcp connection to 10.0.0.2:4444"; TLS connections also name the peer's certificate.
    public let name: String
    private let written = Atomic<UInt64>(0)
    private let read = Atomic<UInt64>(0)

    /// Bytes written and read so far (for error messages and metrics).
    public var bytesWritten: UInt64 { written.load(ordering: .relaxed) }
    public var bytesRead: UInt64 { read.load(ordering: .relaxed) }

    public init(_ connection: any ByteStreamConnection) {
        self.connection = connection
        self.name = connection.description
    }

    public func write(_ buffer: IOBuffer, _ range: Range<Int>) throws(VFIOError) {
        do {
            try connection.write(buffer, range: range)
        } catch {
            throw Self.failure(error, "failed to send on \(name) after \(bytesWritten) bytes", name)
        }
        written.add(UInt64(range.count), ordering: .relaxed)
    }

    public func write(gathering slices: [BufferSlice]) throws(VFIOError) {
        do {
            try connection.write(gather: slices)
        } catch {
            throw Self.failure(error, "failed to send on \(name) after \(bytesWritten) bytes", name)
        }
        written.add(UInt64(slices.reduce(0) { $0 + $1.range.count }), ordering: .relaxed)
    }

    public func read(into buffer: IOBuffer, _ range: Range<Int>) throws(VFIOError) -> Int {
        let n: Int
        do {
            n = try connection.read(into: buffer, range: range)
        } catch {
            throw Self.failure(error, "failed to receive on \(name) after \(bytesRead) bytes", name)
        }
        read.add(UInt64(n), ordering: .relaxed)
        return n
    }

    /// Ends the sending direction: the peer reads the end of the stream.
    public func finishSending() throws(VFIOError) {
        do { try connection.shutdownWrite() } catch { throw Self.failure(error, "failed to end the stream on \(name)", name) }
    }

    public func setIdleTimeout(_ timeout: Duration?) throws(VFIOError) {
        do { try connection.setIdleTimeout(timeout) } catch { throw Self.failure(error, "cannot set the idle timeout of \(name)", name) }
    }

    /// Wakes a thread blocked on this connection (it fails); see `ByteStreamConnection.interrupt`.
    public func interrupt() { connection.interrupt() }

    /// Closes; a failure to close is of no use to anyone here.
    public func close() { try? connection.close() }

    static func failure(_ error: any Error, _ what: String, _ name: String) -> VFIOError {
        switch error {
        case let error as SyscallError:
            let errno = ErrorNumber(error.errno)
            return VFIOError(VFIOError.code(for: errno), what, device: name, operation: error.operation, errno: errno)
        case let error as TLSError:
            let code: VFIOError.Code
            switch error.step {
            case .verifyPeer, .peerNotAllowed, .refusedByPeer, .handshake: code = .authenticationFailed
            case .loadCredentials, .configure: code = .invalidArgument
            case .read, .write, .shutdown: code = .ioFailure
            }
            return VFIOError(code, "\(what): \(error.reason)", device: name, operation: error.step.description)
        case let error as VFIOError:
            return error
        default:
            return VFIOError(.ioFailure, "\(what): \(error)", device: name)
        }
    }
}
