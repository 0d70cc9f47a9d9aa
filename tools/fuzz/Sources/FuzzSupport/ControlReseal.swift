// Control connections for the receiver fuzzer: a source's side resealed (each message's CRC,
// and the stream header inside a proposal), the migration id a target assigned read back
// from what it wrote, and that id put into a data channel's header.
import VFIOStream

private func u16(_ bytes: [UInt8], _ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
private func u32(_ bytes: [UInt8], _ at: Int) -> Int { u16(bytes, at) | u16(bytes, at + 2) << 16 }
private func store(_ value: UInt32, into bytes: inout [UInt8], at: Int) {
    for index in 0..<4 { bytes[at + index] = UInt8(truncatingIfNeeded: value >> (8 * index)) }
}

/// The prefix left as it is, then every whole message with its CRC recomputed; a proposal's
/// embedded stream header gets its own CRC first.
public func resealedControl(_ input: [UInt8]) -> [UInt8] {
    var bytes = input
    var position = 16
    while position + 16 <= bytes.count {
        let length = u32(bytes, position + 4)
        let end = position + 16 + length
        guard length <= 1 << 20, end <= bytes.count else { break }
        let type = u16(bytes, position)
        if (type == 1 || type == 2) && length >= 40 {
            let headerLength = u32(bytes, position + 16 + 12)
            if headerLength >= 44 && headerLength <= length {
                let header = resealed(Array(bytes[(position + 16)..<end]))
                bytes.replaceSubrange((position + 16)..<end, with: header)
            }
        }
        store(0, into: &bytes, at: position + 8)
        store(CRC32C.checksum(bytes[position..<end]), into: &bytes, at: position + 8)
        position = end
    }
    return bytes
}

/// The migration id in the first `accept` a target wrote on its control connection.
public func assignedMigrationID(in written: [UInt8]) -> MigrationID? {
    guard written.count >= ControlFormat.prefixSize else { return nil }
    var decoder = ControlDecoder(role: .source)
    do {
        try decoder.decodePrefix(Array(written[0..<ControlFormat.prefixSize]))
        var position = ControlFormat.prefixSize
        while position + ControlFormat.messageHeaderSize <= written.count {
            let header = try decoder.decodeMessageHeader(Array(written[position..<(position + ControlFormat.messageHeaderSize)]))
            let end = position + ControlFormat.messageHeaderSize + header.payloadLength
            guard end <= written.count else { return nil }
            let message = try decoder.decodeMessage(header, payload: Array(written[(position + ControlFormat.messageHeaderSize)..<end]))
            if case .accept(let answer) = message { return answer.migrationID }
            position = end
        }
    } catch {
        return nil
    }
    return nil
}

/// `stream` with the value of its header's migrationID field (tag 6, 16 bytes) replaced by
/// `id`, found by walking the header's fields; unchanged when it has none.
public func settingMigrationID(_ stream: [UInt8], to id: MigrationID) -> [UInt8] {
    guard stream.count >= 44 else { return stream }
    var bytes = stream
    let headerLength = u32(bytes, 12)
    guard headerLength >= 44 && headerLength <= bytes.count else { return stream }
    var field = u32(bytes, 36)
    while field >= 40 && field + 8 <= headerLength - 4 {
        let length = u32(bytes, field + 4)
        guard length <= headerLength - 4 - field - 8 else { break }
        if u16(bytes, field) == 6 && length == MigrationID.byteCount {
            bytes.replaceSubrange((field + 8)..<(field + 8 + length), with: id.bytes)
        }
        field += 8 + length
    }
    return bytes
}
