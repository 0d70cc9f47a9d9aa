// The resume session of a `source=fast` device: no pipe and no consumer thread. The caller's
// data fd is a reserved descriptor, and each write is checked in the call, byte for byte
// against the pool, as the piped session's consumer would check it later.
import Foundation
import SystemPackage
import VFIOSyscalls

final class FastResumeSession: MockResumeSession, @unchecked Sendable {
    private var parser: MockStateParser
    private var acceptedBytes: UInt64 = 0
    /// A write failed the header check: further writes fail with ENODEV, the load is refused.
    private var writeFailure: String?

    /// Called with the lock held; the caller's fd is a fresh reserved descriptor.
    init(device: MockDevice, lock: NSCondition) throws(Errno) {
        parser = MockStateParser(identity: device.streamIdentity, knownPool: device.image.pool)
        let fd = try device.ledger.reserve()
        super.init(device: device, lock: lock, userFD: fd)
    }

    override var transferredBytes: UInt64 { acceptedBytes }
    override var acceptsDirectly: Bool { true }

    override func accept(_ region: UserRegion) throws(Errno) -> Int {
        if dead || writeFailure != nil { throw .noDevice }
        let bytes = try UserMemory([region]).copyIn(from: region.address, count: region.count)
        if parser.firstHeaderAccepted {
            parser.consume(bytes: bytes)
        } else {
            // Before the header the parser holds nothing, so trying the write on a copy is cheap.
            var trial = parser
            trial.consume(bytes: bytes)
            if trial.hasFailed, !trial.firstHeaderAccepted, let reason = trial.failure {
                // The write that completes a foreign header fails, as vendor drivers refuse it.
                writeFailure = reason
                throw .invalidArgument
            }
            parser = trial
        }
        acceptedBytes += UInt64(bytes.count)
        return bytes.count
    }

    override func verdict() -> Result<DeviceStateImage, ResumeRefusal> {
        lock.lock()
        defer { lock.unlock() }
        if dead { return .failure(ResumeRefusal(reason: "the data session ended before the load completed")) }
        if let writeFailure { return .failure(ResumeRefusal(reason: writeFailure)) }
        return parser.finish(totalBytes: acceptedBytes)
    }
}
