// The save session of a `source=fast` device: no producer thread and no pipe. The caller's
// data fd is a reserved descriptor, and each read copies the next bytes of the stream (in
// BlockSchedule's order) straight from the device's pool into the caller's buffer. Everything
// the caller can observe is the piped session's: same stream layout, same PRE_COPY end, same
// EOF, same faults (applied around `serve` by the device).
import Foundation
import SystemPackage
import VFIOSyscalls

final class FastSaveSession: MockSaveSession, @unchecked Sendable {
    /// One contiguous part of a scheduled piece.
    private enum Segment {
        case bytes([UInt8])
        case pool(StatePool, start: Int, count: Int)
        case zeros(Int)

        var count: Int {
            switch self {
            case .bytes(let b): b.count
            case .pool(_, _, let n): n
            case .zeros(let n): n
            }
        }
    }

    private let identity: MockStateFormat.Identity
    private var schedule: BlockSchedule
    /// The piece being served and how far into it the caller has read.
    private var segments: [Segment] = []
    private var segmentIndex = 0
    private var segmentOffset = 0

    /// Called with the lock held; the caller's fd is a fresh reserved descriptor.
    init(device: MockDevice, lock: NSCondition, stopCopy: Bool, salt: UInt64) throws(Errno) {
        precondition(device.image.isPooled, "a fast save session needs pooled content")
        identity = device.streamIdentity
        schedule = BlockSchedule(image: device.image)
        let fd = try device.ledger.reserve()
        super.init(device: device, lock: lock, userFD: fd, stopCopy: stopCopy, salt: salt)
    }

    override var servesDirectly: Bool { true }

    override var pendingBytes: UInt64 {
        schedule.pendingBytes(consumed: consumedBytes, image: device.image, stopCopy: stopCopy)
    }

    override var precopyInfo: (initial: UInt64, dirty: UInt64) {
        schedule.precopyInfo(consumed: consumedBytes, image: device.image, stopCopy: stopCopy)
    }

    override func blockChanged(_ block: Int) {
        guard !dead, !stopCopy else { return }
        _ = schedule.blockChanged(block, image: device.image)
    }

    override func restartInitialData() -> Bool {
        guard !dead, !stopCopy else { return false }
        schedule.restart(image: device.image)
        return true
    }

    override func serve(into region: UserRegion) throws(Errno) -> Int {
        let memory = UserMemory([region])
        let image = device.image
        var served = 0
        while served < region.count {
            if segmentIndex == segments.count {
                guard let piece = schedule.takeOne(image: image, stopCopy: stopCopy) else { break }
                segments = materialize(piece, image: image)
                segmentIndex = 0
                segmentOffset = 0
            }
            let segment = segments[segmentIndex]
            let n = min(segment.count - segmentOffset, region.count - served)
            let address = region.address + UInt(served)
            do {
                switch segment {
                case .bytes(let bytes):
                    try memory.copyOut(bytes[segmentOffset..<segmentOffset + n], to: address)
                case .pool(let pool, let start, _):
                    // The piece's own pool: a REINIT since it was scheduled may have replaced the device's.
                    let from = start + segmentOffset
                    try memory.copyOut(pool.bytes[from..<from + n], to: address)
                case .zeros:
                    try memory.copyOut(repeatElement(UInt8(0), count: n), to: address)
                }
            } catch {
                // Like copy_to_user in a read: a partial read returns what arrived.
                if served > 0 { return served }
                throw error
            }
            served += n
            segmentOffset += n
            if segmentOffset == segment.count {
                segmentIndex += 1
                segmentOffset = 0
            }
        }
        return served
    }

    private func materialize(_ piece: BlockSchedule.Piece, image: DeviceStateImage) -> [Segment] {
        switch piece {
        case .header(let seed):
            return [.bytes(MockStateFormat.bytes(of: MockStateFormat.header(identity: identity, seed: seed, salt: salt)))]
        case .block(let index, let version, let key):
            let length = image.blockLength(index)
            let h = MockStateFormat.recordHeader(kind: MockStateFormat.kindBlock, payloadLength: length, index: UInt64(index), value: version, salt: salt)
            var parts: [Segment] = [.bytes(MockStateFormat.bytes(of: [h.0, h.1, h.2, h.3]))]
            if length > 0, let pool = image.pool { parts.append(.pool(pool, start: pool.offset(key: key), count: length)) }
            let pad = MockStateFormat.paddedLength(length) - length
            if pad > 0 { parts.append(.zeros(pad)) }
            return parts
        case .end(let records, let digest):
            let h = MockStateFormat.recordHeader(kind: MockStateFormat.kindEnd, payloadLength: 0, index: records, value: digest, salt: salt)
            return [.bytes(MockStateFormat.bytes(of: [h.0, h.1, h.2, h.3]))]
        }
    }
}
