// The v2 migration states as Swift values, with their uAPI numbers.
import VFIOStream

/// A device's migration state; `rawValue` is the uAPI number (enum vfio_device_mig_state).
public enum MigrationState: UInt32, CaseIterable, Sendable, Codable, CustomStringConvertible {
    case error = 0
    case stop = 1
    case running = 2
    case stopCopy = 3
    case resuming = 4
    case runningP2P = 5
    case preCopy = 6
    case preCopyP2P = 7

    /// The kernel's spelling, as people see it in logs and docs.
    public var description: String {
        switch self {
        case .error: "ERROR"
        case .stop: "STOP"
        case .running: "RUNNING"
        case .stopCopy: "STOP_COPY"
        case .resuming: "RESUMING"
        case .runningP2P: "RUNNING_P2P"
        case .preCopy: "PRE_COPY"
        case .preCopyP2P: "PRE_COPY_P2P"
        }
    }

    /// Parses the kernel spelling (case-insensitive; '-' or '_').
    public init?(name: String) {
        let key = String(name.uppercased().map { $0 == "-" ? "_" : $0 })
        guard let match = MigrationState.allCases.first(where: { $0.description == key }) else { return nil }
        self = match
    }

    /// PRE_COPY, PRE_COPY_P2P and STOP_COPY share one save session.
    public var isSaving: Bool { self == .preCopy || self == .preCopyP2P || self == .stopCopy }

    /// The flags a device must report for this state to exist on it (ERROR never can be requested).
    public var requiredFlags: MigrationFlags {
        switch self {
        case .error: []
        case .stop, .running, .stopCopy, .resuming: [.stopCopy]
        case .runningP2P: [.stopCopy, .p2p]
        case .preCopy: [.stopCopy, .preCopy]
        case .preCopyP2P: [.stopCopy, .p2p, .preCopy]
        }
    }

    /// True when a device with `flags` has this state (RUNNING and ERROR always exist).
    public func isSupported(by flags: MigrationFlags) -> Bool {
        self == .running || self == .error || flags.isSuperset(of: requiredFlags)
    }
}

// MigrationFlags (VFIO_MIGRATION_*) is defined once, in VFIOStream, because the stream's
// device descriptors carry it; the engine adds what it needs to know about the combinations.
extension MigrationFlags {
    /// The combinations the uAPI defines; every other value is reserved.
    public static let definedCombinations: [MigrationFlags] = [
        [.stopCopy], [.stopCopy, .p2p], [.stopCopy, .preCopy], [.stopCopy, .p2p, .preCopy],
    ]

    public var isDefinedCombination: Bool { Self.definedCombinations.contains(self) }
}
