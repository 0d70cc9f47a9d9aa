// A save session (PRE_COPY / PRE_COPY_P2P / STOP_COPY): a real pipe whose read end the caller
// owns, fed by a producer thread that writes the device's state in the mock vendor format.
//
// Order of the stream: header, every block once (the initial image), then blocks that changed
// after they were sent (dirty data), then, once STOP_COPY is reached, an end record and EOF.
// All fields are guarded by the kernel lock; the producer generates and writes outside it.
import Foundation
import SystemPackage
import VFIOSyscalls

final class MockSaveSession: @unchecked Sendable {
    let device: MockDevice
    private let lock: NSCondition
    /// The read end, handed to the caller as the data fd.
    let userFD: CInt
    /// The producer's write end; closed after the end record, or when the session ends.
    private var writeFD: CInt?
    /// A private non-blocking read end, used to unblock the producer when the session ends.
    private var drainFD: CInt?
    let salt: UInt64
    private let seed: UInt64
    private let layout: StateLayout
    private let identity: MockStateFormat.Identity

    /// STOP_COPY reached: the device is stopped and the stream runs to its end.
    private(set) var stopCopy: Bool
    /// Ended (arc, reset, close, fault): reads fail with ENODEV.
    private(set) var dead = false
    private var stopRequested = false
    private var producerDone = false
    var nonBlocking = false

    // Stream accounting (bytes).
    let initialBytes: UInt64
    private var headerScheduled = false
    private var cursor = 0
    private var dirtyQueue: [Int] = []
    private var dirtyHead = 0
    private var dirtySet: Set<Int> = []
    private var dirtyBytes: UInt64 = 0
    private var endScheduled = false
    private var blockRecords: UInt64 = 0
    private var scheduledBytes: UInt64 = 0
    /// Bytes the caller has read.
    private(set) var consumedBytes: UInt64 = 0
    private var dirtyCredit: UInt64 = 0
    var faultTriggered: Set<String> = []

    static let chunkBytes = 1 << 20

    /// Opens the pipe (grown to 1 MiB) and starts the producer. Called with the lock held.
    init(device: MockDevice, lock: NSCondition, stopCopy: Bool, salt: UInt64) throws(Errno) {
        self.device = device
        self.lock = lock
        self.stopCopy = stopCopy
        self.salt = salt
        let image = device.image
        self.seed = image.contentSeed
        self.layout = image.layout
        self.identity = device.streamIdentity
        self.initialBytes = UInt64(MockStateFormat.headerBytes) + Self.recordBytes(image, blocks: 0..<image.blockCount)
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
        userFD = pipe.read
        writeFD = pipe.write
        ledger.threadStarted()
        let thread = Thread { [self] in produce() }
        thread.name = "mock-save-\(device.name)"
        thread.start()
    }

    static func recordBytes(_ image: DeviceStateImage, block: Int) -> UInt64 {
        UInt64(MockStateFormat.recordHeaderBytes + MockStateFormat.paddedLength(image.blockLength(block)))
    }

    static func recordBytes(_ image: DeviceStateImage, blocks: Range<Int>) -> UInt64 {
        guard !blocks.isEmpty else { return 0 }
        let full = UInt64(MockStateFormat.recordHeaderBytes + image.blockSize)
        let last = image.blockCount - 1
        var total = UInt64(blocks.count) * full
        if blocks.contains(last) { total -= full - recordBytes(image, block: last) }
        return total
    }

    // MARK: accounting the caller sees (lock held)

    /// Bytes still to come before the stream is momentarily (PRE_COPY) or finally drained.
    var pendingBytes: UInt64 {
        let image = device.image
        var pending = scheduledBytes - consumedBytes + dirtyBytes
        if !headerScheduled { pending += UInt64(MockStateFormat.headerBytes) }
        pending += Self.recordBytes(image, blocks: cursor..<image.blockCount)
        if stopCopy && !endScheduled { pending += UInt64(MockStateFormat.recordHeaderBytes) }
        return pending
    }

    /// VFIO_MIG_GET_PRECOPY_INFO's two numbers.
    var precopyInfo: (initial: UInt64, dirty: UInt64) {
        let initial = initialBytes > consumedBytes ? initialBytes - consumedBytes : 0
        return (initial, pendingBytes - initial)
    }

    /// A block changed while running: resend it if its initial copy was already scheduled.
    func blockChanged(_ block: Int) {
        guard !dead, !stopCopy, block < cursor, dirtySet.insert(block).inserted else { return }
        dirtyQueue.append(block)
        dirtyBytes += Self.recordBytes(device.image, block: block)
        lock.broadcast()
    }

    func enterStopCopy() {
        stopCopy = true
        lock.broadcast()
    }

    /// Accounts `n` bytes the caller read; returns how many blocks the device dirties now.
    func consumed(_ n: Int, rate: MockDeviceConfiguration.DirtyRate) -> Int {
        consumedBytes += UInt64(n)
        guard !stopCopy, rate.blocks > 0 else { return 0 }
        dirtyCredit += UInt64(n)
        let rounds = dirtyCredit / rate.perBytes
        dirtyCredit %= rate.perBytes
        return Int(rounds) * rate.blocks
    }

    // MARK: ending

    /// Marks the session ended (lock held); the caller then runs `finishTeardown()` unlocked.
    func end() {
        dead = true
        stopRequested = true
        lock.broadcast()
    }

    /// Stops the producer (draining the pipe so a blocked write returns) and closes the
    /// emulator's pipe ends. Runs without the lock; idempotent.
    func finishTeardown() {
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

    private enum Piece {
        case header
        case block(index: Int, version: UInt64)
        case end(records: UInt64, digest: UInt64)
    }

    /// Takes up to one chunk of work (lock held).
    private func takeWork() -> [Piece] {
        let image = device.image
        var pieces: [Piece] = []
        var budget = UInt64(Self.chunkBytes)
        func charge(_ bytes: UInt64) -> Bool {
            if !pieces.isEmpty && bytes > budget { return false }
            budget = bytes > budget ? 0 : budget - bytes
            scheduledBytes += bytes
            return true
        }
        if !headerScheduled {
            headerScheduled = true
            _ = charge(UInt64(MockStateFormat.headerBytes))
            pieces.append(.header)
        }
        while budget > 0 {
            if cursor < image.blockCount {
                guard charge(Self.recordBytes(image, block: cursor)) else { break }
                pieces.append(.block(index: cursor, version: image.version(of: cursor)))
                cursor += 1
                blockRecords += 1
            } else if dirtyHead < dirtyQueue.count {
                let block = dirtyQueue[dirtyHead]
                let bytes = Self.recordBytes(image, block: block)
                guard charge(bytes) else { break }
                dirtyHead += 1
                dirtySet.remove(block)
                dirtyBytes -= bytes
                pieces.append(.block(index: block, version: image.version(of: block)))
                blockRecords += 1
                if dirtyHead == dirtyQueue.count {
                    dirtyQueue.removeAll(keepingCapacity: true)
                    dirtyHead = 0
                }
            } else if stopCopy && !endScheduled {
                guard charge(UInt64(MockStateFormat.recordHeaderBytes)) else { break }
                endScheduled = true
                pieces.append(.end(records: blockRecords, digest: image.digest))
            } else {
                break
            }
        }
        return pieces
    }

    private func produce() {
        var buffer = [UInt64](repeating: 0, count: (max(Self.chunkBytes, layout.blockSize) + 256) / 8)
        while true {
            lock.lock()
            var pieces: [Piece] = []
            while !stopRequested {
                if !device.storedFaults.stallProducer {
                    pieces = takeWork()
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
                case .header:
                    for w in MockStateFormat.header(identity: identity, seed: seed, salt: salt) {
                        buffer[words] = w
                        words += 1
                    }
                case .block(let index, let version):
                    let length = layout.blockLength(index)
                    let h = MockStateFormat.recordHeader(kind: MockStateFormat.kindBlock, payloadLength: length, index: UInt64(index), value: version, salt: salt)
                    buffer[words] = h.0; buffer[words + 1] = h.1; buffer[words + 2] = h.2; buffer[words + 3] = h.3
                    words += 4
                    let payloadWords = MockStateFormat.paddedLength(length) / 8
                    let key = BlockContent.key(seed: seed, block: index, version: version)
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
