// The save session of a replay device (`replay=FILE`): the captured device bytes, read from
// the capture file straight into the caller's buffer, with the capture's chunking (a read
// returns at most the rest of the current chunk) and its phases (PRE_COPY serves the phase-1
// chunks, then the temporary end; STOP_COPY serves what is left, then EOF). PRECOPY_INFO
// answers what the capture recorded at the same stream position.
import Foundation
import SystemPackage
import VFIOStream
import VFIOSyscalls

final class ReplaySaveSession: MockSaveSession, @unchecked Sendable {
    private let capture: MockCapture
    /// The capture file, open for this session.
    private var file: CInt?
    private var chunk = 0
    private var inChunk = 0

    /// Called with the lock held; the caller's fd is a fresh reserved descriptor.
    init(device: MockDevice, lock: NSCondition, capture: MockCapture, stopCopy: Bool, salt: UInt64) throws(Errno) {
        self.capture = capture
        let ledger = device.ledger
        let data = try ledger.open(capture.path, .readOnly)
        let fd: CInt
        do {
            fd = try ledger.reserve()
        } catch {
            try? ledger.close(data)
            throw error
        }
        file = data
        super.init(device: device, lock: lock, userFD: fd, stopCopy: stopCopy, salt: salt)
    }

    override var servesDirectly: Bool { true }

    /// Captured bytes not served yet, in the phase-1 chunks and in all chunks.
    private var remaining: (phase1: UInt64, total: UInt64) {
        let served = consumedBytes
        let total = capture.totalBytes > served ? capture.totalBytes - served : 0
        let phase1 = capture.preCopyBytes > served ? capture.preCopyBytes - served : 0
        return (phase1, total)
    }

    override var pendingBytes: UInt64 { stopCopy ? remaining.total : remaining.phase1 }
    override var stopCopyLength: UInt64 { capture.stopCopyEstimate }

    /// The capture's last reading at or before this position, less what was read since it;
    /// without readings, every phase-1 byte left counts as initial data. Never more than the
    /// phase-1 bytes left, so both reach 0 exactly where reads give the temporary end.
    override var precopyInfo: (initial: UInt64, dirty: UInt64) {
        let left = remaining.phase1
        let position = consumedBytes
        guard let reading = capture.progress.last(where: { $0.offset <= position }) else { return (left, 0) }
        var since = position - reading.offset
        let initial = reading.initialBytes - min(reading.initialBytes, since)
        since -= min(reading.initialBytes, since)
        let dirty = reading.dirtyBytes - min(reading.dirtyBytes, since)
        let clampedInitial = min(initial, left)
        return (clampedInitial, min(dirty, left - clampedInitial))
    }

    override func serve(into region: UserRegion) throws(Errno) -> Int {
        let chunks = capture.chunks
        guard let file, chunk < chunks.count else { return 0 }
        if !stopCopy && chunk >= capture.preCopyChunkCount { return 0 }
        let current = chunks[chunk]
        let want = min(region.count, current.length - inChunk)
        let n = try LinuxKernel.shared.pread(file, into: region.prefix(want), offset: Int64(current.fileOffset) + Int64(inChunk))
        guard n > 0 else { throw .ioError } // the file shrank since it was indexed
        inChunk += n
        if inChunk == current.length {
            chunk += 1
            inChunk = 0
        }
        return n
    }

    override func finishTeardown() {
        lock.lock()
        let fd = file
        file = nil
        lock.unlock()
        if let fd { try? device.ledger.close(fd) }
    }
}
