// Scripted faults: failing arcs, short reads and writes, EINTR, EAGAIN, a session dying
// mid-stream, a reset racing a transfer, a device that disappears.
import Foundation
import SystemPackage
import Testing
import VFIOMock
import VFIOSyscalls

/// The outcome of one call, for loops that count errnos.
func attempt<T>(_ body: () throws(Errno) -> T) -> Result<T, Errno> {
    Result(catching: body)
}

extension Result {
    var failure: Failure? {
        if case .failure(let e) = self { return e }
        return nil
    }
}

/// A result handed from a helper thread to the test.
final class Outcome: @unchecked Sendable {
    private let lock = NSLock()
    private var done = false
    private var errno: Errno?
    private var byteCount = 0

    func set(_ e: Errno?) { lock.withLock { errno = e; done = true } }
    func count(_ n: Int) { lock.withLock { byteCount = n; done = true } }
    var isSet: Bool { lock.withLock { done } }
    var value: Errno? { lock.withLock { errno } }
    var bytes: Int { lock.withLock { byteCount } }
}

@Suite struct MockFaultTests {
    @Test(arguments: StateSources.all)
    func failedArcKeepsTheLastStateAndCanBeRetried(kind: String) throws {
        let opened = try Opened("mock:fa?state=64KiB&fail-arc=STOP_COPY>STOP:EIO:once\(kind)")
        defer { try? opened.close() }
        try opened.set(.stop)
        let data = try opened.set(.stopCopy)
        _ = try opened.kernel.readAll(data)
        expectErrno(.ioError) { try opened.set(.stop) }
        #expect(try opened.state() == .stopCopy)
        #expect(opened.device.arcHistory.last == MockArc(from: .stopCopy, to: .stop, errno: .ioError))
        try opened.set(.stop)
        try opened.kernel.close(data)
    }

    @Test func failedArcMidPathStopsAtTheLastArcReached() throws {
        let opened = try Opened("mock:fm?state=64KiB&fail-arc=RUNNING_P2P>STOP:ENOMEM")
        defer { try? opened.close() }
        expectErrno(.noMemory) { try opened.set(.stopCopy) } // RUNNING → RP2P → STOP → SC
        #expect(try opened.state() == .runningP2P)
        opened.device.faults = MockFaults()
        let data = try opened.set(.stopCopy)
        #expect(data >= 0)
        try opened.set(.stop)
        try opened.kernel.close(data)
    }

    @Test(arguments: StateSources.all)
    func shortReadsAndWritesStillCarryTheWholeStream(kind: String) throws {
        let kernel = MockKernel()
        let source = try Opened("mock:sr?state=300KiB&short-read=1000\(kind)", kernel: kernel)
        let target = try Opened("mock:sw?state=300KiB&short-write=777\(kind)", kernel: kernel)
        try source.set(.stop)
        let data = try source.set(.stopCopy)
        var stream: [UInt8] = []
        while true {
            let chunk = try source.readOnce(data, 64 << 10)
            if chunk.isEmpty { break }
            #expect(chunk.count <= 1000)
            stream += chunk
        }
        try source.set(.stop)
        try kernel.close(data)
        try target.set(.stop)
        let into = try target.set(.resuming)
        let n = try kernel.writeBytes(into, from: stream, byteRange: 0..<4096)
        #expect(n == 777)
        try kernel.writeAll(into, Array(stream[n...]))
        try target.set(.stop)
        try kernel.close(into)
        #expect(target.device.stateDigest == source.device.stateDigest)
        try source.close()
        try target.close()
    }

    @Test(arguments: StateSources.all)
    func everyNthCallIsInterrupted(kind: String) throws {
        let opened = try Opened("mock:ei?state=128KiB&eintr=3\(kind)")
        defer { try? opened.close() }
        var interrupted = 0
        for _ in 0..<9 {
            if case .failure(.interrupted) = attempt({ () throws(Errno) in try opened.state() }) { interrupted += 1 }
        }
        #expect(interrupted == 3)
        // The engine's retry loop rides through it: the stream still arrives whole.
        opened.device.faults.interruptEvery = nil
        try opened.set(.stop)
        let data = try opened.set(.stopCopy)
        opened.device.faults.interruptEvery = 2
        let stream = try opened.kernel.readAll(data, chunk: 4096)
        opened.device.faults.interruptEvery = nil
        #expect(stream.count == 64 + 2 * (32 + 65536) + 32)
        try opened.set(.stop)
        try opened.kernel.close(data)
    }

    @Test(arguments: StateSources.all)
    func wouldBlockOnlyOnNonBlockingFds(kind: String) throws {
        let opened = try Opened("mock:ea?state=1MiB&eagain=2\(kind)")
        defer { try? opened.close() }
        try opened.set(.stop)
        let data = try opened.set(.stopCopy)
        for _ in 0..<4 { _ = try opened.readOnce(data, 1000) } // blocking: never EAGAIN
        try opened.kernel.setNonBlocking(data, true)
        var wouldBlock = 0
        for _ in 0..<6 {
            if case .failure(.resourceTemporarilyUnavailable) = attempt({ () throws(Errno) in try opened.readOnce(data, 1000) }) {
                wouldBlock += 1
            }
        }
        #expect(wouldBlock == 3)
        try opened.set(.stop)
        try opened.kernel.close(data)
    }

    @Test(arguments: StateSources.all)
    func noDeviceAfterNBytesOfASession(kind: String) throws {
        let opened = try Opened("mock:en?state=1MiB&enodev-after=100KiB\(kind)")
        defer { try? opened.close() }
        try opened.set(.stop)
        let data = try opened.set(.stopCopy)
        var got = 0
        var last = attempt { () throws(Errno) in try opened.readOnce(data, 30_000) }
        while case .success(let chunk) = last {
            got += chunk.count
            last = attempt { () throws(Errno) in try opened.readOnce(data, 30_000) }
        }
        #expect(last.failure == .noDevice)
        #expect(got == 100 << 10)
        // The state did not move; the session is simply dead.
        #expect(try opened.state() == .stopCopy)
        try opened.set(.stop)
        try opened.kernel.close(data)
    }

    @Test(arguments: StateSources.all)
    func noDeviceAfterNBytesWhileResuming(kind: String) throws {
        let kernel = MockKernel()
        let source = try Opened("mock:rs?state=256KiB\(kind)", kernel: kernel)
        let target = try Opened("mock:rt?state=256KiB&enodev-after=64KiB\(kind)", kernel: kernel)
        let stream = try source.saveStopCopy()
        expectErrno(.noDevice) { try target.load(stream) }
        expectErrno(.invalidArgument) { try target.set(.stop) } // the load cannot complete
        try source.close()
        try target.close()
        #expect(kernel.liveThreadCount == 0)
    }

    @Test(arguments: StateSources.all)
    func resetRacingATransferEndsTheSession(kind: String) throws {
        let opened = try Opened("mock:rr?state=8MiB&reset-after=1MiB\(kind)")
        defer { try? opened.close() }
        try opened.set(.stop)
        let data = try opened.set(.stopCopy)
        // Read past the trigger; the reset lands from another thread whenever it gets to run.
        var got = 0
        var failure: Errno?
        while got < 1 << 20 && failure == nil {
            switch attempt({ () throws(Errno) in try opened.readOnce(data, 64 << 10) }) {
            case .success(let chunk): got += chunk.count
            case .failure(let error): failure = error
            }
        }
        #expect(got >= 1 << 20 || failure == .noDevice)
        let deadline = Date().addingTimeInterval(5)
        while opened.device.migrationState != MockDeviceState.running.rawValue && Date() < deadline { usleep(1000) }
        #expect(try opened.state() == .running)
        // Whatever was in flight, the session is over now.
        #expect(attempt({ () throws(Errno) in try opened.readOnce(data, 64 << 10) }).failure == .noDevice)
        #expect(opened.device.arcHistory.last?.to == .stopCopy) // the reset is not an arc
        try opened.kernel.close(data)
        #expect(opened.kernel.liveThreadCount == 0)
    }

    @Test(arguments: StateSources.all)
    func resetFromAnotherThreadWakesABlockedReader(kind: String) throws {
        let opened = try Opened("mock:rb?state=1MiB\(kind)")
        defer { try? opened.close() }
        opened.device.faults.stallProducer = true
        let data = try opened.set(.preCopy)
        // Data is pending but none is in the pipe: non-blocking reads get EAGAIN.
        try opened.kernel.setNonBlocking(data, true)
        expectErrno(.resourceTemporarilyUnavailable) { _ = try opened.readOnce(data, 4096) }
        try opened.kernel.setNonBlocking(data, false)
        let outcome = Outcome()
        let reader = Thread {
            let result = attempt { () throws(Errno) in try opened.readOnce(data, 4096) }
            outcome.set(result.failure)
        }
        reader.start()
        usleep(50_000)
        #expect(!outcome.isSet) // still blocked in read
        opened.device.reset()
        let deadline = Date().addingTimeInterval(5)
        while !outcome.isSet && Date() < deadline { usleep(1000) }
        #expect(outcome.value == .noDevice)
        #expect(try opened.state() == .running)
        try opened.kernel.close(data)
        #expect(opened.kernel.liveThreadCount == 0)
    }

    @Test(arguments: StateSources.all)
    func unstallingTheProducerDeliversTheStream(kind: String) throws {
        let opened = try Opened("mock:us?state=256KiB\(kind)")
        defer { try? opened.close() }
        opened.device.faults.stallProducer = true
        try opened.set(.stop)
        let data = try opened.set(.stopCopy)
        let outcome = Outcome()
        let reader = Thread {
            let result = attempt { () throws(Errno) in try opened.kernel.readAll(data) }
            if case .success(let bytes) = result { outcome.count(bytes.count) } else { outcome.set(result.failure) }
        }
        reader.start()
        usleep(20_000)
        opened.device.faults.stallProducer = false
        let deadline = Date().addingTimeInterval(5)
        while !outcome.isSet && Date() < deadline { usleep(1000) }
        #expect(outcome.bytes == 64 + 4 * (32 + 65536) + 32)
        try opened.set(.stop)
        try opened.kernel.close(data)
    }

    @Test(arguments: StateSources.all)
    func deviceThatDisappearsAnswersENODEV(kind: String) throws {
        let kernel = MockKernel()
        let opened = try Opened("mock:gone?state=4MiB&disappear-after=256KiB\(kind)", kernel: kernel)
        try opened.set(.stop)
        let data = try opened.set(.stopCopy)
        var failure: Errno?
        while failure == nil {
            if case .failure(let error) = attempt({ () throws(Errno) in try opened.readOnce(data, 64 << 10) }) { failure = error }
        }
        #expect(failure == .noDevice)
        #expect(opened.device.hasDisappeared)
        expectErrno(.noDevice) { _ = try opened.state() }
        expectErrno(.noDevice) { _ = try kernel.ioctl(opened.fd, R.reset, .none) }
        expectErrno(.noDevice) { try opened.device.dmaWrite(iova: 0, length: 4096) }
        try kernel.close(data)
        try opened.close()
        expectErrno(.noDevice) { _ = try kernel.open("/dev/vfio/\(opened.device.groupNumber)", .readWrite) }
        #expect(kernel.emulatorDescriptorCount == 0)
        #expect(kernel.liveThreadCount == 0)
    }

    @Test func dataFdsAreRealPipesAndNothingLeaksProcessWide() throws {
        let before = try LinuxKernel.shared.openDescriptorCount()
        do {
            let kernel = MockKernel()
            let source = try Opened("mock:lk0?state=2MiB", kernel: kernel)
            let target = try Opened("mock:lk1?state=2MiB", kernel: kernel)
            try source.set(.stop)
            let data = try source.set(.stopCopy)
            // A real pipe: the kernel itself reports bytes waiting in it.
            let deadline = Date().addingTimeInterval(5)
            while try LinuxKernel.shared.bytesReadable(data) == 0 && Date() < deadline { usleep(1000) }
            #expect(try LinuxKernel.shared.bytesReadable(data) > 0)
            let stream = try kernel.readAll(data)
            try source.set(.stop)
            try kernel.close(data)
            try target.load(stream)
            let aborted = try source.set(.preCopy)
            try kernel.close(aborted) // closed mid-session
            try source.close()
            try target.close()
            #expect(kernel.emulatorDescriptorCount == 0)
            #expect(kernel.liveThreadCount == 0)
        }
        // Other suites may hold descriptors for a moment; wait for the count to settle.
        var after = try LinuxKernel.shared.openDescriptorCount()
        let deadline = Date().addingTimeInterval(10)
        while after > before && Date() < deadline {
            usleep(10_000)
            after = try LinuxKernel.shared.openDescriptorCount()
        }
        #expect(after <= before)
    }
}
