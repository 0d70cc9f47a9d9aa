import SystemPackage
import VFIOBuffers
@testable import VFIOCore

/// A device for driver tests: walks the kernel path arc by arc, can fail a chosen arc, and
/// records every call so tests can check the exact order (a failed SET must be followed by a GET).
final class ScriptedDevice: MigrationDevice, @unchecked Sendable {
    let name = "scripted0"
    var flags: MigrationFlags
    var state: MigrationState = .running
    var calls: [String] = []
    /// Fail this arc with this errno; the device stays at the arc's start, or lands in ERROR.
    var failArc: (arc: MigrationArc, errno: Errno, toError: Bool)?
    var failReset = false
    var channels: [ScriptedChannel] = []

    init(flags: MigrationFlags) { self.flags = flags }

    func migrationFlags() throws(VFIOError) -> MigrationFlags {
        calls.append("GET flags")
        return flags
    }

    func currentState() throws(VFIOError) -> MigrationState {
        calls.append("GET state")
        return state
    }

    func setState(_ target: MigrationState) throws(VFIOError) -> (any MigrationDataChannel)? {
        calls.append("SET \(target)")
        guard case .success(let steps) = TransitionTable.path(from: state, to: target, flags: flags) else {
            throw VFIOError(.invalidTransition, "scripted refusal", errno: .invalidArgument)
        }
        var opened: ScriptedChannel?
        for step in steps {
            let arc = MigrationArc(state, step)
            if let f = failArc, f.arc == arc {
                if f.toError { state = .error }
                throw VFIOError(VFIOError.code(for: f.errno), "scripted failure", operation: "SET", errno: f.errno)
            }
            if TransitionTable.endsSession(arc) { channels.last?.dead = true }
            if TransitionTable.opensSession(arc) {
                opened = ScriptedChannel(saving: step.isSaving)
                channels.append(opened!)
            }
            state = step
        }
        return opened
    }

    func reset() throws(VFIOError) {
        calls.append("RESET")
        if failReset { throw VFIOError(.ioFailure, "scripted reset failure", errno: .ioError) }
        channels.last?.dead = true
        state = .running
    }

    func stopCopySizeEstimate() throws(VFIOError) -> UInt64? { nil }
}

final class ScriptedChannel: MigrationDataChannel, @unchecked Sendable {
    let deviceName = "scripted0"
    let isSaving: Bool
    var dead = false
    var closeCount = 0
    /// Writes that answer 0 (a full non-blocking fd) before the fd is made blocking; -1: always.
    var fullWrites = 0
    var nonBlockingChanges: [Bool] = []
    var written = 0
    init(saving: Bool) { isSaving = saving }
    func read(into buffer: IOBuffer, range: Range<Int>, phase: MigrationState) throws(VFIOError) -> DataReadResult { .endOfStream }
    func write(from buffer: IOBuffer, range: Range<Int>) throws(VFIOError) -> Int {
        if fullWrites != 0 {
            if fullWrites > 0 { fullWrites -= 1 }
            return 0
        }
        written += range.count
        return range.count
    }
    func preCopyInfo() throws(VFIOError) -> PreCopyInfo { PreCopyInfo(initialBytes: 0, dirtyBytes: 0) }
    func setNonBlocking(_ enabled: Bool) throws(VFIOError) { nonBlockingChanges.append(enabled) }
    func close() {
        closeCount += 1
        precondition(closeCount == 1, "closed twice")
    }
}
