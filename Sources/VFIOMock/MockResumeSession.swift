// A resume session (RESUMING): what every kind of resume data fd shares. PipedResumeSession
// (the default) drains a real pipe on a consumer thread; FastResumeSession (`source=fast`)
// checks each write as it is made. Either way the first header is checked in the write that
// completes it, so a foreign stream fails that write with EINVAL as vendor drivers refuse
// one; everything else is judged at RESUMING → STOP. Guarded by the kernel lock.
import Foundation
import SystemPackage
import VFIOSyscalls

class MockResumeSession: @unchecked Sendable {
    let device: MockDevice
    let lock: NSCondition
    /// The descriptor handed to the caller as the data fd.
    let userFD: CInt
    let identity: MockStateFormat.Identity

    private(set) var dead = false
    var nonBlocking = false
    var faultTriggered: Set<String> = []

    init(device: MockDevice, lock: NSCondition, userFD: CInt) {
        self.device = device
        self.lock = lock
        self.userFD = userFD
        self.identity = device.streamIdentity
    }

    // MARK: what subclasses provide

    /// Bytes the caller's writes delivered (lock held).
    var transferredBytes: UInt64 { preconditionFailure("\(Self.self) must provide transferredBytes") }

    /// True when writes are checked in the call (`accept`) rather than through a pipe.
    var acceptsDirectly: Bool { false }

    /// Takes `region`'s bytes as the next part of the stream; returns how many (lock held).
    func accept(_ region: UserRegion) throws(Errno) -> Int {
        preconditionFailure("\(Self.self) writes into a pipe")
    }

    /// Waits until everything written was looked at, then judges the stream (unlocked).
    func verdict() -> Result<DeviceStateImage, ResumeRefusal> {
        preconditionFailure("\(Self.self) must provide a verdict")
    }

    /// The caller closed its fd before RESUMING → STOP: what was written is kept for the final
    /// check. Lock held; returns an emulator descriptor to close, if any.
    func callerClosed() -> CInt? { nil }

    /// Marks the session ended (lock held); then run `finishTeardown()` unlocked.
    func end() {
        dead = true
        lock.broadcast()
    }

    /// Releases what the session holds besides the caller's fd. Unlocked; idempotent.
    func finishTeardown() {}
}
