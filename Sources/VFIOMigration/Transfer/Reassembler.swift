// Puts every device's data back in order when it arrives over several channels. Each channel
// reader hands over one chunk at a time and waits while it is not that chunk's turn (the
// device's next byte), so the receiver holds at most one record per channel whatever the
// sender does. Each channel carries its chunks in the order the sender produced them, so some
// channel always holds a device's next chunk; when every live channel waits, the data has a
// gap and the load fails rather than hang. Writes of different devices run in parallel; the
// CRC of the reassembled data is checked against the device digest.
import Foundation
import VFIOBuffers
import VFIOCore
import VFIOStream

final class Reassembler: @unchecked Sendable {
    private struct Device {
        var next: UInt64 = 0
        var writing = false
        var crc: UInt32 = 0
        /// The device's total length as each channel's end-of-device record gave it.
        var ends: [UInt64?]
        var digestCRC: UInt32?
        var preCopy: Bool
        /// The offset of the newest progress record that said no initial bytes were left, to
        /// acknowledge once the data up to it was written.
        var ackDue: UInt64?
        var lastAcked: UInt64?
        var acks: UInt32 = 0
    }

    /// A switchover acknowledgement to send: `device` loaded its data up to `offset`, where the
    /// source said its initial data was complete; `epoch` counts this device's acknowledgements.
    struct Ack: Sendable, Equatable {
        var device: Int
        var epoch: UInt32
        var offset: UInt64
    }

    private let condition = NSCondition()
    private var devices: [Device]
    private let channelCount: Int
    /// What each waiting channel waits for: device and offset.
    private var waits: [Int: (device: Int, offset: UInt64)] = [:]
    private var finishedChannels = 0
    private var failure: VFIOError?
    /// The failure is a write refused because the load had already been aborted: another
    /// channel's failed write did that, and its error (the cause, the one that carries the
    /// devices' outcomes) replaces this one when it comes. What the interruption of the other
    /// channels makes them throw meanwhile does not.
    private var failureIsConsequence = false
    private let load: LoadSession
    /// Only for several channels with record checksums: one channel's digest cannot check the
    /// whole device's data, so this does.
    let checksData: Bool
    private let names: [String]
    private let sendAck: @Sendable (Ack) -> Void
    private let onFailure: @Sendable (VFIOError) -> Void
    /// Time channel readers waited for their turn.
    private(set) var waitedForTurn: Duration = .zero

    init(
        header: StreamHeader, channels: Int, load: LoadSession, checksData: Bool,
        sendAck: @escaping @Sendable (Ack) -> Void, onFailure: @escaping @Sendable (VFIOError) -> Void
    ) {
        devices = header.devices.map { Device(ends: Array(repeating: nil, count: channels), preCopy: $0.migrationFlags.contains(.preCopy)) }
        channelCount = channels
        self.load = load
        self.checksData = checksData
        self.names = load.drivers.map(\.name)
        self.sendAck = sendAck
        self.onFailure = onFailure
    }

    /// Writes `buffer[range]`, device `device`'s data at `offset`, once every byte before it
    /// was written; returns how long it waited for that. Throws the load's first failure,
    /// whoever met it.
    @discardableResult
    func deliver(device d: Int, offset: UInt64, buffer: IOBuffer, range: Range<Int>, channel: Int) throws(VFIOError) -> Duration {
        let clock = ContinuousClock()
        condition.lock()
        var waitStart: ContinuousClock.Instant?
        while failure == nil && blocked(d, offset) {
            if waitStart == nil { waitStart = clock.now }
            waits[channel] = (d, offset)
            if isStuck {
                failLocked(gapError())
            } else {
                condition.wait()
            }
            waits[channel] = nil
        }
        let waited = waitStart.map { clock.now - $0 } ?? .zero
        waitedForTurn += waited
        if let failure {
            condition.unlock()
            throw failure
        }
        guard devices[d].next == offset else {
            let error = VFIOError(
                .streamCorrupt,
                "channel \(channel) sent device \(d)'s data at offset \(offset), which other channels already covered (up to \(devices[d].next))",
                device: names[d])
            failLocked(error)
            condition.unlock()
            throw error
        }
        devices[d].writing = true
        condition.unlock()

        var written: VFIOError?
        do { try load.write(device: d, from: buffer, range: range) } catch { written = error }
        let crc = checksData && written == nil ? CRC32C.update(0, buffer, range) : 0

        condition.lock()
        devices[d].writing = false
        var ack: Ack?
        if let written {
            failLocked(written)
        } else {
            devices[d].next += UInt64(range.count)
            if checksData { devices[d].crc = CRC32C.combine(devices[d].crc, crc, lengthOfB: UInt64(range.count)) }
            ack = dueAck(d)
        }
        condition.broadcast()
        condition.unlock()
        if let written { throw written }
        if let ack { sendAck(ack) }
        return waited
    }

    private func blocked(_ d: Int, _ offset: UInt64) -> Bool { devices[d].next < offset || devices[d].writing }

    /// Every channel still reading waits, and not one of them may go on: nobody can deliver
    /// the bytes they wait for. (A woken waiter that has not run yet still counts as waiting,
    /// so each one's condition is looked at again here.)
    private var isStuck: Bool {
        !waits.isEmpty && waits.count + finishedChannels == channelCount
            && !devices.contains(where: \.writing) && waits.values.allSatisfy { blocked($0.device, $0.offset) }
    }

    /// A progress record (channel 0). Initial bytes 0 at `offset` means the device's initial
    /// data so far lies before `offset`: once it was written, that is acknowledged, again each
    /// time a later such record arrives with more data before it (the source cannot tell this
    /// side about a REINIT in the stream, so it waits for an acknowledgement at or beyond the
    /// offset where the new initial data was complete).
    func progress(device d: Int, offset: UInt64, initialBytes: UInt64) {
        condition.lock()
        guard devices[d].preCopy, initialBytes == 0 else {
            condition.unlock()
            return
        }
        if offset > (devices[d].lastAcked ?? 0) || devices[d].lastAcked == nil { devices[d].ackDue = max(devices[d].ackDue ?? 0, offset) }
        let ack = dueAck(d)
        condition.unlock()
        if let ack { sendAck(ack) }
    }

    private func dueAck(_ d: Int) -> Ack? {
        guard let due = devices[d].ackDue, devices[d].next >= due else { return nil }
        devices[d].ackDue = nil
        devices[d].lastAcked = due
        devices[d].acks += 1
        return Ack(device: d, epoch: devices[d].acks, offset: due)
    }

    /// Channel `channel`'s end-of-device record for device `device` (its total over all channels).
    func endOfDevice(_ d: Int, total: UInt64, channel: Int) throws(VFIOError) {
        condition.lock()
        defer { condition.unlock() }
        devices[d].ends[channel] = total
        if let other = devices[d].ends.enumerated().first(where: { $0.element != nil && $0.element != total }) {
            let error = VFIOError(
                .streamCorrupt,
                "the channels disagree on device \(d)'s length: \(total) bytes on channel \(channel), \(other.element!) on channel \(other.offset)",
                device: names[d])
            failLocked(error)
            throw error
        }
    }

    /// Channel 0's digest of device `device` (several channels: its data CRC is checked here).
    func digest(_ d: Int, dataCRC: UInt32) {
        condition.lock()
        devices[d].digestCRC = dataCRC
        condition.unlock()
    }

    /// A channel read its end of stream (it delivers no more).
    func channelFinished() {
        condition.lock()
        finishedChannels += 1
        if isStuck { failLocked(gapError()) }
        condition.broadcast()
        condition.unlock()
    }

    /// Fails the load: every waiting reader wakes and throws `error`; the first failure wins,
    /// unless it was only a consequence of another (a write into the load that one aborted).
    func fail(_ error: VFIOError) {
        condition.lock()
        failLocked(error)
        condition.unlock()
    }

    var firstFailure: VFIOError? {
        condition.lock()
        defer { condition.unlock() }
        return failure
    }

    private func failLocked(_ error: VFIOError) {
        let consequence = error.code == .invalidUse && load.phase == .aborted
        if failure != nil {
            if failureIsConsequence && !consequence && !error.outcomes.isEmpty {
                failure = error
                failureIsConsequence = false
            }
            return
        }
        failure = error
        failureIsConsequence = consequence
        condition.broadcast()
        // Interrupting the connections is a shutdown(2) per socket: it takes no lock, so it
        // may run under this one, and it runs before anyone could close them.
        onFailure(error)
    }

    private func gapError() -> VFIOError {
        let d = waits.values.map(\.device).min() ?? 0
        return VFIOError(
            .streamCorrupt,
            "device \(d)'s data has a gap at offset \(devices[d].next): no channel carries the next byte",
            device: names.indices.contains(d) ? names[d] : nil)
    }

    /// After every channel ended: each device's data arrived whole, the channels agreed on its
    /// length, and (several channels with checksums) its CRC equals the digest.
    func finalTotals() throws(VFIOError) -> [UInt64] {
        condition.lock()
        defer { condition.unlock() }
        if let failure { throw failure }
        var totals: [UInt64] = []
        for (d, device) in devices.enumerated() {
            guard let total = device.ends.first ?? nil, device.ends.allSatisfy({ $0 == total }) else {
                throw VFIOError(.streamCorrupt, "device \(d) was not ended on every channel", device: names[d])
            }
            guard device.next == total else {
                throw VFIOError(.streamCorrupt, "device \(d)'s data ends after \(device.next) of the \(total) bytes its end record declares", device: names[d])
            }
            if checksData {
                guard let digest = device.digestCRC else {
                    throw VFIOError(.streamCorrupt, "device \(d) has no digest on channel 0", device: names[d])
                }
                guard digest == device.crc else {
                    throw VFIOError(
                        .streamCorrupt,
                        "device \(d)'s reassembled data do not match its digest (CRC32C 0x\(String(device.crc, radix: 16)), digest 0x\(String(digest, radix: 16)))",
                        device: names[d])
                }
            }
            totals.append(total)
        }
        return totals
    }
}
