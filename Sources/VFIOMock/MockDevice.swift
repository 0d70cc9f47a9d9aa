// One emulated VFIO device: its identity, migration state, internal state image, data
// session, DMA log and faults. Public members are the test-facing handle; everything the
// syscall path touches is guarded by the kernel lock shared by all objects of a MockKernel.
import Foundation
import SystemPackage
import VFIOSyscalls

public final class MockDevice: @unchecked Sendable {
    public let configuration: MockDeviceConfiguration
    /// The name GET_DEVICE_FD expects: a PCI address, or a UUID for mdev-like devices.
    public let kernelName: String
    public let groupNumber: Int

    let lock: NSCondition
    let ledger: DescriptorLedger
    var image: DeviceStateImage
    var state: MockDeviceState = .running
    var storedFaults: MockFaults
    var gone = false
    var openCount = 0
    var session: DataSession?
    var transitionBusy = false
    var deferredReset = false
    var callCounter = 0
    var wouldBlockCounter = 0
    var mutationCounter: UInt64 = 0
    var sessionCounter: UInt64 = 0
    var dmaLog: DMALog?
    var dmaWriteCount = 0
    var dmaFaultCount = 0
    var dmaRun: DMARun?
    /// Writes since `markDMAWrites()`; nil until it is first called.
    var dmaWriteLog: [MockDMAWrite]?
    var lastResumeRefusal: String?
    var arcs: [MockArc] = []
    /// The caller SET MIG_PRECOPY_INFOv2: PRECOPY_INFO's flags are an output until the last close.
    var preCopyInfoV2 = false
    /// REINITs so far; each gives the state a new content seed.
    var reinitCount: UInt64 = 0
    weak var group: MockGroup?
    let salt: UInt64
    let pci: PCIFunction

    init(configuration: MockDeviceConfiguration, kernelName: String, groupNumber: Int, lock: NSCondition, ledger: DescriptorLedger) {
        self.ledger = ledger
        self.configuration = configuration
        self.kernelName = kernelName
        self.groupNumber = groupNumber
        self.lock = lock
        self.image = DeviceStateImage(size: configuration.stateSize, blockSize: configuration.blockSize,
                                      contentSeed: configuration.seed, pooled: configuration.stateSource == .fast)
        self.storedFaults = configuration.faults
        self.salt = mixAll(fnv1a(configuration.name), configuration.seed, 0x4D6F_636B)
        self.pci = PCIFunction(configuration: configuration)
        self.dmaRun = configuration.dmaWorkload.map(DMARun.init)
    }

    /// The mock name (`vf0` in `mock:vf0`).
    public var name: String { configuration.name }
    public var isMediated: Bool { configuration.isMediated }

    func locked<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    // MARK: test-facing state

    /// The raw VFIO migration state. Setting it forces the state without running any arc
    /// (ends the data session); use it to stage a test, not to migrate.
    public var migrationState: UInt32 {
        get { locked { state.rawValue } }
        set {
            guard let forced = MockDeviceState(rawValue: newValue) else { preconditionFailure("no migration state \(newValue)") }
            let teardown = locked { () -> DataSession? in
                state = forced
                return endSessionLocked()
            }
            teardown?.finishTeardown()
        }
    }

    /// Faults the device injects from now on.
    public var faults: MockFaults {
        get { locked { storedFaults } }
        set {
            locked {
                storedFaults = newValue
                lock.broadcast() // a stalled producer may resume
            }
        }
    }

    /// Digest of the whole logical state (size, block size, content seed and every block's
    /// version). Two devices with equal digests hold the same bytes: the load path checks each
    /// byte against the content function before adopting a version.
    public var stateDigest: UInt64 { locked { image.digest } }
    public var stateSize: UInt64 { configuration.stateSize }
    /// Blocks whose content differs from the seed's original.
    public var changedBlockCount: Int { locked { image.changedBlockCount } }
    /// Bytes `[offset, offset + count)` of the state (small ranges; tests).
    public func stateBytes(at offset: UInt64, count: Int) -> [UInt8] { locked { image.bytes(at: offset, count: count) } }

    public var isOpen: Bool { locked { openCount > 0 } }
    public var hasDisappeared: Bool { locked { gone } }
    public var isDMALoggingActive: Bool { locked { dmaLog != nil } }

    /// Every direct FSM arc the driver attempted, in order (failed ones carry their errno).
    public var arcHistory: [MockArc] { locked { arcs } }
    public func clearArcHistory() { locked { arcs.removeAll() } }

    /// Why the last RESUMING → STOP refused the stream (nil after a successful load).
    public var lastLoadRefusal: String? { locked { lastResumeRefusal } }

    var isGoneLocked: Bool { gone }

    var streamIdentity: MockStateFormat.Identity {
        MockStateFormat.Identity(compat: fnv1a(configuration.compat), stateSize: configuration.stateSize,
                                 blockSize: configuration.blockSize, pooled: configuration.stateSource == .fast)
    }

    /// Changes `blocks` pseudo-randomly chosen state blocks, as a running device does.
    /// Returns how many changed: none unless the device is running (RUNNING, RUNNING_P2P,
    /// PRE_COPY, PRE_COPY_P2P).
    @discardableResult
    public func mutateState(blocks: Int) -> Int {
        locked { mutateLocked(blocks: blocks) }
    }

    /// Changes the given state blocks (running states only); returns how many changed.
    @discardableResult
    public func mutateState(blockIndexes: [Int]) -> Int {
        locked {
            guard state.isRunning, !gone else { return 0 }
            for b in blockIndexes { changeBlockLocked(b) }
            return blockIndexes.count
        }
    }

    func mutateLocked(blocks: Int) -> Int {
        guard state.isRunning, !gone, image.blockCount > 0, blocks > 0 else { return 0 }
        for _ in 0..<blocks {
            mutationCounter += 1
            changeBlockLocked(Int(mix64(salt ^ mutationCounter &* mixGamma) % UInt64(image.blockCount)))
        }
        return blocks
    }

    private func changeBlockLocked(_ block: Int) {
        precondition(block >= 0 && block < image.blockCount, "block \(block) outside the state")
        mutationCounter += 1
        image.setVersion(mix64(salt &+ mutationCounter &* mixGamma) | 1, of: block)
        if case .save(let save) = session { save.blockChanged(block) }
    }

    /// The device is reconfigured while running (REINIT): its whole state is replaced, and a
    /// pre-copy session in progress streams new initial data (its header and every block
    /// again), which PRECOPY_INFO reports with the REINIT flag once the caller opted in to
    /// MIG_PRECOPY_INFOv2. Returns false, changing nothing, unless the device is running.
    @discardableResult
    public func reinitialize() -> Bool {
        locked { reinitializeLocked() }
    }

    func reinitializeLocked() -> Bool {
        guard state.isRunning, !gone, configuration.replay == nil else { return false }
        reinitCount += 1
        image = DeviceStateImage(size: image.size, blockSize: image.blockSize,
                                 contentSeed: mixAll(configuration.seed, reinitCount, 0x5245_494E), pooled: image.isPooled)
        if case .save(let s) = session, s.restartInitialData() { s.reinitUnreported = true }
        lock.broadcast()
        return true
    }

    /// The device goes away (surprise removal): its fds answer ENODEV from now on.
    public func disappear() {
        let teardown = locked { () -> DataSession? in
            gone = true
            return endSessionLocked()
        }
        teardown?.finishTeardown()
    }

    /// VFIO_DEVICE_RESET from outside the syscall path (a racing reset). Deferred until a
    /// state change in progress finishes, as drivers do.
    public func reset() {
        lock.lock()
        if transitionBusy {
            deferredReset = true
            lock.unlock()
            return
        }
        let teardown = resetLocked()
        lock.unlock()
        teardown?.finishTeardown()
    }

    func resetLocked() -> DataSession? {
        state = .running
        return endSessionLocked()
    }

    /// Ends the active data session (lock held); run `finishTeardown()` on the result unlocked.
    func endSessionLocked() -> DataSession? {
        guard let current = session else { return nil }
        session = nil
        current.end()
        return current
    }

    // MARK: fault helpers (lock held)

    /// EINTR on every Nth read, write or ioctl of this device's fds.
    func injectInterrupt() throws(Errno) {
        guard let every = storedFaults.interruptEvery else { return }
        callCounter += 1
        if callCounter % every == 0 { throw .interrupted }
    }

    /// EAGAIN on every Nth read or write of a non-blocking data fd.
    func injectWouldBlock(nonBlocking: Bool) throws(Errno) {
        guard nonBlocking, let every = storedFaults.wouldBlockEvery else { return }
        wouldBlockCounter += 1
        if wouldBlockCounter % every == 0 { throw .resourceTemporarilyUnavailable }
    }
}

/// One direct FSM arc a mock driver took.
public struct MockArc: Sendable, Equatable, CustomStringConvertible {
    public var from: MockDeviceState
    public var to: MockDeviceState
    /// Set when the arc failed.
    public var errno: Errno?

    public init(from: MockDeviceState, to: MockDeviceState, errno: Errno? = nil) {
        self.from = from
        self.to = to
        self.errno = errno
    }

    public var description: String { "\(from)>\(to)" + (errno.map { " (\($0))" } ?? "") }
}

/// The data session a device has open, if any.
enum DataSession {
    case save(MockSaveSession)
    case resume(MockResumeSession)

    func end() {
        switch self {
        case .save(let s): s.end()
        case .resume(let s): s.end()
        }
    }

    func finishTeardown() {
        switch self {
        case .save(let s): s.finishTeardown()
        case .resume(let s): s.finishTeardown()
        }
    }
}
