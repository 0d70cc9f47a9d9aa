// The emulator's own data fds. A `source=fast` device's save fd read to its end,
// the same device with the default generated source (producer thread and pipe), and a plain
// read of a memfd holding exactly the bytes the fast device serves, all in 1 MiB reads into
// the same buffer, interleaved in every repetition; then the same streams loaded into a
// target of each kind (every byte checked). What an end-to-end ratio against the mock can
// measure is bounded by how close the device comes to the memfd.
import Foundation
import VFIOBuffers

enum SourceVariant: String, CaseIterable {
    case fast = "mock save fd, source=fast"
    case generated = "mock save fd, generated (pipe)"
    case memfd = "plain read of a memfd"
    case fastLoad = "mock resume fd, source=fast"
    case generatedLoad = "mock resume fd, generated (pipe)"
}

struct SourceResult {
    var median: [SourceVariant: Double]
    var fastOverMemfd: Double
    var generatedOverMemfd: Double
    var fastOverGenerated: Double
    var fastLoadOverMemfd: Double
    var fastLoadOverGeneratedLoad: Double
}

func measureSources(state: String, repetitions: Int) throws -> SourceResult {
    let chunk = 1 << 20
    let buffer = IOBuffer(capacity: chunk)
    let fast = try MockDataFdDevice(spec: "mock:fast?state=\(state)&flags=stop-copy&source=fast")
    let generated = try MockDataFdDevice(spec: "mock:gen?state=\(state)&flags=stop-copy")
    let fastTarget = try MockDataFdDevice(spec: "mock:fastT?state=\(state)&flags=stop-copy&source=fast")
    let generatedTarget = try MockDataFdDevice(spec: "mock:genT?state=\(state)&flags=stop-copy")
    let file = MemoryFile(), generatedFile = MemoryFile()
    _ = try fast.readStopCopy(into: buffer, chunk: chunk) { file.append($0, $1) } // the same bytes
    _ = try generated.readStopCopy(into: buffer, chunk: chunk) { generatedFile.append($0, $1) }
    _ = file.readAll(into: buffer, chunk: chunk) // warm-up
    _ = try fastTarget.load(file, buffer: buffer, chunk: chunk)
    _ = try generatedTarget.load(generatedFile, buffer: buffer, chunk: chunk)

    var rates: [SourceVariant: [Double]] = [:]
    var ratios: (fastMemfd: [Double], generatedMemfd: [Double], fastGenerated: [Double], fastLoadMemfd: [Double], loads: [Double]) =
        ([], [], [], [], [])
    var bytes = 0
    for repetition in 0..<repetitions {
        var this: [SourceVariant: Measurement] = [:]
        for variant in order(SourceVariant.allCases, repetition: repetition) {
            switch variant {
            case .fast: this[variant] = try fast.readStopCopy(into: buffer, chunk: chunk)
            case .generated: this[variant] = try generated.readStopCopy(into: buffer, chunk: chunk)
            case .memfd: this[variant] = file.readAll(into: buffer, chunk: chunk)
            case .fastLoad: this[variant] = try fastTarget.load(file, buffer: buffer, chunk: chunk)
            case .generatedLoad: this[variant] = try generatedTarget.load(generatedFile, buffer: buffer, chunk: chunk)
            }
        }
        precondition(this.values.allSatisfy { $0.bytes == file.length }, "the variants moved different lengths")
        bytes = file.length
        for (variant, m) in this { rates[variant, default: []].append(m.bytesPerSecond) }
        ratios.fastMemfd.append(this[.fast]!.bytesPerSecond / this[.memfd]!.bytesPerSecond)
        ratios.generatedMemfd.append(this[.generated]!.bytesPerSecond / this[.memfd]!.bytesPerSecond)
        ratios.fastGenerated.append(this[.fast]!.bytesPerSecond / this[.generated]!.bytesPerSecond)
        ratios.fastLoadMemfd.append(this[.fastLoad]!.bytesPerSecond / this[.memfd]!.bytesPerSecond)
        ratios.loads.append(this[.fastLoad]!.bytesPerSecond / this[.generatedLoad]!.bytesPerSecond)
    }
    let result = SourceResult(
        median: rates.mapValues(median), fastOverMemfd: median(ratios.fastMemfd),
        generatedOverMemfd: median(ratios.generatedMemfd), fastOverGenerated: median(ratios.fastGenerated),
        fastLoadOverMemfd: median(ratios.fastLoadMemfd), fastLoadOverGeneratedLoad: median(ratios.loads))
    print("Mock save fd read to its end, \(state) device [stop-copy], 1 MiB reads (\(bytes >> 20) MiB per read-through, \(repetitions) repetitions)")
    for variant in SourceVariant.allCases {
        let values = rates[variant]!
        print("  \(variant.rawValue.rightPad(32)) median \(format(result.median[variant]! / 1e9)) GB/s"
              + "   (min \(format(values.min()! / 1e9)), max \(format(values.max()! / 1e9)))")
    }
    print("  fast / memfd: \(format(result.fastOverMemfd, 3))   generated / memfd: \(format(result.generatedOverMemfd, 3))"
          + "   fast / generated: \(format(result.fastOverGenerated, 2)) (medians of per-repetition ratios)")
    print("  loads (every byte checked): fast / memfd read: \(format(result.fastLoadOverMemfd, 3))"
          + "   fast / generated: \(format(result.fastLoadOverGeneratedLoad, 2))")
    let (descriptors, threads) = fast.emulatorResources
    print("  emulator after the runs: \(descriptors) descriptors (container, group, device), \(threads) threads")
    print("")
    return result
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    let mid = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/// Rotates the variants by the repetition number (reversed every other round), so each runs
/// first, last and in between about equally often on a machine whose load drifts.
func order<T>(_ items: [T], repetition: Int) -> [T] {
    let shift = repetition % items.count
    let rotated = Array(items[shift...] + items[..<shift])
    return (repetition / items.count) % 2 == 1 ? rotated.reversed() : rotated
}

func format(_ value: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", value) }

extension String {
    func rightPad(_ width: Int) -> String { padding(toLength: max(width, count), withPad: " ", startingAt: 0) }
}
