// The default resume session: a real pipe whose write end the caller owns, drained by a
// consumer thread that checks the stream as it arrives. The header is peeked in the write that
// completes it (so that write can fail); the consumer parses everything outside the lock.
import Foundation
import SystemPackage
import VFIOSyscalls

final class PipedResumeSession: MockResumeSession, @unchecked Sendable {
    private var readFD: CInt?
    /// A private non-blocking write end: one byte wakes the consumer when the session ends.
    private var doorbellFD: CInt?
    /// The caller closed its write end: the consumer runs to EOF and keeps the result.
    private(set) var userClosed = false
    /// A write failed: further writes fail with ENODEV, and the load is refused.
    private(set) var writeFailure: String?

    /// Bytes the caller's writes put into the pipe.
    private(set) var acceptedBytes: UInt64 = 0
    private var writesInFlight = 0
    private var headerPeek: [UInt8] = []
    /// RESUMING → STOP asked for the verdict on the first `expectedBytes` bytes.
    private var finishing = false
    private var expectedBytes: UInt64 = 0
    private var consumedBytes: UInt64 = 0
    /// The consumer has parsed everything it will parse; `parser` is the caller's now.
    private var handedOff = false
    private var consumerDone = false
    private var parser: MockStateParser

    /// Opens the pipe and starts the consumer. Called with the lock held.
    init(device: MockDevice, lock: NSCondition) throws(Errno) {
        self.parser = MockStateParser(identity: device.streamIdentity)
        let ledger = device.ledger
        let pipe = try ledger.pipe()
        do {
            _ = try? LinuxKernel.shared.setPipeSize(pipe.write, PipedSaveSession.chunkBytes)
            doorbellFD = try ledger.open("/proc/self/fd/\(pipe.write)", [.writeOnly, .nonBlocking])
        } catch {
            try? ledger.close(pipe.read)
            try? ledger.close(pipe.write)
            throw error
        }
        readFD = pipe.read
        super.init(device: device, lock: lock, userFD: pipe.write)
        ledger.threadStarted()
        let thread = Thread { [self] in consume() }
        thread.name = "mock-resume-\(device.name)"
        thread.start()
    }

    override var transferredBytes: UInt64 { acceptedBytes }

    // MARK: the caller's writes (lock held around the checks)

    /// Checks a write before it reaches the pipe. Returns the header bytes it will carry.
    func admitWrite(_ region: UserRegion) throws(Errno) -> [UInt8] {
        if dead || writeFailure != nil { throw .noDevice }
        var peek: [UInt8] = []
        let missing = MockStateFormat.headerBytes - headerPeek.count
        if missing > 0 && region.count > 0 {
            peek = try UserMemory([region]).copyIn(from: region.address, count: min(missing, region.count))
            let header = headerPeek + peek
            if header.count == MockStateFormat.headerBytes,
               case .failure(let problem) = MockStateFormat.parseHeader(MockStateFormat.words(of: header), expecting: identity) {
                writeFailure = problem.description
                throw .invalidArgument
            }
        }
        writesInFlight += 1
        return peek
    }

    /// Accounts a finished write of `n` bytes (or a failed one, n = nil).
    func completeWrite(_ n: Int?, peeked: [UInt8]) {
        writesInFlight -= 1
        if let n {
            acceptedBytes += UInt64(n)
            headerPeek += peeked.prefix(n)
        }
        if dead && writesInFlight == 0 { ringDoorbell() }
    }

    private func ringDoorbell() {
        guard let fd = doorbellFD else { return }
        _ = try? LinuxKernel.shared.writeBytes(fd, from: [UInt8(0)], byteRange: 0..<1)
    }

    // MARK: verdict and ending

    /// Waits until the consumer has parsed everything written, then judges the stream.
    /// Runs without the lock.
    override func verdict() -> Result<DeviceStateImage, ResumeRefusal> {
        lock.lock()
        defer { lock.unlock() }
        if dead { return .failure(ResumeRefusal(reason: "the data session ended before the load completed")) }
        if !handedOff {
            finishing = true
            expectedBytes = acceptedBytes
            ringDoorbell()
            while !handedOff { lock.wait() }
        }
        if let writeFailure { return .failure(ResumeRefusal(reason: writeFailure)) }
        return parser.finish(totalBytes: min(acceptedBytes, consumedBytes))
    }

    /// Marks the session ended (lock held); then run `finishTeardown()` unlocked.
    override func end() {
        guard !dead else { return }
        super.end()
        if writesInFlight == 0 { ringDoorbell() }
    }

    /// The caller closed its write end: the consumer drains to EOF and keeps its result.
    /// Lock held; run `finishTeardown()` afterwards only if the session also ended.
    override func callerClosed() -> CInt? {
        userClosed = true
        let doorbell = doorbellFD
        doorbellFD = nil
        return doorbell
    }

    /// Waits for the consumer to stop and closes the emulator's pipe ends. Unlocked; idempotent.
    override func finishTeardown() {
        lock.lock()
        while !consumerDone { lock.wait() }
        let fds = [readFD, doorbellFD].compactMap { $0 }
        readFD = nil
        doorbellFD = nil
        lock.unlock()
        for fd in fds { try? device.ledger.close(fd) }
    }

    // MARK: consumer

    private func consume() {
        lock.lock()
        let fd = readFD!
        lock.unlock()
        var buffer = [UInt64](repeating: 0, count: (PipedSaveSession.chunkBytes / 8) + 1)
        var carried = 0 // bytes of a partial word kept at the start of `buffer`
        while true {
            var n = 0
            do {
                n = try LinuxKernel.shared.readBytes(fd, into: &buffer, byteRange: carried..<buffer.count * 8)
            } catch .interrupted {
                continue
            } catch {
                n = 0
            }
            lock.lock()
            let eof = n == 0
            var useful = n
            var parse = !handedOff && !dead
            if parse && finishing {
                useful = Int(min(UInt64(n), expectedBytes - consumedBytes))
            }
            if parse { consumedBytes += UInt64(useful) }
            lock.unlock()

            if parse && useful > 0 {
                let total = carried + useful
                let whole = total / 8
                parser.consume(buffer, 0..<whole)
                carried = total % 8
                if carried > 0 { buffer[0] = buffer[whole] }
            }

            lock.lock()
            if parse && (eof || (finishing && consumedBytes >= expectedBytes)) {
                handedOff = true
                parse = false
                lock.broadcast()
            }
            var exit = eof
            if !exit && dead && writesInFlight == 0 {
                exit = ((try? LinuxKernel.shared.bytesReadable(fd)) ?? 0) == 0
            }
            if exit {
                if !handedOff {
                    handedOff = true
                }
                consumerDone = true
                device.ledger.threadFinished()
                lock.broadcast()
                lock.unlock()
                return
            }
            lock.unlock()
        }
    }
}
