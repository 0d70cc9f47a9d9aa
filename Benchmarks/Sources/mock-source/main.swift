// vfio-bench-mock-source: how fast the emulator's data fds are next to a plain read of a memfd
// holding the same bytes, measured side by side in one process. Build in release:
//
//     cd Benchmarks && swift run -c release vfio-bench-mock-source [--state SIZE] [--reps N]
import Foundation

var state = "256MiB"
var repetitions = 9
var arguments = CommandLine.arguments.dropFirst()
while let argument = arguments.popFirst() {
    switch argument {
    case "--state": state = arguments.popFirst() ?? state
    case "--reps": repetitions = arguments.popFirst().flatMap(Int.init) ?? repetitions
    default:
        FileHandle.standardError.write(Data("usage: vfio-bench-mock-source [--state SIZE] [--reps N]\n".utf8))
        exit(2)
    }
}
let load = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
print("vfio-bench-mock-source  \(ISO8601DateFormatter().string(from: Date()))  \(ProcessInfo.processInfo.activeProcessorCount) CPUs, load average \(load)")
do {
    _ = try measureSources(state: state, repetitions: repetitions)
} catch {
    FileHandle.standardError.write(Data("mock source comparison failed: \(error)\n".utf8))
    exit(1)
}
