// libFuzzer entry point: every input is a candidate stream. The decoder must refuse bad
// input with a StreamError and never crash, hang or allocate beyond its limits.
import CLibFuzzer
#if canImport(Glibc)
import Glibc
#endif
import VFIOStream

// Small limits so the fuzzer explores the limit checks instead of allocating.
private let limits = StreamLimits(maxPayload: 64 << 10, maxHeaderLength: 64 << 10)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzStreamDecoder(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    // SAFETY: libFuzzer passes `size` readable bytes at `data` for the duration of this call.
    let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    do {
        let summary = try StreamReader.verify(bytes, limits: limits)
        // A stream the decoder accepts must re-verify identically and satisfy its own totals.
        precondition(summary.complete, "verify returned an incomplete stream")
        precondition(summary.streamLength == UInt64(size), "accepted stream length differs from the input")
        let again = try StreamReader.verify(bytes, limits: limits)
        precondition(again == summary, "verify is not deterministic")
    } catch {
        // Every refusal must name an offset inside (or at the end of) the input.
        precondition(error.offset <= UInt64(size), "error offset \(error.offset) beyond input of \(size) bytes")
        _ = error.description
    }
    // The header decoder alone, on the same bytes, must agree with itself too.
    var decoder = StreamDecoder(limits: limits)
    _ = bytes.withUnsafeBytes { raw in try? decoder.decodeHeader(raw) }
    return 0
}

// SwiftPM's executable `main` is this file, so hand control to libFuzzer's driver; it
// parses the usual libFuzzer flags from the command line.
var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
// SAFETY: argc/argv are the process's own arguments, valid for its lifetime.
exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzStreamDecoder(data, size) })
