// The engine's error: what failed, on which device, the errno when a system call said no,
// and where a migration left the device. Codes are an extensible struct, so adding one never
// breaks a client's switch.
import SystemPackage
import VFIOBuffers

public struct VFIOError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let raw: String
        private init(_ raw: String) { self.raw = raw }
        public var description: String { raw }

        /// The device or kernel lacks the feature (ENOTTY, EOPNOTSUPP).
        public static let notSupported = Code("not supported")
        public static let permissionDenied = Code("permission denied")
        public static let busy = Code("busy")
        /// The engine refused a transition before issuing it, or the kernel refused it.
        public static let invalidTransition = Code("invalid transition")
        /// The device failed an operation (a failed arc, a refused resume).
        public static let deviceError = Code("device error")
        /// The data session ended under us (ENODEV) or the device went away.
        public static let sessionEnded = Code("session ended")
        public static let ioFailure = Code("I/O failure")
        public static let streamIncompatible = Code("stream incompatible")
        public static let streamCorrupt = Code("stream corrupt")
        public static let resourceExhausted = Code("resource exhausted")
        public static let cancelled = Code("cancelled")
        public static let notFound = Code("not found")
        public static let invalidArgument = Code("invalid argument")
    }

    /// Where a device was when the error was raised.
    public struct DeviceStateReport: Sendable, Equatable, CustomStringConvertible {
        public var requested: MigrationState?
        /// The state read back after the failure; nil when it could not be read.
        public var observed: MigrationState?
        /// What recovery did, if any ("returned to RUNNING", "reset to RUNNING").
        public var recovery: String?

        public init(requested: MigrationState? = nil, observed: MigrationState? = nil, recovery: String? = nil) {
            self.requested = requested
            self.observed = observed
            self.recovery = recovery
        }

        public var description: String {
            var parts: [String] = []
            if let observed { parts.append("device is in \(observed)") } else { parts.append("device state unknown") }
            if let requested { parts.append("requested \(requested)") }
            if let recovery { parts.append(recovery) }
            return parts.joined(separator: ", ")
        }
    }

    public var code: Code
    /// Lowercase, starts with what failed: "failed to enter STOP_COPY".
    public var message: String
    public var device: String?
    /// The system call and sub-operation, e.g. "VFIO_DEVICE_FEATURE[MIG_DEVICE_STATE|SET]".
    public var operation: String?
    public var errno: Errno?
    public var state: DeviceStateReport?
    /// Where a failed save or load left every device it held, e.g. "source devices: mock:a
    /// returned to RUNNING; mock:b reset to RUNNING". Printed after everything about the failure.
    public var outcome: String?

    public init(
        _ code: Code, _ message: String, device: String? = nil, operation: String? = nil,
        errno: Errno? = nil, state: DeviceStateReport? = nil
    ) {
        self.code = code
        self.message = message
        self.device = device
        self.operation = operation
        self.errno = errno
        self.state = state
    }

    public var description: String {
        var text = message
        if let device { text += " on \(device)" }
        if let operation {
            text += ": \(operation)"
            if let errno { text += " \(Self.errnoName(errno))" }
        } else if let errno {
            text += ": \(Self.errnoName(errno))"
        }
        if let state { text += " (\(state))" }
        if let outcome { text += "; \(outcome)" }
        return text
    }

    /// Symbolic errno plus its text, e.g. "EINVAL (Invalid argument)".
    public static func errnoName(_ e: Errno) -> String {
        "\(errnoSymbol(e.rawValue) ?? "errno \(e.rawValue)") (\(e.description))"
    }

    /// The code an errno from the kernel most likely means.
    public static func code(for errno: Errno) -> Code {
        switch errno.rawValue {
        case 25, 95: .notSupported
        case 1, 13: .permissionDenied
        case 16: .busy
        case 19: .sessionEnded
        case 12, 24, 28, 122: .resourceExhausted
        case 2, 6: .notFound
        default: .ioFailure
        }
    }
}
