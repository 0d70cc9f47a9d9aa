// Migration states by their raw uAPI values, and the kernel's next-hop rule, implemented here
// on its own (not shared with VFIOCore's engine) so tests can hold the two against each other.
import SystemPackage

/// `enum vfio_device_mig_state`, by raw value.
public enum MockDeviceState: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case error = 0
    case stop = 1
    case running = 2
    case stopCopy = 3
    case resuming = 4
    case runningP2P = 5
    case preCopy = 6
    case preCopyP2P = 7

    /// The uAPI spelling without the prefix: "STOP_COPY", "RUNNING_P2P", ...
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

    /// Parses the uAPI spelling (case-insensitive, with or without `VFIO_DEVICE_STATE_`).
    public init?(name: String) {
        var key = name.uppercased()
        if key.hasPrefix("VFIO_DEVICE_STATE_") { key.removeFirst("VFIO_DEVICE_STATE_".count) }
        guard let match = Self.allCases.first(where: { $0.description == key }) else { return nil }
        self = match
    }

    /// Migration flag bits a device needs for this state to exist; ERROR can never be reached.
    var requiredFlags: UInt32? {
        switch self {
        case .error: nil
        case .stop, .running, .stopCopy, .resuming: MigrationFlag.stopCopy
        case .runningP2P: MigrationFlag.stopCopy | MigrationFlag.p2p
        case .preCopy: MigrationFlag.stopCopy | MigrationFlag.preCopy
        case .preCopyP2P: MigrationFlag.stopCopy | MigrationFlag.p2p | MigrationFlag.preCopy
        }
    }

    func isSupported(withFlags flags: UInt32) -> Bool {
        guard let required = requiredFlags else { return false }
        return flags & required == required
    }

    /// The states that share one save session.
    var isSaving: Bool { self == .preCopy || self == .preCopyP2P || self == .stopCopy }
    /// States in which the device runs and its internal state may change.
    var isRunning: Bool { self == .running || self == .runningP2P || self == .preCopy || self == .preCopyP2P }
}

/// The kernel's shortest-path rule for combination transitions.
enum MigrationPath {
    private typealias S = MockDeviceState

    /// Next hop when at `row` and asked for `column`, with every optional state supported.
    /// Saving states appear only at the ends of a path. ERROR means "not allowed".
    private static let hop: [S: [S: S]] = [
        .stop: [.stop: .stop, .running: .runningP2P, .stopCopy: .stopCopy, .resuming: .resuming,
                .runningP2P: .runningP2P, .preCopy: .runningP2P, .preCopyP2P: .runningP2P, .error: .error],
        .running: [.stop: .runningP2P, .running: .running, .stopCopy: .runningP2P, .resuming: .runningP2P,
                   .runningP2P: .runningP2P, .preCopy: .preCopy, .preCopyP2P: .runningP2P, .error: .error],
        .stopCopy: [.stop: .stop, .running: .stop, .stopCopy: .stopCopy, .resuming: .stop,
                    .runningP2P: .stop, .preCopy: .error, .preCopyP2P: .error, .error: .error],
        .resuming: [.stop: .stop, .running: .stop, .stopCopy: .stop, .resuming: .resuming,
                    .runningP2P: .stop, .preCopy: .stop, .preCopyP2P: .stop, .error: .error],
        .runningP2P: [.stop: .stop, .running: .running, .stopCopy: .stop, .resuming: .stop,
                      .runningP2P: .runningP2P, .preCopy: .running, .preCopyP2P: .preCopyP2P, .error: .error],
        .preCopy: [.stop: .running, .running: .running, .stopCopy: .preCopyP2P, .resuming: .running,
                   .runningP2P: .running, .preCopy: .preCopy, .preCopyP2P: .preCopyP2P, .error: .error],
        .preCopyP2P: [.stop: .runningP2P, .running: .runningP2P, .stopCopy: .stopCopy, .resuming: .runningP2P,
                      .runningP2P: .runningP2P, .preCopy: .preCopy, .preCopyP2P: .preCopyP2P, .error: .error],
        .error: [.stop: .error, .running: .error, .stopCopy: .error, .resuming: .error,
                 .runningP2P: .error, .preCopy: .error, .preCopyP2P: .error, .error: .error],
    ]

    /// The next state to step into from `current` towards `target` on a device with `flags`,
    /// skipping states the device lacks. EINVAL for an unsupported current state or target and
    /// for forbidden requests. Where the kernel's skip loop would spin on ERROR (STOP_COPY →
    /// PRE_COPY*), this returns EINVAL, the errno the kernel intends.
    static func nextHop(from current: UInt32, to target: UInt32, flags: UInt32) throws(Errno) -> MockDeviceState {
        guard let cur = S(rawValue: current), cur.isSupported(withFlags: flags) else { throw .invalidArgument }
        guard let want = S(rawValue: target), want.isSupported(withFlags: flags) else { throw .invalidArgument }
        var next = hop[cur]![want]!
        while !next.isSupported(withFlags: flags) {
            if next == .error { throw .invalidArgument }
            next = hop[next]![want]!
        }
        return next
    }

    /// Every state stepped through from `current` to `target` (the last is `target`).
    static func path(from current: UInt32, to target: UInt32, flags: UInt32) throws(Errno) -> [MockDeviceState] {
        var steps: [MockDeviceState] = []
        var at = current
        while at != target {
            let next = try nextHop(from: at, to: target, flags: flags)
            steps.append(next)
            at = next.rawValue
            precondition(steps.count <= 8, "migration path did not converge")
        }
        return steps
    }
}
