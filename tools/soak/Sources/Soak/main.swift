// Runs the soak: `Soak [--runs N] [--seed S] [--no-tls]`. Prints one line per violation (with
// the run's parameters and seed, to repeat it), then the figures: runs, outcomes by fault,
// descriptors, threads and resident memory over the runs, wall time. Exit 1 on a violation.
import Foundation

var runs = 1000
var seed = UInt64(Date().timeIntervalSince1970 * 1000)
var useTLS = true
var arguments = CommandLine.arguments.dropFirst()
while let argument = arguments.popFirst() {
    switch argument {
    case "--runs": runs = Int(arguments.popFirst() ?? "") ?? runs
    case "--seed": seed = UInt64(arguments.popFirst() ?? "") ?? seed
    case "--no-tls": useTLS = false
    default:
        print("usage: Soak [--runs N] [--seed S] [--no-tls]")
        exit(2)
    }
}

let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
let soak = try Soak(credentials: useTLS ? root + "/Tests/VFIOSyscallsTests/Fixtures/tls" : nil)
var random = SplitMix(seed: seed)
let clock = ContinuousClock()
let began = clock.now
var samples: [(run: Int, resources: Resources)] = [(0, Resources.now())]
var byFault: [String: [String: Int]] = [:]
var violations = 0
var succeeded = 0
let sampleAt: Set<Int> = [1, 10, 100, 250, 500, 750, runs]

for number in 1...runs {
    let outcome = soak.run(number, using: &random)
    byFault[outcome.fault.rawValue, default: [:]][outcome.kind, default: 0] += 1
    if outcome.succeeded { succeeded += 1 }
    for violation in outcome.violations {
        violations += 1
        print("VIOLATION (seed \(seed)) \(outcome.parameters): \(violation)")
    }
    if sampleAt.contains(number) { samples.append((number, Resources.now())) }
    if number % 100 == 0 { print("\(number) runs, \(violations) violation(s), \(Resources.now())") }
}
let wall = (clock.now - began) / .seconds(1)

print("\nsoak: \(runs) runs in \(String(format: "%.1f", wall)) s (\(String(format: "%.0f", wall / Double(runs) * 1000)) ms per run), seed \(seed), TLS on about a quarter: \(useTLS)")
print("migrations that completed: \(succeeded); failed as their fault demands: \(runs - succeeded); violations: \(violations)")
for fault in byFault.keys.sorted() {
    let kinds = byFault[fault]!.sorted { $0.key < $1.key }.map { "\($0.value) × \($0.key)" }.joined(separator: "; ")
    print("  \(fault): \(kinds)")
}
print("resources (after run N):")
for sample in samples { print("  \(sample.run): \(sample.resources)") }
// After the warm-up (run 10: lazily made caches, the TLS contexts' first handshakes), nothing may grow.
if let warm = samples.first(where: { $0.run == 10 })?.resources, let last = samples.last?.resources, runs >= 10 {
    var growth: [String] = []
    if last.descriptors > warm.descriptors { growth.append("descriptors \(warm.descriptors) -> \(last.descriptors)") }
    if last.threads > warm.threads { growth.append("threads \(warm.threads) -> \(last.threads)") }
    if last.residentKiB - warm.residentKiB > 64 << 10 { growth.append("resident memory \(warm.residentKiB >> 10) -> \(last.residentKiB >> 10) MiB") }
    let resident = "resident memory \(warm.residentKiB >> 10) -> \(last.residentKiB >> 10) MiB (allowed: +64 MiB, allocator arenas)"
    print(growth.isEmpty ? "no growth of descriptors or threads from run 10 to run \(runs); \(resident)" : "GROWTH: \(growth.joined(separator: ", "))")
    if !growth.isEmpty { violations += 1 }
}
exit(violations == 0 ? 0 : 1)
