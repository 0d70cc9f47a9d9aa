// Section 3: peak resident memory of a framed save against the device's state size. The
// peak is reset before each save (clear_refs), so each reading belongs to that save alone.
import BenchSupport

struct MemoryResult {
    /// Median peak RSS (bytes) per state size.
    var peak: [String: Double]
    /// Median growth of RSS during the save (peak − RSS before it), per state size.
    var growth: [String: Double]
}

func measureMemory(sizes: [String], repetitions: Int) throws -> MemoryResult {
    var growth: [String: [Double]] = [:]
    var peak: [String: [Double]] = [:]
    for repetition in 0..<repetitions {
        for state in order(sizes, repetition: repetition) {
            let device = try MockSaveBench(name: "mem\(state)", state: state, preCopy: false)
            let before = ResidentMemory.current
            guard ResidentMemory.resetPeak() else { fail("peak memory: /proc/self/clear_refs refused; cannot measure per save") }
            _ = try device.save(into: .framed)
            let high = ResidentMemory.peak
            growth[state, default: []].append(Double(high - before))
            peak[state, default: []].append(Double(high))
        }
    }
    let result = MemoryResult(peak: peak.mapValues(median), growth: growth.mapValues(median))
    let mib = Double(1 << 20)
    print("Peak resident memory of a framed save to /dev/null [stop-copy] (\(repetitions) runs per size, alternating)")
    for state in sizes {
        print(
            "  \(state.rightPad(6)) peak RSS \(format(result.peak[state]! / mib, 1)) MiB,"
                + " growth during the save \(format(result.growth[state]! / mib, 1)) MiB")
    }
    return result
}
