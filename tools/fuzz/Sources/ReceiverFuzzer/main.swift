// libFuzzer entry point for the receiver: each input is a whole conversation a hostile source
// could hold with `ReceiveSession` (see ReceiverHarness.swift for the layout and the checks).
import CLibFuzzer
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzReceiver(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    // SAFETY: libFuzzer passes `size` readable bytes at `data` for the duration of this call.
    let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    ReceiverHarness.run(bytes)
    return 0
}

// `--make-seeds DIR` records the seed inputs instead of fuzzing (SeedRecorder.swift).
if CommandLine.arguments.count == 3 && CommandLine.arguments[1] == "--make-seeds" {
    do { try makeSeeds(in: CommandLine.arguments[2]) } catch { fatalError("making the seeds failed: \(error)") }
    exit(0)
}

var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
// SAFETY: argc/argv are the process's own arguments, valid for its lifetime.
exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzReceiver(data, size) })
