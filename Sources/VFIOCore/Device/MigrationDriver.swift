// MigrationDriver walks one device through the v2 state machine with the kernel's rules:
// requests the kernel would refuse are refused here first, a failed SET is followed by a GET
// (the kernel echoes the requested state, not the real one), and the data session of a
// transfer is owned here and closed exactly once, when the session it belongs to ends.
//
// Its state (the last known migration state and the open session) sits behind a mutex, so the
// driver can be shared with a data-path thread; I/O on the session runs outside the lock.
import Synchronization
import VFIOBuffers
import VFIOStream

public final class MigrationDriver: Sendable {
    public let device: any MigrationDevice
    public let flags: MigrationFlags

    private struct State: ~Copyable {
        var known: MigrationState?
        var session: DataSession?
        /// Set once REINIT reports were opted in to.
        var reportsReinit = false
    }

    private let state: Mutex<State>

    public var name: String { device.name }

    /// The last state known for certain; nil after a failure that left it unknown.
    public var knownState: MigrationState? { state.withLock { $0.known } }

    /// True while a data session (save or resume) is open.
    public var hasSession: Bool { state.withLock { $0.session != nil } }

    /// True once the device agreed to report REINIT (MIG_PRECOPY_INFOv2).
    public var reportsReinit: Bool { state.withLock { $0.reportsReinit } }

    /// Probes the device's migration flags and current state.
    public init(device: any MigrationDevice) throws(VFIOError) {
        self.device = device
        let flags = try device.migrationFlags()
        guard flags.contains(.stopCopy) else {
            throw VFIOError(.notSupported, "device reports migration flags \(flags) without STOP_COPY", device: device.name)
        }
        self.flags = flags
        self.state = Mutex(State(known: try device.currentState()))
    }

    /// Reads the state from the device (GET) and remembers it. A session the state cannot
    /// hold (the device was reset or moved behind the engine's back) is closed: its fd is dead,
    /// and a later arc must be free to open a new one.
    @discardableResult
    public func refreshState() throws(VFIOError) -> MigrationState {
        let current = try device.currentState()
        state.withLock { s in
            s.known = current
            if let io = s.session?.io, io.isSaving ? !current.isSaving : current != .resuming {
                s.session = nil // dropping the session closes its fd
            }
        }
        return current
    }

    /// Moves the device to `target`. The kernel walks the path in one SET; on failure the
    /// state is read back and reported with the errno.
    public func transition(to target: MigrationState) throws(VFIOError) {
        let current: MigrationState
        if let known = knownState { current = known } else { current = try refreshState() }
        if current == target { return }
        let steps: [MigrationState]
        do {
            steps = try TransitionTable.path(from: current, to: target, flags: flags)
        } catch {
            throw VFIOError(
                .invalidTransition, "refused to request \(target): \(error)", device: name,
                state: .init(requested: target, observed: current))
        }

        var opened: DataSession?
        do {
            opened = try device.setState(target)
        } catch {
            throw failedTransition(from: current, to: target, error)
        }

        let last = MigrationArc(steps.count > 1 ? steps[steps.count - 2] : current, target)
        let opens = TransitionTable.opensSession(last)
        let received = opened != nil
        state.withLock { s in
            Self.endSessions(along: steps, from: current, in: &s)
            s.known = target
            if opens {
                precondition(s.session == nil || !received, "a new session opened while another was still owned")
                if received { s.session = opened.take() }
            }
        }
        if opens && !received {
            throw VFIOError(
                .deviceError, "entered \(target) but the kernel returned no data fd", device: name,
                operation: "VFIO_DEVICE_FEATURE[MIG_DEVICE_STATE|SET]", state: .init(requested: target, observed: target))
        }
        if !opens && received {
            // A driver that returns an fd on an arc that opens no session is broken; do not leak it.
            opened = nil
            throw VFIOError(
                .deviceError, "the kernel returned a data fd on \(last), which opens no session", device: name,
                state: .init(requested: target, observed: target))
        }
    }

    /// Closes the owned session when any arc on the path ends it.
    private static func endSessions(along steps: [MigrationState], from start: MigrationState, in s: inout State) {
        var at = start
        for step in steps {
            if TransitionTable.endsSession(MigrationArc(at, step)) {
                s.session = nil // dropping the session closes its fd
            }
            at = step
        }
    }

    private func failedTransition(from current: MigrationState, to target: MigrationState, _ error: VFIOError) -> VFIOError {
        var report = VFIOError.DeviceStateReport(requested: target)
        if let observed = try? device.currentState() {
            report.observed = observed
            state.withLock { s in
                s.known = observed
                if observed == .error {
                    s.session = nil // dropping the session closes its fd
                } else if let steps = try? TransitionTable.path(from: current, to: observed, flags: flags) {
                    Self.endSessions(along: steps, from: current, in: &s)
                }
            }
        } else {
            state.withLock { $0.known = nil }
        }
        var failure = error
        failure.message = "failed to enter \(target) from \(current)"
        failure.device = name
        if failure.code != .sessionEnded && failure.code != .notFound { failure.code = .deviceError }
        failure.state = report
        return failure
    }

    /// The recovery policy of the best VMMs: try `preferred`; from ERROR, from an unknown
    /// state, or when that fails, reset the device (which lands in RUNNING). Never SETs from
    /// ERROR. Never throws: what happened, failure included, is the outcome.
    @discardableResult
    public func recover(preferring preferred: MigrationState = .running, role: DeviceOutcome.Role = .source) -> DeviceOutcome {
        let observed = try? refreshState()
        if let observed, observed != .error {
            if observed == preferred {
                return DeviceOutcome(device: name, role: role, finalState: .inState(observed), recovery: .none)
            }
            if (try? transition(to: preferred)) != nil {
                return DeviceOutcome(device: name, role: role, finalState: .inState(preferred), recovery: .moved(to: preferred))
            }
        }
        return resetOutcome(role: role)
    }

    /// Resets the device and says how that went (the target side's way to abandon a resume).
    public func resetOutcome(role: DeviceOutcome.Role) -> DeviceOutcome {
        do {
            try resetDevice()
            return DeviceOutcome(device: name, role: role, finalState: .reset, recovery: .reset)
        } catch {
            let after: DeviceFinalState
            do { after = .inState(try refreshState()) } catch let readBack { after = .unknown(readBack.errno) }
            return DeviceOutcome(
                device: name, role: role, finalState: after, recovery: .failed(message: error.description, errno: error.errno))
        }
    }

    /// VFIO_DEVICE_RESET: ends every session and returns the device to RUNNING.
    public func resetDevice() throws(VFIOError) {
        state.withLock { s in
            s.session = nil // dropping the session closes its fd
            s.known = nil
        }
        try device.reset()
        state.withLock { $0.known = .running }
    }

    /// Opts in to REINIT reports where the device offers MIG_PRECOPY_INFOv2.
    @discardableResult
    public func enablePreCopyReinitReports() throws(VFIOError) -> Bool {
        let enabled = try device.enablePreCopyReinitReports()
        state.withLock { $0.reportsReinit = enabled }
        return enabled
    }

    /// The open session's I/O and the state it is in, or a misuse error naming what was expected.
    private func session(saving: Bool, _ call: String) throws(VFIOError) -> (any DataSessionIO, MigrationState) {
        let found = state.withLock { s -> (any DataSessionIO, MigrationState)? in
            guard let io = s.session?.io, io.isSaving == saving, let known = s.known else { return nil }
            return (io, known)
        }
        guard let found else {
            throw .invalidUse("\(call) outside a \(saving ? "save" : "resume") session (device in \(knownState.map { "\($0)" } ?? "an unknown state"))", device: name)
        }
        return found
    }

    /// Reads the next piece of the save stream into `buffer[range]`.
    public func readSaveData(into buffer: IOBuffer, range: Range<Int>) throws(VFIOError) -> DataReadResult {
        let (io, phase) = try session(saving: true, "reading save data")
        return try io.read(into: buffer, range: range, phase: phase)
    }

    /// Writes all of `buffer[range]` into the resume session, looping over short writes. A
    /// non-blocking fd (EAGAIN) is put back in blocking mode, as the save side does.
    public func writeResumeData(from buffer: IOBuffer, range: Range<Int>) throws(VFIOError) {
        let (io, phase) = try session(saving: false, "writing resume data")
        guard phase == .resuming else { throw .invalidUse("writing resume data in \(phase)", device: name) }
        var cursor = range.lowerBound
        var madeBlocking = false
        while cursor < range.upperBound {
            let n = try io.write(from: buffer, range: cursor..<range.upperBound)
            if n == 0 {
                guard !madeBlocking else {
                    throw VFIOError(.deviceError, "the resume data fd took no bytes in blocking mode", device: name, operation: "write")
                }
                try io.setMode(.blocking)
                madeBlocking = true
                continue
            }
            cursor += n
        }
    }

    /// VFIO_MIG_GET_PRECOPY_INFO on the open save session.
    public func preCopyInfo() throws(VFIOError) -> PreCopyInfo {
        let (io, _) = try session(saving: true, "reading pre-copy info")
        return try io.preCopyInfo()
    }

    /// Puts the open session's fd in blocking mode (after an EAGAIN).
    public func makeSessionBlocking() throws(VFIOError) {
        let io = state.withLock { $0.session?.io }
        try io?.setMode(.blocking)
    }
}
