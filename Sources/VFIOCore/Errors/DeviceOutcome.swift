// Where an operation left a device, as a value: the state read back (or the reset the engine
// issued, or that the state is unknown), and what recovery did to get it there.

/// A device's state at the end of an operation.
public enum DeviceFinalState: Sendable, Hashable, CustomStringConvertible {
    /// Read back from the device.
    case inState(MigrationState)
    /// The engine reset the device: it is RUNNING, its migration state was discarded.
    case reset
    /// The state could not be read back; the errno of the failed GET when there was one.
    case unknown(ErrorNumber?)

    public var description: String {
        switch self {
        case .inState(let s): "\(s)"
        case .reset: "RUNNING after a reset"
        case .unknown(let errno): "unknown" + (errno.map { " (\($0.name))" } ?? "")
        }
    }

    /// True when the device runs (RUNNING, or reset to RUNNING).
    public var isRunning: Bool {
        switch self {
        case .inState(let s): s == .running
        case .reset: true
        case .unknown: false
        }
    }
}

/// What the engine did to a device after a failure, or at the end of an operation.
public enum Recovery: Sendable, Hashable {
    /// Nothing was needed: the device already was where it should be.
    case none
    /// A state transition took it there.
    case moved(to: MigrationState)
    /// VFIO_DEVICE_RESET (from ERROR, from an unknown state, or because a transition failed).
    case reset
    /// Recovery failed; the device is where `finalState` says.
    case failed(message: String, errno: ErrorNumber?)
}

/// One device's fate in a save, load or migration.
public struct DeviceOutcome: Sendable, Hashable, CustomStringConvertible {
    public enum Role: String, Sendable, Hashable, Codable {
        case source, target
    }

    public var device: String
    public var role: Role
    public var finalState: DeviceFinalState
    public var recovery: Recovery

    public init(device: String, role: Role, finalState: DeviceFinalState, recovery: Recovery) {
        self.device = device
        self.role = role
        self.finalState = finalState
        self.recovery = recovery
    }

    public var isRunning: Bool { finalState.isRunning }

    /// "returned to RUNNING", "reset to RUNNING, loaded state discarded", "left in STOP".
    public var recoveryDescription: String {
        switch recovery {
        case .none: "left in \(finalState)"
        case .moved(let s): "returned to \(s)"
        case .reset: role == .target ? "reset to RUNNING, loaded state discarded" : "reset to RUNNING"
        case .failed(let message, _): "could not be recovered: \(message); state \(finalState)"
        }
    }

    public var description: String { "\(device) \(recoveryDescription)" }
}
