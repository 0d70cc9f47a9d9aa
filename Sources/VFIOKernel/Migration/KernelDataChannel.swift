// A migration data fd as the engine sees it: reads classified by what they mean in the
// current phase, writes, pre-copy info, and a close that happens exactly once.
import SystemPackage
import VFIOBuffers
import VFIOCore
import VFIOSyscalls

public final class KernelDataChannel: MigrationDataChannel, @unchecked Sendable {
    private var fd: MigrationDataFD?
    public let deviceName: String
    public let isSaving: Bool

    init(fd: consuming MigrationDataFD, deviceName: String, saving: Bool) {
        self.fd = consume fd
        self.deviceName = deviceName
        self.isSaving = saving
    }

    deinit {
        // An owner that forgot to close still must not leak the fd.
        if let fd = fd.take() { try? fd.close() }
    }

    private func error(_ e: SyscallError, _ what: String) -> VFIOError {
        if e.errno == .noDevice {
            return VFIOError(
                .sessionEnded, "\(what): the migration session ended (the device changed state or was reset)",
                device: deviceName, operation: e.operation, errno: e.errno)
        }
        return VFIOError(syscall: e, device: deviceName, message: what)
    }

    public func read(into buffer: IOBuffer, range: Range<Int>, phase: MigrationState) throws(VFIOError) -> DataReadResult {
        guard fd != nil else { preconditionFailure("read on a closed data channel of \(deviceName)") }
        do {
            let n = try fd!.read(into: buffer, range: range)
            if n > 0 { return .bytes(n) }
            // 0 is final only in STOP_COPY; some drivers use it for "nothing now" in PRE_COPY.
            return phase == .stopCopy ? .endOfStream : .noDataNow
        } catch where e(error) == .noMessage && phase != .stopCopy {
            return .noDataNow
        } catch where e(error) == .resourceTemporarilyUnavailable {
            return .wouldBlock
        } catch {
            throw self.error(error, "failed to read device state in \(phase)")
        }
    }

    private func e(_ error: SyscallError) -> Errno { error.errno }

    public func write(from buffer: IOBuffer, range: Range<Int>) throws(VFIOError) -> Int {
        guard fd != nil else { preconditionFailure("write on a closed data channel of \(deviceName)") }
        do {
            return try fd!.write(from: buffer, range: range)
        } catch where e(error) == .resourceTemporarilyUnavailable {
            return 0 // non-blocking and full: the engine decides what to do
        } catch {
            throw self.error(error, "the device refused resume data")
        }
    }

    public func preCopyInfo() throws(VFIOError) -> PreCopyInfo {
        guard fd != nil else { preconditionFailure("preCopyInfo on a closed data channel of \(deviceName)") }
        do {
            let info = try fd!.preCopyInfo()
            return PreCopyInfo(initialBytes: info.initial, dirtyBytes: info.dirty)
        } catch {
            throw self.error(error, "failed to read pre-copy info")
        }
    }

    public func setNonBlocking(_ enabled: Bool) throws(VFIOError) {
        guard fd != nil else { preconditionFailure("fcntl on a closed data channel of \(deviceName)") }
        do {
            try fd!.setNonBlocking(enabled)
        } catch {
            throw self.error(error, "failed to set O_NONBLOCK")
        }
    }

    public func close() {
        guard let fd = fd.take() else { preconditionFailure("data channel of \(deviceName) closed twice") }
        // The fd is released by close even when it reports an error; nothing is left to undo.
        try? fd.close()
    }
}
