// The mock vendor's opaque device-state stream, as the mock "driver" writes it on a save fd and
// checks it on a resume fd. It is private to the mock (like any vendor format): the engine
// must carry it byte for byte without understanding it.
//
// Everything is little-endian 64-bit words, so every record starts 8-byte aligned:
//   header  (8 words): magic, format version | content kind << 32, compat id, state size,
//                      block size, content seed, session salt, check word
//                      (a REINIT repeats the header mid-stream; the blocks that follow it
//                      describe the state it announces)
//   block   (4 words + payload): kind | payload length << 32, block index, version, check word;
//                      then the block's bytes, zero-padded to a whole word
//   end     (4 words): kind, block records sent, state digest, check word
// A target refuses a header whose identity differs from its own (the write fails with EINVAL,
// as vendor drivers refuse foreign streams on write), and refuses at RESUMING → STOP a stream
// that is truncated, altered, misses blocks or ends with a digest its state does not match.
import SystemPackage

enum MockStateFormat {
    static let magic: UInt64 = 0x3153_5346_4B43_4F4D // "MOCKFSS1" as little-endian bytes
    static let versionMajor: UInt64 = 1
    static let versionMinor: UInt64 = 0
    static let headerWords = 8
    static let headerBytes = headerWords * 8
    static let recordHeaderWords = 4
    static let recordHeaderBytes = recordHeaderWords * 8
    static let kindBlock: UInt64 = 1
    static let kindEnd: UInt64 = 2

    static func paddedLength(_ bytes: Int) -> Int { (bytes + 7) & ~7 }

    /// Identity a target compares a stream against.
    struct Identity: Equatable {
        var compat: UInt64
        var stateSize: UInt64
        var blockSize: Int
        /// Slices of a pool (`source=fast`) rather than generated words.
        var pooled = false

        var contentKind: UInt64 { pooled ? 1 : 0 }
    }

    static func header(identity: Identity, seed: UInt64, salt: UInt64) -> [UInt64] {
        var words: [UInt64] = [
            magic, versionMajor | versionMinor << 16 | identity.contentKind << 32, identity.compat, identity.stateSize,
            UInt64(identity.blockSize), seed, salt,
        ]
        words.append(check(words))
        return words
    }

    static func recordHeader(kind: UInt64, payloadLength: Int, index: UInt64, value: UInt64, salt: UInt64) -> (UInt64, UInt64, UInt64, UInt64) {
        let w0 = kind | UInt64(payloadLength) << 32
        return (w0, index, value, mixAll(salt, w0, index, value))
    }

    static func check(_ words: [UInt64]) -> UInt64 {
        var h: UInt64 = 0x243F_6A88_85A3_08D3
        for w in words { h = mix64(h ^ w &+ mixGamma) }
        return h
    }

    /// What a target learns from a valid header.
    struct Header {
        var seed: UInt64
        var salt: UInt64
    }

    enum HeaderProblem: Error, CustomStringConvertible {
        case badMagic, unsupportedVersion(UInt64), corrupt, foreignDevice, sizeMismatch(UInt64), blockSizeMismatch(UInt64)
        case contentMismatch(pooled: Bool)
        var description: String {
            switch self {
            case .badMagic: "not a mock device-state stream (bad magic)"
            case .unsupportedVersion(let v): "unsupported stream format version \(v & 0xFFFF).\(v >> 16 & 0xFFFF)"
            case .corrupt: "stream header check word mismatch"
            case .foreignDevice: "stream comes from an incompatible device (compat id differs)"
            case .sizeMismatch(let s): "stream carries \(s) bytes of state; this device has a different state size"
            case .blockSizeMismatch(let b): "stream uses \(b)-byte blocks; this device uses a different block size"
            case .contentMismatch(let pooled):
                pooled ? "stream comes from a source=fast device; this device generates its state"
                    : "stream comes from a device that generates its state; this device is source=fast"
            }
        }
    }

    static func parseHeader(_ words: [UInt64], expecting identity: Identity) -> Result<Header, HeaderProblem> {
        precondition(words.count == headerWords)
        guard words[0] == magic else { return .failure(.badMagic) }
        guard words[1] & 0xFFFF == versionMajor else { return .failure(.unsupportedVersion(words[1])) }
        guard check(Array(words[0..<7])) == words[7] else { return .failure(.corrupt) }
        guard words[2] == identity.compat else { return .failure(.foreignDevice) }
        guard words[3] == identity.stateSize else { return .failure(.sizeMismatch(words[3])) }
        guard words[4] == UInt64(identity.blockSize) else { return .failure(.blockSizeMismatch(words[4])) }
        guard words[1] >> 32 == identity.contentKind else { return .failure(.contentMismatch(pooled: words[1] >> 32 == 1)) }
        return .success(Header(seed: words[5], salt: words[6]))
    }

    /// The little-endian bytes of `words`.
    static func bytes(of words: [UInt64]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: words.count * 8)
        for (i, w) in words.enumerated() {
            for j in 0..<8 { out[i * 8 + j] = UInt8(truncatingIfNeeded: w >> (8 * UInt64(j))) }
        }
        return out
    }

    /// Little-endian words of a byte array whose length is a multiple of 8.
    static func words(of bytes: [UInt8]) -> [UInt64] {
        precondition(bytes.count % 8 == 0)
        return stride(from: 0, to: bytes.count, by: 8).map { i in
            var w: UInt64 = 0
            for j in 0..<8 { w |= UInt64(bytes[i + j]) << (8 * UInt64(j)) }
            return w
        }
    }
}
