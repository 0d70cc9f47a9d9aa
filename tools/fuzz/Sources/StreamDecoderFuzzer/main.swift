// libFuzzer entry point: every input is a candidate stream. The decoder must refuse bad
// input with a StreamError and never crash, hang or allocate beyond its limits.
import CLibFuzzer
import Foundation
import VFIOStream

// The default payload limit (the seeds declare 16 MiB, as real streams do) and a smaller
// header limit. The reader works on the input in place, so neither causes allocation.
private let limits = StreamLimits(maxPayload: 16 << 20, maxHeaderLength: 64 << 10)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzStreamDecoder(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    // SAFETY: libFuzzer passes `size` readable bytes at `data` for the duration of this call.
    let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    check(bytes)
    // Random mutations almost never keep a CRC valid, which would stop the fuzzer at the
    // checksum. So each input is also decoded with every CRC recomputed, which lets
    // mutated lengths, types, sequence numbers and offsets reach the checks behind it.
    let resealed = resealed(bytes)
    if resealed != bytes { check(resealed) }
    return 0
}

func check(_ bytes: [UInt8]) {
    do {
        let summary = try StreamReader.verify(bytes, limits: limits)
        // An accepted stream is complete, spans the input, and verifies the same twice.
        precondition(summary.complete, "verify returned an incomplete stream")
        precondition(summary.streamLength == UInt64(bytes.count), "accepted stream length differs from the input")
        let again = try StreamReader.verify(bytes, limits: limits)
        precondition(again == summary, "verify is not deterministic")
    } catch {
        // Every refusal names an offset inside (or at the end of) the input.
        precondition(error.offset <= UInt64(bytes.count), "error offset \(error.offset) beyond input of \(bytes.count) bytes")
        _ = error.description
    }
    var decoder = StreamDecoder(limits: limits)
    if let header = bytes.withUnsafeBytes({ raw in try? decoder.decodeHeader(raw) }) {
        checkHeaderProperties(header)
    }
}

/// The input with the header CRC and every complete record's CRC recomputed, walking the
/// structure by its length fields (independently of the decoder).
func resealed(_ input: [UInt8]) -> [UInt8] {
    var bytes = input
    func u32(_ at: Int) -> Int {
        Int(bytes[at]) | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2]) << 16 | Int(bytes[at + 3]) << 24
    }
    func store(_ value: UInt32, _ at: Int) {
        for index in 0..<4 { bytes[at + index] = UInt8(truncatingIfNeeded: value >> (8 * index)) }
    }
    guard bytes.count >= 16 else { return bytes }
    let headerLength = u32(12)
    guard headerLength >= 44 && headerLength <= bytes.count else { return bytes }
    store(CRC32C.checksum(bytes[0..<(headerLength - 4)]), headerLength - 4)
    var position = headerLength
    while position + 32 <= bytes.count {
        let end = position + 32 + u32(position + 8)
        guard end <= bytes.count else { break }
        store(0, position + 12)
        store(CRC32C.checksum(bytes[position..<end]), position + 12)
        position = end
    }
    return bytes
}

/// A decoded header re-encodes to itself, survives JSON, and each descriptor is compatible
/// with itself exactly when it has STOP_COPY (the one flag a target always needs).
func checkHeaderProperties(_ header: StreamHeader) {
    var again = StreamDecoder(limits: limits)
    do {
        let reencoded = try again.decodeHeader(header.encoded())
        precondition(reencoded == header, "header does not survive re-encoding")
    } catch {
        preconditionFailure("re-encoded header refused: \(error)")
    }
    do {
        let json = try JSONEncoder().encode(header)
        let decoded = try JSONDecoder().decode(StreamHeader.self, from: json)
        precondition(decoded == header, "header does not survive JSON")
    } catch {
        preconditionFailure("JSON round trip failed: \(error)")
    }
    for device in header.devices {
        let selfCompatible = compatibility(of: device, with: device).isEmpty
        precondition(selfCompatible == device.migrationFlags.contains(.stopCopy), "self-compatibility is wrong for \(device)")
    }
}

// SwiftPM's executable `main` is this file, so hand control to libFuzzer's driver; it
// parses the usual libFuzzer flags from the command line.
var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
// SAFETY: argc/argv are the process's own arguments, valid for its lifetime.
exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzStreamDecoder(data, size) })
