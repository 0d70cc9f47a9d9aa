import Synchronization
import VFIOBuffers
@testable import VFIOCore
import VFIOStream

/// A device for driver and session tests: walks the kernel path arc by arc, can fail a chosen
/// arc, serves scripted save data, and records every call so tests can check the exact order
/// (a failed SET must be followed by a GET).
final class ScriptedDevice: MigrationDevice, @unchecked Sendable {
    let name: String
    var flags: MigrationFlags
    var state: MigrationState = .running
    var calls: [String] = []
    /// Fail this arc with this errno; the device stays at the arc's start, or lands in ERROR.
    var failArc: (arc: MigrationArc, errno: ErrorNumber, toError: Bool)?
    var failReset = false
    var channels: [ScriptedChannel] = []
    /// Bytes a save session serves in PRE_COPY (per read at most `readLimit`), then in STOP_COPY.
    var preCopyData: [UInt8] = []
    var stopCopyData: [UInt8] = []
    var readLimit = Int.max
    /// Dirty bytes PRECOPY_INFO reports while the pre-copy data is drained.
    var dirtyAfterDrain: UInt64 = 0
    var stopCopyEstimate: UInt64?
    var offersReinit = false

    init(name: String = "scripted0", flags: MigrationFlags) {
        self.name = name
        self.flags = flags
    }

    func migrationFlags() throws(VFIOError) -> MigrationFlags {
        calls.append("GET flags")
        return flags
    }

    func currentState() throws(VFIOError) -> MigrationState {
        calls.append("GET state")
        return state
    }

    func setState(_ target: MigrationState) throws(VFIOError) -> DataSession? {
        calls.append("SET \(target)")
        let steps: [MigrationState]
        do {
            steps = try TransitionTable.path(from: state, to: target, flags: flags)
        } catch {
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
                opened = ScriptedChannel(device: self, saving: step.isSaving)
                channels.append(opened!)
            }
            state = step
        }
        return opened.map { DataSession($0) }
    }

    func reset() throws(VFIOError) {
        calls.append("RESET")
        if failReset { throw VFIOError(.ioFailure, "scripted reset failure", errno: .ioError) }
        channels.last?.dead = true
        state = .running
    }

    func stopCopySizeEstimate() throws(VFIOError) -> UInt64? { stopCopyEstimate }

    func enablePreCopyReinitReports() throws(VFIOError) -> Bool {
        calls.append("SET PRECOPY_INFOv2")
        return offersReinit
    }
}

final class ScriptedChannel: DataSessionIO, @unchecked Sendable {
    unowned let device: ScriptedDevice
    let deviceName: String
    let isSaving: Bool
    var dead = false
    var closeCount = 0
    /// Writes that answer 0 (a full non-blocking fd) before the fd is made blocking; -1: always.
    var fullWrites = 0
    var nonBlockingChanges: [Bool] = []
    var written: [UInt8] = []
    var preCopyCursor = 0
    var stopCopyCursor = 0

    init(device: ScriptedDevice, saving: Bool) {
        self.device = device
        self.deviceName = device.name
        self.isSaving = saving
    }

    func read(into buffer: IOBuffer, range: Range<Int>, phase: MigrationState) throws(VFIOError) -> DataReadResult {
        if dead { throw VFIOError(.sessionEnded, "scripted dead session", errno: .noDevice) }
        let n = min(range.count, device.readLimit)
        if phase == .stopCopy {
            // STOP_COPY first serves what pre-copy left, then the stop-copy data.
            if preCopyCursor < device.preCopyData.count {
                let take = min(n, device.preCopyData.count - preCopyCursor)
                buffer.write(device.preCopyData[preCopyCursor..<preCopyCursor + take], at: range.lowerBound)
                preCopyCursor += take
                return .bytes(take)
            }
            let take = min(n, device.stopCopyData.count - stopCopyCursor)
            if take == 0 { return .endOfStream }
            buffer.write(device.stopCopyData[stopCopyCursor..<stopCopyCursor + take], at: range.lowerBound)
            stopCopyCursor += take
            return .bytes(take)
        }
        let take = min(n, device.preCopyData.count - preCopyCursor)
        if take == 0 { return .noDataNow }
        buffer.write(device.preCopyData[preCopyCursor..<preCopyCursor + take], at: range.lowerBound)
        preCopyCursor += take
        return .bytes(take)
    }

    func write(from buffer: IOBuffer, range: Range<Int>) throws(VFIOError) -> Int {
        if fullWrites != 0 {
            if fullWrites > 0 { fullWrites -= 1 }
            return 0
        }
        written += buffer.bytes(range)
        return range.count
    }

    func preCopyInfo() throws(VFIOError) -> PreCopyInfo {
        let left = UInt64(device.preCopyData.count - preCopyCursor)
        return PreCopyInfo(initialBytes: left, dirtyBytes: left == 0 ? device.dirtyAfterDrain : 0)
    }

    func setMode(_ mode: IOMode) throws(VFIOError) { nonBlockingChanges.append(mode == .nonBlocking) }

    func close() {
        closeCount += 1
        precondition(closeCount == 1, "closed twice")
    }
}
