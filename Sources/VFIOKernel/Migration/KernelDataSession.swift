// A migration data fd as the engine sees it: reads classified by what they mean in the
// current phase, writes, pre-copy info. The fd sits behind a lock, so a close never races a
// read on another thread, and it is released exactly once (the owning DataSession ends it).
import Synchronization
import VFIOBuffers
import VFIOCore
import VFIOSyscalls

final class KernelDataSession: DataSessionIO {
    private let fd: Mutex<MigrationDataFD>
    let deviceName: String
    let isSaving: Bool

    init(fd: consuming MigrationDataFD, deviceName: String, saving: Bool) {
        self.fd = Mutex(fd)
        self.deviceName = deviceName
        self.isSaving = saving
    }

    private func withFD<T>(_ what: String, _ body: (borrowing MigrationDataFD) throws(SyscallError) -> T) throws(VFIOError) -> T {
        let result: Result<T, SyscallError>? = fd.withLock { descriptor in
            guard descriptor.isOpen else { return nil }
            do throws(SyscallError) { return .success(try body(descriptor)) } catch { return .failure(error) }
        }
        guard let result else { throw .invalidUse("\(what) on a closed data session", device: deviceName) }
        do {
            return try result.get()
        } catch {
            throw .dataSession(error, device: deviceName, what)
        }
    }

    func read(into buffer: IOBuffer, range: Range<Int>, phase: MigrationState) throws(VFIOError) -> DataReadResult {
        do {
            let n = try withFD("failed to read device state in \(phase)") { (fd) throws(SyscallError) in try fd.read(into: buffer, range: range) }
            if n > 0 { return .bytes(n) }
            // 0 is final only in STOP_COPY; some drivers use it for "nothing now" in PRE_COPY.
            return phase == .stopCopy ? .endOfStream : .noDataNow
        } catch where error.errno == .noMessage && phase != .stopCopy {
            return .noDataNow
        } catch where error.errno == .wouldBlock {
            return .wouldBlock
        }
    }

    func write(from buffer: IOBuffer, range: Range<Int>) throws(VFIOError) -> Int {
        do {
            return try withFD("the device refused resume data") { (fd) throws(SyscallError) in try fd.write(from: buffer, range: range) }
        } catch where error.errno == .wouldBlock {
            return 0 // non-blocking and full: the engine decides what to do
        }
    }

    func preCopyInfo() throws(VFIOError) -> PreCopyInfo {
        let counters = try withFD("failed to read pre-copy info") { (fd) throws(SyscallError) in try fd.preCopyInfo() }
        return PreCopyInfo(initialBytes: counters.initialBytes, dirtyBytes: counters.dirtyBytes, reinitialized: counters.reinitialized)
    }

    func setMode(_ mode: IOMode) throws(VFIOError) {
        try withFD("failed to set O_NONBLOCK") { (fd) throws(SyscallError) in
            if mode == .blocking { try fd.makeBlocking() } else { try fd.makeNonBlocking() }
        }
    }

    func close() {
        // The fd is released by close even when it reports an error; nothing is left to undo.
        fd.withLock { $0.closeInPlace() }
    }
}
