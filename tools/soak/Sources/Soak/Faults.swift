// The faults a soak run may carry, each with what it must end in. Device faults are the
// emulator's spec options (docs/mock.md, "Faults") on one device of the run; a cut link is a
// data connection whose writes fail part-way.
import Foundation
import VFIOMigration

enum Fault: String, CaseIterable {
    case none
    case sourceShortReads = "source short reads"
    case sourceEINTR = "source EINTR"
    case targetEINTR = "target EINTR"
    case targetShortWrites = "target short writes"
    case sourceSessionDies = "source data session dies (ENODEV)"
    case sourceSetupFails = "source RUNNING->PRE_COPY fails (EIO)"
    case sourceStopCopyFails = "source enters STOP_COPY and fails (EIO)"
    case sourceStopCopyError = "source enters STOP_COPY into ERROR"
    case sourceFinishError = "source STOP_COPY->STOP into ERROR after the last byte"
    case targetSessionDies = "target data session dies (ENODEV)"
    case targetRefusesState = "target RESUMING->STOP refused (EINVAL)"
    case targetCannotResume = "target STOP->RESUMING fails (EIO): refused"
    case incompatibleTarget = "incompatible target: refused"
    case linkCut = "a data link fails (ECONNRESET)"
    case unquiescedDevices = "several devices without P2P: refused"

    /// Faults the migration goes through: the data must arrive whole.
    var survivable: Bool { [.none, .sourceShortReads, .sourceEINTR, .targetEINTR, .targetShortWrites].contains(self) }

    /// Only this may end with the target holding the load, stopped: it confirmed, then the
    /// source failed to leave STOP_COPY and never committed.
    var mayLeaveTargetStopped: Bool { self == .sourceFinishError }

    /// Faults on an arc need flags whose path has that arc; devices that cannot quiesce need
    /// several of them.
    func fits(preCopy: Bool, p2p: Bool, devices: Int) -> Bool {
        switch self {
        case .unquiescedDevices: devices > 1
        case .sourceSetupFails: preCopy
        default: true
        }
    }

    /// Spec options for the faulty source device and target device.
    func options(preCopy: Bool, p2p: Bool, stateBytes: Int, using random: inout SplitMix) -> (source: String, target: String) {
        let somewhere = Int.random(in: 16 << 10...max(16 << 10, stateBytes / 2), using: &random)
        // The arc into STOP_COPY: from PRE_COPY (PRE_COPY_P2P with P2P), or from STOP.
        let into = preCopy ? (p2p ? "PRE_COPY_P2P>STOP_COPY" : "PRE_COPY>STOP_COPY") : "STOP>STOP_COPY"
        switch self {
        case .none, .linkCut, .unquiescedDevices: return ("", "")
        case .sourceShortReads: return ("&short-read=\(Int.random(in: 1...16) * 1024)", "")
        case .sourceEINTR: return ("&eintr=\(Int.random(in: 2...7))", "")
        case .targetEINTR: return ("", "&eintr=\(Int.random(in: 2...7))")
        case .targetShortWrites: return ("", "&short-write=\(Int.random(in: 1...16) * 1024)")
        case .sourceSessionDies: return ("&enodev-after=\(somewhere)", "")
        case .sourceSetupFails: return ("&fail-arc=RUNNING>PRE_COPY:EIO", "")
        case .sourceStopCopyFails: return ("&fail-arc=\(into):EIO", "")
        case .sourceStopCopyError: return ("&fail-arc=\(into):EIO:error", "")
        case .sourceFinishError: return ("&fail-arc=STOP_COPY>STOP:EIO:error", "")
        case .targetSessionDies: return ("", "&enodev-after=\(somewhere)")
        case .targetRefusesState: return ("", "&fail-arc=RESUMING>STOP:EINVAL")
        case .targetCannotResume: return ("", "&fail-arc=STOP>RESUMING:EIO")
        case .incompatibleTarget: return ("", "&compat=other-firmware")
        }
    }
}

/// A data connection whose writes fail with ECONNRESET once `after` bytes went out.
final class CutLink: ByteStreamConnection, @unchecked Sendable {
    let inner: any ByteStreamConnection
    let after: Int
    private var sent = 0
    private(set) var didCut = false
    init(_ inner: any ByteStreamConnection, after: Int) {
        self.inner = inner
        self.after = after
    }
    var description: String { inner.description }
    var peerAddress: String { inner.peerAddress }
    func read(into buffer: IOBuffer, range: Range<Int>) throws -> Int { try inner.read(into: buffer, range: range) }
    func write(_ buffer: IOBuffer, range: Range<Int>) throws {
        let fits = max(0, min(range.count, after - sent))
        if fits > 0 { try inner.write(buffer, range: range.lowerBound..<(range.lowerBound + fits)) }
        sent += fits
        if fits < range.count {
            didCut = true
            inner.interrupt()
            throw VFIOError(.ioFailure, "the link was cut after \(after) bytes (soak)", errno: .connectionReset)
        }
    }
    func write(gather slices: [BufferSlice]) throws { for slice in slices { try write(slice.buffer, range: slice.range) } }
    func shutdownWrite() throws { try inner.shutdownWrite() }
    func close() throws { try inner.close() }
    func interrupt() { inner.interrupt() }
    func setIdleTimeout(_ timeout: Duration?) throws { try inner.setIdleTimeout(timeout) }
}

/// Connects as `base` does; the data connection `channel` (0-based) is a cut link.
final class CuttingConnector: TransferConnecting, @unchecked Sendable {
    let base: TCPConnector
    let channel: Int
    let after: Int
    private let lock = NSLock()
    private var opened = 0
    private var link: CutLink?
    init(_ base: TCPConnector, channel: Int, after: Int) {
        self.base = base
        self.channel = channel
        self.after = after
    }
    var description: String { base.description }
    var isAuthenticated: Bool { base.isAuthenticated }
    func connect() throws(VFIOError) -> ConnectionChannel {
        let connection = try base.connect()
        let index = lock.withLock { () -> Int in
            defer { opened += 1 }
            return opened
        }
        guard index == channel + 1 else { return connection }
        let cut = CutLink(connection.connection, after: after)
        lock.withLock { link = cut }
        return ConnectionChannel(cut)
    }

    /// Whether the link was cut: a channel that carried fewer bytes than `after` never was.
    var didCut: Bool { lock.withLock { link?.didCut ?? false } }
}
