// A save session (PRE_COPY / PRE_COPY_P2P / STOP_COPY): what every kind of save data fd
// shares. Subclasses decide where the bytes come from: PipedSaveSession (a producer thread
// feeding a real pipe, the default), FastSaveSession (reads answered straight from a pool)
// and ReplaySaveSession (a captured stream's chunks). All fields are guarded by the kernel lock.
import Foundation
import SystemPackage
import VFIOSyscalls

class MockSaveSession: @unchecked Sendable {
    let device: MockDevice
    let lock: NSCondition
    /// The descriptor handed to the caller as the data fd.
    let userFD: CInt
    let salt: UInt64

    /// STOP_COPY reached: the device is stopped and the stream runs to its end.
    private(set) var stopCopy: Bool
    /// Ended (arc, reset, close, fault): reads fail with ENODEV.
    private(set) var dead = false
    var nonBlocking = false
    /// Bytes the caller has read.
    private(set) var consumedBytes: UInt64 = 0
    private var dirtyCredit: UInt64 = 0
    var faultTriggered: Set<String> = []
    /// New initial data appeared (REINIT) and PRECOPY_INFO has not reported it yet.
    var reinitUnreported = false

    init(device: MockDevice, lock: NSCondition, userFD: CInt, stopCopy: Bool, salt: UInt64) {
        self.device = device
        self.lock = lock
        self.userFD = userFD
        self.stopCopy = stopCopy
        self.salt = salt
    }

    // MARK: what subclasses provide (lock held)

    /// Bytes still to come before the stream is momentarily (PRE_COPY) or finally drained.
    var pendingBytes: UInt64 { preconditionFailure("\(Self.self) must provide pendingBytes") }

    /// VFIO_MIG_GET_PRECOPY_INFO's two numbers.
    var precopyInfo: (initial: UInt64, dirty: UInt64) { preconditionFailure("\(Self.self) must provide precopyInfo") }

    /// MIG_DATA_SIZE while this session is open.
    var stopCopyLength: UInt64 { pendingBytes + (stopCopy ? 0 : UInt64(MockStateFormat.recordHeaderBytes)) }

    /// True when reads are answered by `serve` rather than from a pipe.
    var servesDirectly: Bool { false }

    /// Copies the next bytes of the stream into `region`; 0 at the end. Direct sessions only.
    func serve(into region: UserRegion) throws(Errno) -> Int {
        preconditionFailure("\(Self.self) reads from a pipe")
    }

    /// A block of the device's state changed while running.
    func blockChanged(_ block: Int) {}

    /// The device's state was replaced (REINIT): new initial data follows. False when this
    /// kind of session has no initial data to restart.
    func restartInitialData() -> Bool { false }

    // MARK: shared behaviour (lock held)

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

    /// Marks the session ended (lock held); the caller then runs `finishTeardown()` unlocked.
    func end() {
        dead = true
        lock.broadcast()
    }

    /// Releases what the session holds besides the caller's fd. Unlocked; idempotent.
    func finishTeardown() {}
}
