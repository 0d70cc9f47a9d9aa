// A device split over several channels: each channel's writer notes the CRC of every chunk it
// sealed, and channel 0's writer, sealing the device's digest, waits until every chunk of the
// device is noted and joins their CRCs in offset order. Other writers never wait on channel 0,
// so the wait always ends.
import Foundation
import VFIOCore
import VFIOStream

final class DeviceLedger: @unchecked Sendable {
    private struct Piece { var offset: UInt64; var length: UInt64; var crc: UInt32 }
    private let condition = NSCondition()
    private var pieces: [[Piece]]
    private var noted: [UInt64]
    private var totals: [UInt64?]
    private var failure: VFIOError?

    init(deviceCount: Int) {
        pieces = Array(repeating: [], count: deviceCount)
        noted = Array(repeating: 0, count: deviceCount)
        totals = Array(repeating: nil, count: deviceCount)
    }

    func note(device: Int, offset: UInt64, length: Int, crc: UInt32) {
        condition.lock()
        pieces[device].append(Piece(offset: offset, length: UInt64(length), crc: crc))
        noted[device] += UInt64(length)
        condition.broadcast()
        condition.unlock()
    }

    /// The device's data ends after `total` bytes (said by the producer at its end).
    func end(device: Int, total: UInt64) {
        condition.lock()
        totals[device] = total
        condition.broadcast()
        condition.unlock()
    }

    /// The CRC32C of the device's whole data stream, once every chunk was noted; throws the
    /// pipeline's error when it ended first.
    func dataCRC(of device: Int) throws(VFIOError) -> (crc: UInt32, total: UInt64) {
        condition.lock()
        defer { condition.unlock() }
        while failure == nil && (totals[device] == nil || noted[device] < totals[device]!) { condition.wait() }
        if let failure { throw failure }
        var crc: UInt32 = 0
        var next: UInt64 = 0
        for piece in pieces[device].sorted(by: { $0.offset < $1.offset }) {
            precondition(piece.offset == next, "device \(device)'s chunks do not cover its stream")
            crc = CRC32C.combine(crc, piece.crc, lengthOfB: piece.length)
            next += piece.length
        }
        return (crc, totals[device]!)
    }

    func close(_ error: VFIOError) {
        condition.lock()
        if failure == nil { failure = error }
        condition.broadcast()
        condition.unlock()
    }
}
