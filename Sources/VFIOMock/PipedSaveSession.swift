// The default save session: a real pipe whose read end the caller owns, fed by a producer
// thread that generates the device's state in the mock vendor format (BlockSchedule's order).
// The producer generates and writes outside the lock; everything else is guarded by it.
import Foundation
import SystemPackage
import VFIOSyscalls

final class PipedSaveSession: MockSaveSession, @unchecked Sendable {
    /// The producer's write end; closed after the end record, or when the session ends.
    private var writeFD: CInt?
    /// A private non-blocking read end, used to unblock the producer when the session ends.
    private var drainFD: CInt?
    private let layout: StateLayout
    private let identity: MockStateFormat.Identity
    private var schedule: BlockSchedule
    private var stopRequested = false
    private var producerDone = false

    static let chunkBytes = 1 << 20

    /// Opens the pipe (grown to 1 MiB) and starts the producer. Called with the lock held.
    init(device: MockDevice, lock: NSCondition, stopCopy: Bool, salt: UInt64) throws(Errno) {
        let image = device.image
        layout = image.layout
        identity = device.streamIdentity
        schedule = BlockSchedule(image: image)
        let ledger = device.ledger
        let pipe = try ledger.pipe()
        do {
            _ = try? LinuxKernel.shared.setPipeSize(pipe.write, Self.chunkBytes)
            drainFD = try ledger.open("/proc/self/fd/\(pipe.read)", [.nonBlocking])
        } catch {
            try? ledger.close(pipe.read)
            try? ledger.close(pipe.write)
            throw error
        }
        writeFD = pipe.write
        super.init(device: device, lock: lock, userFD: pipe.read, stopCopy: stopCopy, salt: salt)
        ledger.threadStarted()
        let thread = Thread { [self] in produce() }
        thread.name = "mock-save-\(device.name)"
        thread.start()
    }

    // MARK: accounting the caller sees (lock held)

    override var pendingBytes: UInt64 {
        schedule.pendingBytes(consumed: consumedBytes, image: device.image, stopCopy: stopCopy)
    }

    override var precopyInfo: (initial: UInt64, dirty: UInt64) {
        schedule.precopyInfo(consumed: consumedBytes, image: device.image, stopCopy: stopCopy)
    }

    override func blockChanged(_ block: Int) {
        guard !dead, !stopCopy, schedule.blockChanged(block, image: device.image) else { return }
        lock.broadcast()
    }

    override func restartInitialData() -> Bool {
        guard !dead, !stopCopy else { return false }
        schedule.restart(image: device.image)
        lock.broadcast()
        return true
    }

    // MARK: ending

    override func end() {
        stopRequested = true
        super.end()
    }

    /// Stops the producer (draining the pipe so a blocked write returns) and closes the
    /// emulator's pipe ends. Runs without the lock; idempotent.
    override func finishTeardown() {
        var scratch = [UInt64](repeating: 0, count: 8192)
        lock.lock()
        while !producerDone {
            let drain = drainFD
            lock.unlock()
            if let drain {
                while let n = try? LinuxKernel.shared.readBytes(drain, into: &scratch, byteRange: 0..<scratch.count * 8), n > 0 {}
            }
            lock.lock()
            if !producerDone { _ = lock.wait(until: Date(timeIntervalSinceNow: 0.001)) }
        }
        let fds = [writeFD, drainFD].compactMap { $0 }
        writeFD = nil
        drainFD = nil
        lock.unlock()
        for fd in fds { try? device.ledger.close(fd) }
    }

    // MARK: producer

    private func produce() {
        var buffer = [UInt64](repeating: 0, count: (max(Self.chunkBytes, layout.blockSize) + 256) / 8)
        while true {
            lock.lock()
            var pieces: [BlockSchedule.Piece] = []
            while !stopRequested {
                if !device.storedFaults.stallProducer {
                    pieces = schedule.take(maxBytes: UInt64(Self.chunkBytes), image: device.image, stopCopy: stopCopy)
                    if !pieces.isEmpty { break }
                }
                lock.wait()
            }
            let fd = writeFD
            if stopRequested || fd == nil {
                producerDone = true
                device.ledger.threadFinished()
                lock.broadcast()
                lock.unlock()
                return
            }
            lock.unlock()

            var words = 0
            var ends = false
            for piece in pieces {
                switch piece {
                case .header(let seed):
                    for w in MockStateFormat.header(identity: identity, seed: seed, salt: salt) {
                        buffer[words] = w
                        words += 1
                    }
                case .block(let index, let version, let key):
                    let length = layout.blockLength(index)
                    let h = MockStateFormat.recordHeader(kind: MockStateFormat.kindBlock, payloadLength: length, index: UInt64(index), value: version, salt: salt)
                    buffer[words] = h.0; buffer[words + 1] = h.1; buffer[words + 2] = h.2; buffer[words + 3] = h.3
                    words += 4
                    let payloadWords = MockStateFormat.paddedLength(length) / 8
                    BlockContent.fill(&buffer, at: words, key: key, wordOffset: 0, wordCount: payloadWords, byteLength: length)
                    words += payloadWords
                case .end(let records, let digest):
                    let h = MockStateFormat.recordHeader(kind: MockStateFormat.kindEnd, payloadLength: 0, index: records, value: digest, salt: salt)
                    buffer[words] = h.0; buffer[words + 1] = h.1; buffer[words + 2] = h.2; buffer[words + 3] = h.3
                    words += 4
                    ends = true
                }
            }

            let total = words * 8
            var offset = 0
            var failed = false
            while offset < total {
                do {
                    offset += try LinuxKernel.shared.writeBytes(fd!, from: buffer, byteRange: offset..<total)
                } catch .interrupted {
                    continue
                } catch {
                    failed = true
                    break
                }
                lock.lock()
                let stop = stopRequested
                lock.unlock()
                if stop { break }
            }

            lock.lock()
            if ends && !failed && !stopRequested, let fd = writeFD {
                // Complete: closing the only write end gives the caller EOF after the last byte.
                writeFD = nil
                try? device.ledger.close(fd)
                producerDone = true
            }
            if failed { producerDone = true }
            let done = producerDone
            if done { device.ledger.threadFinished() }
            lock.broadcast()
            lock.unlock()
            if done { return }
        }
    }
}
