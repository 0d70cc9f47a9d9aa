// Files, pipes and standard input/output as byte channels. A stream file being written goes
// to a temporary name beside its final one and is renamed into place only when complete, so a
// failed save never leaves a partial stream where a complete one is expected.
import Foundation
import VFIOBuffers
import VFIOCore
import VFIOSyscalls

public final class FileChannel: ByteSink, ByteSource {
    private let fd: StreamFD
    public let name: String
    /// Where the bytes go while being written, and where they belong once committed.
    private let staging: (temporary: String, final: String)?
    public private(set) var bytesWritten: UInt64 = 0

    private init(fd: consuming StreamFD, name: String, staging: (String, String)?) {
        self.fd = fd
        self.name = name
        self.staging = staging
    }

    /// Opens `path` for reading ("-" is standard input).
    public static func reading(_ path: String) throws(VFIOError) -> FileChannel {
        if path == "-" { return FileChannel(fd: StreamFD.standard(0), name: "standard input", staging: nil) }
        do {
            return FileChannel(fd: try StreamFD.openForReading(path), name: "file \(path)", staging: nil)
        } catch {
            let errno = ErrorNumber(error.errno)
            throw VFIOError(errno == .noSuchFileOrDirectory ? .notFound : VFIOError.code(for: errno),
                            "cannot open the stream", device: path, operation: "open", errno: errno)
        }
    }

    /// Creates a stream file at `path`, written under a temporary name until `commit()`
    /// ("-" is standard output; a device or a FIFO such as /dev/null is written directly).
    public static func creating(_ path: String) throws(VFIOError) -> FileChannel {
        if path == "-" { return FileChannel(fd: StreamFD.standard(1), name: "standard output", staging: nil) }
        if let type = try? FileManager.default.attributesOfItem(atPath: path)[.type] as? FileAttributeType, type != .typeRegular {
            do {
                return FileChannel(fd: try StreamFD.create(path), name: "file \(path)", staging: nil)
            } catch {
                let errno = ErrorNumber(error.errno)
                throw VFIOError(VFIOError.code(for: errno), "cannot open the stream", device: path, operation: "open", errno: errno)
            }
        }
        let url = URL(fileURLWithPath: path)
        let temporary = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).partial-\(ProcessInfo.processInfo.processIdentifier)").path
        do {
            return FileChannel(fd: try StreamFD.create(temporary), name: "file \(path)", staging: (temporary, path))
        } catch {
            let errno = ErrorNumber(error.errno)
            throw VFIOError(VFIOError.code(for: errno), "cannot create the stream file", device: path, operation: "open", errno: errno)
        }
    }

    private func fail(_ error: SyscallError, _ what: String) -> VFIOError {
        let errno = ErrorNumber(error.errno)
        return VFIOError(VFIOError.code(for: errno), what, device: name, operation: error.operation, errno: errno)
    }

    public func write(_ buffer: IOBuffer, _ range: Range<Int>) throws(VFIOError) {
        do {
            try fd.writeAll(buffer, range)
        } catch {
            throw fail(error, "failed to write the stream at byte \(bytesWritten)")
        }
        bytesWritten += UInt64(range.count)
    }

    public func write(gathering slices: [BufferSlice]) throws(VFIOError) {
        do {
            try fd.writeAll(gather: slices)
        } catch {
            throw fail(error, "failed to write the stream at byte \(bytesWritten)")
        }
        bytesWritten += UInt64(slices.reduce(0) { $0 + $1.range.count })
    }

    public func flush() throws(VFIOError) {
        do { try fd.sync() } catch { throw fail(error, "failed to flush the stream after \(bytesWritten) bytes") }
    }

    public func read(into buffer: IOBuffer, _ range: Range<Int>) throws(VFIOError) -> Int {
        do {
            return try fd.read(into: buffer, range)
        } catch {
            throw fail(error, "failed to read the stream")
        }
    }

    /// Flushes and moves a staged file to its final name.
    public func commit() throws(VFIOError) {
        try flush()
        guard let staging else { return }
        do {
            try StreamFD.replace(staging.final, with: staging.temporary)
        } catch {
            let errno = ErrorNumber(error.errno)
            throw VFIOError(VFIOError.code(for: errno), "cannot move the complete stream from \(staging.temporary) into place", device: staging.final, operation: "rename", errno: errno)
        }
    }

    /// Removes a staged file that will never be complete; returns a sentence saying so.
    @discardableResult
    public func discard() -> String? {
        guard let staging else { return nil }
        if (try? FileManager.default.removeItem(atPath: staging.temporary)) != nil {
            return "the incomplete stream was removed; \(staging.final) was not written"
        }
        return "the incomplete stream is left at \(staging.temporary)"
    }
}
