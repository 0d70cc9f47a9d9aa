// The migration driver of a mock device: SET of the device state walked arc by arc with the
// kernel's path rule, data sessions opened and closed on the arcs that own them, and the
// data-fd read/write paths with their faults.
import Foundation
import SystemPackage
import VFIOSyscalls

extension MockDevice {
    /// MIG_DEVICE_STATE SET: walks to `target`; returns the new data session when the final
    /// arc opens one. On failure the real state is the last arc reached (or ERROR).
    func setState(_ target: UInt32) throws(Errno) -> DataSession? {
        lock.lock()
        while transitionBusy { lock.wait() }
        transitionBusy = true
        lock.unlock()
        defer {
            lock.lock()
            transitionBusy = false
            var teardown: DataSession?
            if deferredReset {
                deferredReset = false
                teardown = resetLocked()
            }
            lock.broadcast()
            lock.unlock()
            teardown?.finishTeardown()
        }

        var opened: DataSession?
        while true {
            lock.lock()
            if gone {
                lock.unlock()
                throw .noDevice
            }
            let current = state
            if current.rawValue == target {
                lock.unlock()
                return opened
            }
            let next: MockDeviceState
            do {
                next = try MigrationPath.nextHop(from: current.rawValue, to: target, flags: configuration.migrationFlags)
            } catch {
                lock.unlock()
                throw error
            }
            precondition(opened == nil, "a data session was opened on an intermediate arc")
            if let failure = storedFaults.takeArcFailure(from: current, to: next) {
                arcs.append(MockArc(from: current, to: next, errno: failure.errno))
                var teardown: DataSession?
                if failure.landInError {
                    state = .error
                    teardown = endSessionLocked()
                }
                lock.unlock()
                teardown?.finishTeardown()
                throw failure.errno
            }
            if current == .resuming && next == .stop {
                lock.unlock()
                try finishResume()
                continue
            }
            var teardown: DataSession?
            do {
                switch (current, next) {
                case (.stop, .stopCopy):
                    opened = .save(try openSaveSession(stopCopy: true))
                case (.running, .preCopy), (.runningP2P, .preCopyP2P):
                    opened = .save(try openSaveSession(stopCopy: false))
                case (.preCopy, .stopCopy), (.preCopyP2P, .stopCopy):
                    if case .save(let s) = session { s.enterStopCopy() }
                case (.stopCopy, .stop), (.preCopy, .running), (.preCopyP2P, .runningP2P):
                    teardown = endSessionLocked()
                case (.stop, .resuming):
                    sessionCounter += 1
                    let s: MockResumeSession = image.isPooled
                        ? try FastResumeSession(device: self, lock: lock) : try PipedResumeSession(device: self, lock: lock)
                    session = .resume(s)
                    opened = .resume(s)
                default:
                    break
                }
            } catch {
                arcs.append(MockArc(from: current, to: next, errno: error))
                lock.unlock()
                throw error
            }
            arcs.append(MockArc(from: current, to: next))
            state = next
            lock.broadcast()
            lock.unlock()
            teardown?.finishTeardown()
        }
    }

    private func openSaveSession(stopCopy: Bool) throws(Errno) -> MockSaveSession {
        precondition(session == nil, "a new save session while another is active")
        sessionCounter += 1
        let sessionSalt = mixAll(salt, sessionCounter)
        let s: MockSaveSession
        if let capture = configuration.replay {
            s = try ReplaySaveSession(device: self, lock: lock, capture: capture, stopCopy: stopCopy, salt: sessionSalt)
        } else if image.isPooled {
            s = try FastSaveSession(device: self, lock: lock, stopCopy: stopCopy, salt: sessionSalt)
        } else {
            s = try PipedSaveSession(device: self, lock: lock, stopCopy: stopCopy, salt: sessionSalt)
        }
        session = .save(s)
        return s
    }

    /// RESUMING → STOP: the driver's final check of the stream; adopts the state it carries or
    /// refuses it (EINVAL), leaving the device in RESUMING or, if configured, ERROR.
    private func finishResume() throws(Errno) {
        lock.lock()
        let resume: MockResumeSession? = if case .resume(let s) = session { s } else { nil }
        lock.unlock()
        let verdict: Result<DeviceStateImage, ResumeRefusal> =
            resume?.verdict() ?? .failure(ResumeRefusal(reason: "no resume data session"))
        lock.lock()
        let teardown = endSessionLocked()
        switch verdict {
        case .success(let restored):
            image = restored
            state = .stop
            lastResumeRefusal = nil
            arcs.append(MockArc(from: .resuming, to: .stop))
        case .failure(let refusal):
            lastResumeRefusal = refusal.reason
            arcs.append(MockArc(from: .resuming, to: .stop, errno: .invalidArgument))
            state = configuration.resumeFailure == .error ? .error : .resuming
        }
        lock.broadcast()
        lock.unlock()
        teardown?.finishTeardown()
        if case .failure = verdict { throw .invalidArgument }
    }

    // MARK: data fd I/O

    /// read() on a save fd.
    func readSaveData(_ s: MockSaveSession, into region: UserRegion) throws(Errno) -> Int {
        lock.lock()
        if gone || s.dead {
            lock.unlock()
            throw .noDevice
        }
        do {
            try injectInterrupt()
            try injectWouldBlock(nonBlocking: s.nonBlocking)
        } catch {
            lock.unlock()
            throw error
        }
        if !s.stopCopy && s.pendingBytes == 0 {
            lock.unlock()
            if configuration.precopyEnd == .zero { return 0 }
            throw .noMessage
        }
        var limit = region.count
        if let cap = storedFaults.shortReadLimit { limit = min(limit, cap) }
        if let after = storedFaults.noDeviceAfterBytes {
            let left = after > s.consumedBytes ? after - s.consumedBytes : 0
            if left == 0 {
                let teardown = endSessionIfCurrent(.save(s))
                lock.unlock()
                teardown?.finishTeardown()
                throw .noDevice
            }
            limit = Int(min(UInt64(limit), left))
        }

        let n: Int
        if s.servesDirectly {
            // No producer to stall: a stalled device has data pending but serves none.
            while storedFaults.stallProducer && !s.dead && !gone {
                if s.nonBlocking {
                    lock.unlock()
                    throw .resourceTemporarilyUnavailable
                }
                lock.wait()
            }
            do throws(Errno) {
                if s.dead || gone { throw Errno.noDevice }
                n = try s.serve(into: region.prefix(limit))
            } catch {
                lock.unlock()
                throw error
            }
        } else {
            lock.unlock()
            n = try LinuxKernel.shared.read(s.userFD, into: region.prefix(limit))
            lock.lock()
            if s.dead || gone {
                lock.unlock()
                throw .noDevice
            }
        }
        let dirty = s.consumed(n, rate: configuration.dirtyRate)
        if dirty > 0 { _ = mutateLocked(blocks: dirty) }
        if let after = configuration.reinitAfterBytes, !s.stopCopy, s.consumedBytes >= after,
           s.faultTriggered.insert("reinit").inserted {
            _ = reinitializeLocked()
        }
        let actions = byteTriggeredFaults(transferred: s.consumedBytes, fired: &s.faultTriggered)
        lock.unlock()
        actions()
        return n
    }

    /// write() on a resume fd.
    func writeResumeData(_ s: MockResumeSession, from region: UserRegion) throws(Errno) -> Int {
        lock.lock()
        var limit = region.count
        if let cap = storedFaults.shortWriteLimit { limit = min(limit, cap) }
        if let after = storedFaults.noDeviceAfterBytes, !gone, !s.dead {
            let left = after > s.transferredBytes ? after - s.transferredBytes : 0
            if left == 0 {
                let teardown = endSessionIfCurrent(.resume(s))
                lock.unlock()
                teardown?.finishTeardown()
                throw .noDevice
            }
            limit = Int(min(UInt64(limit), left))
        }
        let piped = s as? PipedResumeSession
        let peeked: [UInt8]
        do throws(Errno) {
            if gone { throw Errno.noDevice }
            try injectInterrupt()
            try injectWouldBlock(nonBlocking: s.nonBlocking)
            if let piped {
                peeked = try piped.admitWrite(region.prefix(limit))
            } else {
                peeked = []
                _ = try s.accept(region.prefix(limit))
            }
        } catch {
            lock.unlock()
            throw error
        }

        let result: Result<Int, Errno>
        if let piped {
            lock.unlock()
            result = Result { () throws(Errno) -> Int in
                try LinuxKernel.shared.write(s.userFD, from: region.prefix(limit))
            }
            lock.lock()
            piped.completeWrite(try? result.get(), peeked: peeked)
        } else {
            result = .success(limit)
        }
        let actions = byteTriggeredFaults(transferred: s.transferredBytes, fired: &s.faultTriggered)
        lock.unlock()
        actions()
        return try result.get()
    }

    /// Ends `session` if it is still the device's current one (lock held).
    func endSessionIfCurrent(_ candidate: DataSession) -> DataSession? {
        switch (session, candidate) {
        case (.save(let a)?, .save(let b)) where a === b: return endSessionLocked()
        case (.resume(let a)?, .resume(let b)) where a === b: return endSessionLocked()
        default:
            candidate.end()
            return candidate
        }
    }

    /// Faults that fire once a session moved enough bytes; returns work to run unlocked.
    private func byteTriggeredFaults(transferred: UInt64, fired: inout Set<String>) -> () -> Void {
        var work: [() -> Void] = []
        if let after = storedFaults.resetAfterBytes, transferred >= after, fired.insert("reset").inserted {
            // A reset from another thread, racing whatever the caller does next.
            let thread = Thread { [self] in reset() }
            thread.name = "mock-reset-\(name)"
            thread.start()
        }
        if let after = storedFaults.disappearAfterBytes, transferred >= after, fired.insert("disappear").inserted {
            gone = true
            if let teardown = endSessionLocked() { work.append { teardown.finishTeardown() } }
        }
        return { for w in work { w() } }
    }

    // MARK: queries

    /// VFIO_MIG_GET_PRECOPY_INFO on a save fd (lock held). `flags` is nil unless the caller
    /// opted in to MIG_PRECOPY_INFOv2: then it is an output, REINIT once after each REINIT.
    func precopyInfo(_ s: MockSaveSession) throws(Errno) -> (initial: UInt64, dirty: UInt64, flags: UInt32?) {
        guard state == .preCopy || state == .preCopyP2P else { throw .invalidArgument }
        if s.dead || gone { throw .noDevice }
        let info = s.precopyInfo
        guard preCopyInfoV2 else { return (info.initial, info.dirty, nil) }
        let flags = s.reinitUnreported ? PrecopyInfoFlag.reinit : 0
        s.reinitUnreported = false
        return (info.initial, info.dirty, flags)
    }

    /// MIG_DATA_SIZE: bytes STOP_COPY would still produce (lock held).
    var stopCopyLength: UInt64 {
        if let capture = configuration.replay { return capture.stopCopyEstimate }
        if case .save(let s) = session, !s.dead { return s.stopCopyLength }
        return BlockSchedule.completeStreamBytes(image)
    }
}
