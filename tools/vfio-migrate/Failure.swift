// One rule for every command's exit status, and one way to tell a person what failed: one
// line (what, on which device, the errno's name, where the device is now, the obvious next
// step), more with --verbose, and an error document on standard output with --json.
import Foundation
import VFIOMigration

/// Exit statuses (docs/cli.md, "Exit codes").
enum ExitStatus: Int32, Sendable {
    case success = 0
    /// The operation failed: a device or I/O error, a replay or state mismatch.
    case failed = 1
    /// The command line is wrong: an option, a mock spec, the number of devices for a stream.
    case usage = 2
    /// A valid stream these targets (or this reader) cannot take.
    case incompatible = 3
    /// The input is not a valid stream: not a stream at all, a checksum, a length, an order rule.
    case corrupt = 4
    /// A device, file or sysfs tree does not exist.
    case notFound = 5
    /// Not possible here: no VFIO, a device without migration support.
    case notSupported = 6

    init(_ error: VFIOError) {
        switch error.code {
        case .streamIncompatible: self = .incompatible
        case .streamCorrupt: self = .corrupt
        case .notFound: self = .notFound
        case .notSupported: self = .notSupported
        case .invalidArgument: self = .usage
        default: self = .failed
        }
    }

    var name: String {
        switch self {
        case .success: "success"
        case .failed: "failed"
        case .usage: "usage"
        case .incompatible: "incompatible"
        case .corrupt: "corrupt"
        case .notFound: "not-found"
        case .notSupported: "not-supported"
        }
    }
}

/// A failure the tool itself finds (a bad option value, a mismatch it reports).
struct CLIFailure: Error {
    var status: ExitStatus
    var message: String
    var device: String?
    var hint: String?

    init(_ status: ExitStatus, _ message: String, device: String? = nil, hint: String? = nil) {
        self.status = status
        self.message = message
        self.device = device
        self.hint = hint
    }
}

/// What a failed command prints.
struct FailureReport: Encodable {
    struct ErrnoValue: Encodable {
        var name: String
        var number: Int32
    }

    struct Outcome: Encodable {
        var device: String
        var role: String
        var finalState: String
        var running: Bool
        var recovery: String
    }

    var message: String
    var code: String
    var exitStatus: Int32
    var device: String?
    var operation: String?
    var errno: ErrnoValue?
    var requestedState: String?
    var observedState: String?
    var outcomes: [Outcome]
    var hint: String?

    init(_ error: VFIOError) {
        message = error.message
        code = error.code.description
        exitStatus = ExitStatus(error).rawValue
        device = error.device
        operation = error.operation
        errno = error.errno.map { ErrnoValue(name: $0.name, number: $0.rawValue) }
        requestedState = error.state?.requested.map(\.description)
        observedState = error.state?.observed.map(\.description)
        outcomes = error.outcomes.map {
            Outcome(device: $0.device, role: $0.role.rawValue, finalState: $0.finalState.description, running: $0.isRunning,
                    recovery: $0.recoveryDescription)
        }
        hint = error.operatorHint
    }

    init(_ failure: CLIFailure) {
        message = failure.message
        code = failure.status.name
        exitStatus = failure.status.rawValue
        device = failure.device
        outcomes = []
        hint = failure.hint
    }

    enum CodingKeys: String, CodingKey {
        case message, code, exitStatus, device, operation, errno, requestedState, observedState, outcomes, hint
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(message, forKey: .message)
        try c.encode(code, forKey: .code)
        try c.encode(exitStatus, forKey: .exitStatus)
        try c.encode(device, forKey: .device)
        try c.encode(operation, forKey: .operation)
        try c.encode(errno, forKey: .errno)
        try c.encode(requestedState, forKey: .requestedState)
        try c.encode(observedState, forKey: .observedState)
        try c.encode(outcomes, forKey: .outcomes)
        try c.encode(hint, forKey: .hint)
    }

    /// One line: what failed and on which device, the call and errno, where that device is
    /// now, where the others are, and the hint.
    var line: String {
        var text = message
        if let device { text += " on \(device)" }
        if let operation {
            text += ": \(operation)"
            if let errno { text += " \(errno.name)" }
        } else if let errno {
            text += ": \(errno.name)"
        }
        var now: [String] = []
        if let own = outcomes.first(where: { $0.device == device }) {
            now.append("device now \(own.finalState): \(own.recovery)")
        } else if let observedState {
            now.append("device is in \(observedState)")
        }
        if let requestedState { now.append("requested \(requestedState)") }
        if !now.isEmpty { text += " (\(now.joined(separator: ", ")))" }
        let others = outcomes.filter { $0.device != device }
        if !others.isEmpty {
            text += "; " + others.map { "\($0.role) \($0.device) \($0.recovery)" }.joined(separator: "; ")
        }
        if let hint { text += " (hint: \(hint))" }
        return text
    }
}

extension VFIOError {
    /// The detail --verbose adds: the code, the call, every outcome, what was done before.
    var verboseLines: [String] {
        var lines = ["  code: \(code)"]
        if let operation { lines.append("  operation: \(operation)") }
        if let errno { lines.append("  errno: \(errno) [\(errno.rawValue)]") }
        if let state {
            lines.append("  state: requested \(state.requested.map(\.description) ?? "-"), observed \(state.observed.map(\.description) ?? "unknown")")
        }
        for outcome in outcomes {
            lines.append("  outcome: \(outcome.role) \(outcome.device): \(outcome.finalState), \(outcome.recoveryDescription)")
        }
        if let report = saveReport {
            for d in report.devices {
                lines.append("  saved before the failure: \(d.name) pre-copy \(formatBytes(d.preCopyBytes)), stop-copy \(formatBytes(d.stopCopyBytes)), \(d.chunks) chunks")
            }
            lines.append("  pre-copy rounds before the failure: \(report.rounds.count)")
        }
        if let report = loadReport {
            for d in report.devices {
                lines.append("  loaded before the failure: \(d.name) \(formatBytes(d.bytes)) in \(d.chunks) chunks")
            }
        }
        return lines
    }
}
