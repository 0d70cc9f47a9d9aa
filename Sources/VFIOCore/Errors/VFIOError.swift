// The engine's error: what failed, on which device, the errno when a system call said no,
// where the failing device was, and where every device the operation held was left, as
// values a VMM can test ("is my source still RUNNING?"). Codes are an extensible struct, so
// adding one never breaks a client's switch.

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
        /// The embedder called the engine out of order (a step before setup, twice, after the end).
        public static let invalidUse = Code("invalid use")
        /// A peer did not answer in time.
        public static let timedOut = Code("timed out")
        /// The peer could not be authenticated, or is not allowed.
        public static let authenticationFailed = Code("authentication failed")
    }

    /// The failing device's state around the failure.
    public struct DeviceStateReport: Sendable, Equatable {
        public var requested: MigrationState?
        /// The state read back after the failure; nil when it could not be read.
        public var observed: MigrationState?

        public init(requested: MigrationState? = nil, observed: MigrationState? = nil) {
            self.requested = requested
            self.observed = observed
        }
    }

    public var code: Code
    /// Lowercase, starts with what failed: "failed to enter STOP_COPY from PRE_COPY".
    public var message: String
    public var device: String?
    /// The system call and sub-operation, e.g. "VFIO_DEVICE_FEATURE[MIG_DEVICE_STATE|SET]".
    public var operation: String?
    public var errno: ErrorNumber?
    public var state: DeviceStateReport?
    /// Where the failed operation left every device it held (sources returned to RUNNING,
    /// targets reset, or what could not be done), in the order the devices were given.
    public var outcomes: [DeviceOutcome] = []
    /// An obvious next step for a person ("bind it to vfio-pci"), when there is one.
    public var hint: String?
    /// What a save did before it failed.
    public var saveReport: SaveReport?
    /// What a load did before it failed.
    public var loadReport: LoadReport?

    public init(
        _ code: Code, _ message: String, device: String? = nil, operation: String? = nil,
        errno: ErrorNumber? = nil, state: DeviceStateReport? = nil, hint: String? = nil
    ) {
        self.code = code
        self.message = message
        self.device = device
        self.operation = operation
        self.errno = errno
        self.state = state
        self.hint = hint
    }

    /// The outcome of the device the error is about, when the operation reported one.
    public var failingDeviceOutcome: DeviceOutcome? { outcomes.first { $0.device == device } }

    /// One line: what failed, on which device, the call and errno, the device's state and
    /// what recovery did, then every other device's outcome.
    public var description: String {
        var text = message
        if let device { text += " on \(device)" }
        if let operation {
            text += ": \(operation)"
            if let errno { text += " \(errno)" }
        } else if let errno {
            text += ": \(errno)"
        }
        var details: [String] = []
        if let state {
            details.append(state.observed.map { "device is in \($0)" } ?? "device state unknown")
            if let requested = state.requested { details.append("requested \(requested)") }
        }
        let own = failingDeviceOutcome
        if let own { details.append(own.recoveryDescription) }
        if !details.isEmpty { text += " (\(details.joined(separator: ", ")))" }
        // One device that is itself the failing one needs no list; a sink, a stream or
        // several devices do.
        if outcomes.count > 1 || (own == nil && !outcomes.isEmpty) {
            for role in [DeviceOutcome.Role.source, .target] {
                let group = outcomes.filter { $0.role == role }
                if group.isEmpty { continue }
                text += "; \(role) devices: " + group.map(\.description).joined(separator: "; ")
            }
        }
        if let hint { text += " (hint: \(hint))" }
        return text
    }

    /// The code an errno from the kernel most likely means.
    public static func code(for errno: ErrorNumber) -> Code {
        switch errno {
        case .noIoctl, .notSupported: .notSupported
        case .notPermitted, .permissionDenied: .permissionDenied
        case .busy: .busy
        case .noDevice: .sessionEnded
        case .noMemory, .tooManyOpenFiles, .noSpace, .diskQuotaExceeded: .resourceExhausted
        case .noSuchFileOrDirectory, .noSuchDeviceOrAddress: .notFound
        case .timedOut: .timedOut
        default: .ioFailure
        }
    }

    /// An embedder's call out of order.
    public static func invalidUse(_ message: String, device: String? = nil) -> VFIOError {
        VFIOError(.invalidUse, message, device: device)
    }
}
