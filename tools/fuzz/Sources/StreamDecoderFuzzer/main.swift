// libFuzzer entry point: every input is a candidate stream. The decoder must refuse bad
// input with a StreamError and never crash, hang or allocate beyond its limits.
import CLibFuzzer
import Foundation
import FuzzSupport
import VFIOStream

// The default payload limit (the seeds declare 16 MiB, as real streams do) and a smaller
// header limit. The reader works on the input in place, so neither causes allocation.
// NO_RECORD_CHECKSUMS streams are accepted here so their paths are fuzzed too; that the
// default limits refuse them is checked separately.
private let limits = StreamLimits(maxPayload: 16 << 20, maxHeaderLength: 64 << 10, acceptsNoRecordChecksums: true)
private let refusingLimits = StreamLimits(maxPayload: 16 << 20, maxHeaderLength: 64 << 10)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzStreamDecoder(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    // SAFETY: libFuzzer passes `size` readable bytes at `data` for the duration of this call.
    let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    check(bytes)
    // Random mutations almost never keep a CRC valid, which would stop the fuzzer at the
    // checksum. So each input is also decoded with every CRC recomputed (the device digests'
    // too), which lets mutated lengths, types, tables, sequence numbers and offsets reach
    // the checks behind it.
    let resealed = resealed(bytes)
    if resealed != bytes { check(resealed) }
    return 0
}

func check(_ bytes: [UInt8]) {
    let whole = outcome(bytes, pagesInPieces: false)
    switch whole {
    case .success(let summary):
        // An accepted stream is complete, spans the input, and verifies the same twice.
        precondition(summary.complete, "verify returned an incomplete stream")
        precondition(summary.streamLength == UInt64(bytes.count), "accepted stream length differs from the input")
        precondition(outcome(bytes, pagesInPieces: false) == whole, "verify is not deterministic")
    case .failure(let error):
        // Every refusal names an offset inside (or at the end of) the input.
        precondition(error.offset <= UInt64(bytes.count), "error offset \(error.offset) beyond input of \(bytes.count) bytes")
        _ = error.description
    }
    // Pages records read the zero-copy way (table, then the data's CRC) give the same result,
    // at the same record; only the kind may differ where the whole path saw a bad CRC or a
    // cut (the split path checks the table first, as it must to place the data).
    let split = outcome(bytes, pagesInPieces: true)
    switch (whole, split) {
    case (.success(let a), .success(let b)):
        precondition(a == b, "split pages path summarises differently")
    case (.failure(let a), .failure(let b)):
        precondition(a.offset == b.offset, "split pages path fails at \(b.offset), whole path at \(a.offset)")
        switch a.kind {
        case .checksumMismatch, .truncated: break
        default: precondition(a.kind == b.kind, "split pages path: \(b.kind), whole path: \(a.kind)")
        }
    default:
        preconditionFailure("split pages path and whole path disagree on acceptance: \(whole) vs \(split)")
    }
    var decoder = StreamDecoder(limits: limits)
    if let header = bytes.withUnsafeBytes({ raw in try? decoder.decodeHeader(raw) }) {
        checkHeaderProperties(header)
        if !header.hasRecordChecksums {
            var strict = StreamDecoder(limits: refusingLimits)
            let refused = bytes.withUnsafeBytes { raw in Result { () throws(StreamError) in try strict.decodeHeader(raw) } }
            guard case .failure(let error) = refused, error.kind == .recordChecksumsNotAccepted else {
                preconditionFailure("default limits accepted a stream without record checksums")
            }
        }
    }
}

func outcome(_ bytes: [UInt8], pagesInPieces: Bool) -> Result<StreamSummary, StreamError> {
    Result { () throws(StreamError) in try StreamReader.verify(bytes, limits: limits, pagesInPieces: pagesInPieces) }
}

/// A decoded header re-encodes to itself, survives JSON, and each descriptor is compatible
/// with itself exactly when it has STOP_COPY (the one flag a target always needs).
func checkHeaderProperties(_ header: StreamHeader) {
    var again = StreamDecoder(limits: limits)
    do {
        let reencoded = try again.decodeHeader(try header.encoded())
        precondition(reencoded == header, "header does not survive re-encoding")
    } catch {
        preconditionFailure("decoded header cannot be re-encoded and read back: \(error)")
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
