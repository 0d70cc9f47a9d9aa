// What every fuzz target here needs to get past the checksums: random mutations almost never
// keep a CRC valid, so inputs are resealed (every CRC recomputed by walking the structure by
// its length fields, independently of the decoders) before they are fed in.
import VFIOStream

/// The input with the header CRC, every complete record's CRC and every device digest
/// recomputed, walking the structure by its length fields (independently of the decoder).
/// A digest covers the stream's own deviceState payloads, or `digests[device]` when given
/// (a parallel channel's digest covers the device's data over all channels).
public func resealed(_ input: [UInt8], digests: [Int: UInt32]? = nil) -> [UInt8] {
    var bytes = input
    func u16(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
    func u32(_ at: Int) -> Int { u16(at) | u16(at + 2) << 16 }
    func store(_ value: UInt32, _ at: Int) {
        for index in 0..<4 { bytes[at + index] = UInt8(truncatingIfNeeded: value >> (8 * index)) }
    }
    guard bytes.count >= 40 else { return bytes }
    let headerLength = u32(12)
    guard headerLength >= 44 && headerLength <= bytes.count else { return bytes }
    let checksums = bytes[20] & 1 == 0  // NO_RECORD_CHECKSUMS clear

    // Descriptor CRCs: tag 5 values in order, from fieldsOffset to the header CRC.
    var descriptorCRCs: [UInt32] = []
    var field = u32(36)
    while field >= 40 && field + 8 <= headerLength - 4 {
        let length = u32(field + 4)
        guard length <= headerLength - 4 - field - 8 else { break }
        if u16(field) == 5 { descriptorCRCs.append(CRC32C.checksum(bytes[(field + 8)..<(field + 8 + length)])) }
        field += 8 + length
    }
    store(CRC32C.checksum(bytes[0..<(headerLength - 4)]), headerLength - 4)

    var dataCRCs = [UInt32](repeating: 0, count: descriptorCRCs.count)
    var position = headerLength
    while position + 32 <= bytes.count {
        let payload = position + 32
        let end = payload + u32(position + 8)
        guard end <= bytes.count else { break }
        let type = u16(position), device = u16(position + 4)
        if type == 1 && device < dataCRCs.count {
            // SAFETY: the payload range lies inside `bytes` (end <= count, checked above).
            dataCRCs[device] = bytes[payload..<end].withUnsafeBytes { CRC32C.update(dataCRCs[device], $0) }
        }
        if type == 6 && device < dataCRCs.count && end - payload == 8 {
            store(descriptorCRCs[device], payload)
            store(checksums ? digests.map { $0[device] ?? 0 } ?? dataCRCs[device] : 0, payload + 4)
        }
        store(0, position + 12)
        if checksums { store(CRC32C.checksum(bytes[position..<end]), position + 12) }
        position = end
    }
    return bytes
}

/// Per device, the CRC32C of its deviceState payloads over all `streams` in offset order: what
/// the digest of each parallel channel must hold once the target reassembled the device.
public func reassembledDigests(_ streams: [[UInt8]]) -> [Int: UInt32] {
    var pieces: [(device: Int, offset: UInt64, stream: Int, payload: Range<Int>)] = []
    for (index, bytes) in streams.enumerated() {
        func u16(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
        func u32(_ at: Int) -> Int { u16(at) | u16(at + 2) << 16 }
        guard bytes.count >= 40 else { continue }
        let headerLength = u32(12)
        guard headerLength >= 44 && headerLength <= bytes.count else { continue }
        var position = headerLength
        while position + 32 <= bytes.count {
            let payload = position + 32
            let end = payload + u32(position + 8)
            guard end <= bytes.count else { break }
            if u16(position) == 1 {
                let offset = UInt64(u32(position + 24)) | UInt64(u32(position + 28)) << 32
                pieces.append((u16(position + 4), offset, index, payload..<end))
            }
            position = end
        }
    }
    var digests: [Int: UInt32] = [:]
    for piece in pieces.sorted(by: { ($0.device, $0.offset) < ($1.device, $1.offset) }) {
        // SAFETY: the payload range lies inside its stream (end <= count, checked above).
        digests[piece.device] = streams[piece.stream][piece.payload].withUnsafeBytes { CRC32C.update(digests[piece.device] ?? 0, $0) }
    }
    return digests
}
