// The v2 transition rules as data. `nextHop` is the kernel's table for a device with every
// feature; `path` applies the kernel's rule for devices that lack some states (step through a
// missing state by looking it up again). Tests check every path against an independent
// breadth-first search over the direct arcs with saving states never interior.
import VFIOStream

/// One direct arc a driver implements.
public struct MigrationArc: Hashable, Sendable, CustomStringConvertible {
    public let from: MigrationState
    public let to: MigrationState
    public init(_ from: MigrationState, _ to: MigrationState) {
        self.from = from
        self.to = to
    }
    public var description: String { "\(from)->\(to)" }
}

/// Why a requested transition is refused before any ioctl is issued.
public enum TransitionRefusal: Error, Equatable, Sendable, CustomStringConvertible {
    /// ERROR can never be requested.
    case targetIsError
    /// The device's flags do not include the target state.
    case targetUnsupported(MigrationState, MigrationFlags)
    /// The device reports a current state its flags do not allow (or ERROR): never SET from it.
    case currentUnsupported(MigrationState, MigrationFlags)
    /// The uAPI forbids this pair (STOP_COPY to PRE_COPY or PRE_COPY_P2P).
    case forbidden(MigrationState, MigrationState)

    public var description: String {
        switch self {
        case .targetIsError: "ERROR cannot be requested; only a device reset leaves it"
        case .targetUnsupported(let s, let f): "\(s) is not a state of a device with migration flags \(f)"
        case .currentUnsupported(let s, let f) where s == .error:
            "the device is in ERROR (flags \(f)); only a reset leaves it"
        case .currentUnsupported(let s, let f): "the device reports \(s), which its flags \(f) do not allow"
        case .forbidden(let a, let b): "the uAPI does not permit \(a) to \(b)"
        }
    }
}

public enum TransitionTable {
    private typealias S = MigrationState

    /// Kernel next-hop table (all features on): row = current, column = target.
    /// `nil` marks the pairs the uAPI forbids. Column order follows `columns`.
    private static let columns: [S] = [.stop, .running, .stopCopy, .resuming, .runningP2P, .preCopy, .preCopyP2P]
    private static let rows: [S: [S?]] = [
        .stop:       [.stop, .runningP2P, .stopCopy, .resuming, .runningP2P, .runningP2P, .runningP2P],
        .running:    [.runningP2P, .running, .runningP2P, .runningP2P, .runningP2P, .preCopy, .runningP2P],
        .stopCopy:   [.stop, .stop, .stopCopy, .stop, .stop, nil, nil],
        .resuming:   [.stop, .stop, .stop, .resuming, .stop, .stop, .stop],
        .runningP2P: [.stop, .running, .stop, .stop, .runningP2P, .running, .preCopyP2P],
        .preCopy:    [.running, .running, .preCopyP2P, .running, .running, .preCopy, .preCopyP2P],
        .preCopyP2P: [.runningP2P, .runningP2P, .stopCopy, .runningP2P, .runningP2P, .preCopy, .preCopyP2P],
    ]

    /// The next state the kernel steps into at `current` on the way to `target`, for a device
    /// with every feature; `nil` when the pair is forbidden.
    public static func nextHop(from current: MigrationState, to target: MigrationState) -> MigrationState? {
        guard current != .error, target != .error, let row = rows[current],
              let column = columns.firstIndex(of: target) else { return nil }
        return row[column]
    }

    /// The direct arcs a driver with `flags` implements (uAPI "FSM arcs").
    public static func directArcs(for flags: MigrationFlags) -> Set<MigrationArc> {
        var arcs: Set<MigrationArc> = [
            MigrationArc(.stop, .stopCopy), MigrationArc(.stopCopy, .stop),
            MigrationArc(.stop, .resuming), MigrationArc(.resuming, .stop),
        ]
        let p2p = flags.contains(.p2p)
        if p2p {
            arcs.formUnion([
                MigrationArc(.running, .runningP2P), MigrationArc(.runningP2P, .running),
                MigrationArc(.runningP2P, .stop), MigrationArc(.stop, .runningP2P),
            ])
        } else {
            arcs.formUnion([MigrationArc(.running, .stop), MigrationArc(.stop, .running)])
        }
        if flags.contains(.preCopy) {
            arcs.formUnion([MigrationArc(.running, .preCopy), MigrationArc(.preCopy, .running)])
            if p2p {
                arcs.formUnion([
                    MigrationArc(.preCopy, .preCopyP2P), MigrationArc(.preCopyP2P, .preCopy),
                    MigrationArc(.preCopyP2P, .runningP2P), MigrationArc(.preCopyP2P, .stopCopy),
                    MigrationArc(.runningP2P, .preCopyP2P),
                ])
            } else {
                arcs.insert(MigrationArc(.preCopy, .stopCopy))
            }
        }
        return arcs
    }

    /// Checks a request the way the kernel would, without issuing it.
    public static func check(
        from current: MigrationState, to target: MigrationState, flags: MigrationFlags
    ) throws(TransitionRefusal) {
        if target == .error { throw .targetIsError }
        if current == .error || !current.isSupported(by: flags) { throw .currentUnsupported(current, flags) }
        if !target.isSupported(by: flags) { throw .targetUnsupported(target, flags) }
        if current == .stopCopy && (target == .preCopy || target == .preCopyP2P) {
            throw .forbidden(current, target)
        }
    }

    /// The states the kernel steps through from `current` to reach `target` (excluding
    /// `current`, ending with `target`; empty when they are equal).
    public static func path(
        from current: MigrationState, to target: MigrationState, flags: MigrationFlags
    ) throws(TransitionRefusal) -> [MigrationState] {
        try check(from: current, to: target, flags: flags)
        var steps: [MigrationState] = []
        var at = current
        while at != target {
            guard var next = nextHop(from: at, to: target) else { throw .forbidden(current, target) }
            // A state this device lacks is stepped over by looking it up again (the kernel's rule).
            while !next.isSupported(by: flags) {
                guard let skip = nextHop(from: next, to: target) else { throw .forbidden(current, target) }
                next = skip
            }
            steps.append(next)
            at = next
            precondition(steps.count <= columns.count, "transition table loops from \(current) to \(target)")
        }
        return steps
    }

    /// Arcs that end the current data session (the fd goes dead).
    public static func endsSession(_ arc: MigrationArc) -> Bool {
        arc.from.isSaving && !arc.to.isSaving || arc.from == .resuming
    }

    /// Arcs that open a new data session: the SET whose final arc this is returns a new fd.
    public static func opensSession(_ arc: MigrationArc) -> Bool {
        (!arc.from.isSaving && arc.to.isSaving) || (arc.from != .resuming && arc.to == .resuming)
    }
}
