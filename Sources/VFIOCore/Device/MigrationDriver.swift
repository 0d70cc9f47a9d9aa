// MigrationDriver walks one device through the v2 state machine with the kernel's rules:
// requests the kernel would refuse are refused here first, a failed SET is followed by a GET
// (the kernel echoes the requested state, not the real one), and the data fd of a session is
// owned here and closed exactly once, when the session it belongs to ends.
import VFIOBuffers

public final class MigrationDriver: @unchecked Sendable {
    public let device: any MigrationDevice
    public let flags: MigrationFlags
    /// The last state known for certain; nil after a failure that left it unknown.
    public private(set) var knownState: MigrationState?
    /// The open data session, if any.
    public private(set) var channel: (any MigrationDataChannel)?

    public var name: String { device.name }

    /// Probes the device's migration flags and current state.
    public init(device: any MigrationDevice) throws(VFIOError) {
        self.device = device
        let flags = try device.migrationFlags()
        guard flags.contains(.stopCopy) else {
            throw VFIOError(.notSupported, "device reports migration flags \(flags) without STOP_COPY", device: device.name)
        }
        self.flags = flags
        self.knownState = try device.currentState()
    }

    deinit {
        channel?.close()
    }

    /// Reads the state from the device (GET) and remembers it. A session the state cannot
    /// hold (the device was reset or moved behind the engine's back) is closed: its fd is dead,
    /// and a later arc must be free to open a new one.
    @discardableResult
    public func refreshState() throws(VFIOError) -> MigrationState {
        let state = try device.currentState()
        knownState = state
        if let open = channel, open.isSaving ? !state.isSaving : state != .resuming {
            open.close()
            channel = nil
        }
        return state
    }

    /// Moves the device to `target`. The kernel walks the path in one SET; on failure the
    /// state is read back and reported with the errno. Returns the session's data channel
    /// when the device is in a saving or resuming state afterwards.
    @discardableResult
    public func transition(to target: MigrationState) throws(VFIOError) -> (any MigrationDataChannel)? {
        let current: MigrationState
        if let known = knownState { current = known } else { current = try refreshState() }
        if current == target { return channel }
        if let refusal = TransitionTable.validate(from: current, to: target, flags: flags) {
            throw VFIOError(
                .invalidTransition, "refused to request \(target): \(refusal)", device: name,
                state: .init(requested: target, observed: current))
        }
        guard case .success(let steps) = TransitionTable.path(from: current, to: target, flags: flags) else {
            preconditionFailure("validated transition \(current)->\(target) has no path")
        }

        let opened: (any MigrationDataChannel)?
        do {
            opened = try device.setState(target)
        } catch {
            throw failedTransition(from: current, to: target, error)
        }

        endSessions(along: steps, from: current)
        let last = MigrationArc(steps.count > 1 ? steps[steps.count - 2] : current, target)
        knownState = target
        if TransitionTable.opensSession(last) {
            guard let opened else {
                throw VFIOError(
                    .deviceError, "entered \(target) but the kernel returned no data fd", device: name,
                    operation: "VFIO_DEVICE_FEATURE[MIG_DEVICE_STATE|SET]", state: .init(requested: target, observed: target))
            }
            precondition(channel == nil, "a new session opened while another was still owned")
            channel = opened
        } else if let opened {
            // A driver that returns an fd on an arc that opens no session is broken; do not leak it.
            opened.close()
            throw VFIOError(
                .deviceError, "the kernel returned a data fd on \(last), which opens no session", device: name,
                state: .init(requested: target, observed: target))
        }
        return channel
    }

    /// Closes the owned data fd when any arc on the path ends its session.
    private func endSessions(along steps: [MigrationState], from start: MigrationState) {
        var at = start
        for step in steps {
            if TransitionTable.endsSession(MigrationArc(at, step)) {
                channel?.close()
                channel = nil
            }
            at = step
        }
    }

    private func failedTransition(from current: MigrationState, to target: MigrationState, _ error: VFIOError) -> VFIOError {
        var report = VFIOError.DeviceStateReport(requested: target)
        if let observed = try? device.currentState() {
            report.observed = observed
            knownState = observed
            if observed == .error {
                channel?.close()
                channel = nil
            } else if case .success(let steps) = TransitionTable.path(from: current, to: observed, flags: flags) {
                endSessions(along: steps, from: current)
            }
        } else {
            knownState = nil
        }
        var failure = error
        failure.message = "failed to enter \(target) from \(current)"
        failure.device = name
        if failure.code != .sessionEnded && failure.code != .notFound { failure.code = .deviceError }
        failure.state = report
        return failure
    }

    /// What `recover` did.
    public enum Recovery: Sendable, Equatable, CustomStringConvertible {
        case alreadyIn(MigrationState)
        case moved(to: MigrationState)
        case reset
        public var description: String {
            switch self {
            case .alreadyIn(let s): "left in \(s)"
            case .moved(let s): "returned to \(s)"
            case .reset: "reset to RUNNING"
            }
        }
    }

    /// The recovery policy of the best VMMs: try `preferred`; from ERROR, from an unknown
    /// state, or when that fails, reset the device (which lands in RUNNING). Never SETs
    /// from ERROR. Throws only when even the reset fails.
    @discardableResult
    public func recover(preferring preferred: MigrationState = .running) throws(VFIOError) -> Recovery {
        let observed = try? refreshState()
        if let observed, observed != .error {
            if observed == preferred {
                return .alreadyIn(observed)
            }
            do {
                try transition(to: preferred)
                return .moved(to: preferred)
            } catch {
                // fall through to a reset
            }
        }
        try resetDevice()
        return .reset
    }

    /// VFIO_DEVICE_RESET: ends every session and returns the device to RUNNING.
    public func resetDevice() throws(VFIOError) {
        channel?.close()
        channel = nil
        knownState = nil
        try device.reset()
        knownState = .running
    }

    /// Reads the next piece of the save stream into `buffer[range]`.
    public func readSaveData(into buffer: IOBuffer, range: Range<Int>) throws(VFIOError) -> DataReadResult {
        guard let channel, channel.isSaving, let phase = knownState, phase.isSaving else {
            preconditionFailure("readSaveData outside a save session on \(name)")
        }
        return try channel.read(into: buffer, range: range, phase: phase)
    }

    /// Writes all of `buffer[range]` into the resume session, looping over short writes. A
    /// non-blocking fd (EAGAIN) is put back in blocking mode, as the save side does.
    public func writeResumeData(from buffer: IOBuffer, range: Range<Int>) throws(VFIOError) {
        guard let channel, !channel.isSaving, knownState == .resuming else {
            preconditionFailure("writeResumeData outside a resume session on \(name)")
        }
        var cursor = range.lowerBound
        var madeBlocking = false
        while cursor < range.upperBound {
            let n = try channel.write(from: buffer, range: cursor..<range.upperBound)
            if n == 0 {
                guard !madeBlocking else {
                    throw VFIOError(.deviceError, "the resume data fd took no bytes in blocking mode", device: name, operation: "write")
                }
                try channel.setNonBlocking(false)
                madeBlocking = true
                continue
            }
            cursor += n
        }
    }

    /// VFIO_MIG_GET_PRECOPY_INFO on the open save session.
    public func preCopyInfo() throws(VFIOError) -> PreCopyInfo {
        guard let channel, channel.isSaving else {
            preconditionFailure("preCopyInfo outside a save session on \(name)")
        }
        return try channel.preCopyInfo()
    }
}
