// Section 2: whole saves of an emulated device through SaveSession, into the stream writer
// (framed) and, as baselines, into a raw copy of the same bytes through the same sink and
// into nothing (the device reads alone). Same device, same reads, same buffer layout, same
// write call; only the framing differs.
import BenchSupport

struct SaveResult {
    var flags: String
    var sinkName: String
    /// Median bytes per second per target.
    var median: [SaveTarget: Double]
    /// Median over repetitions of framed / raw copy throughput measured in that repetition.
    var framedOverRaw: Double
    /// The same for the pipelined data path (reader and writer threads, pool buffers).
    var pipelinedOverRaw: Double
}

func measureSave(preCopy: Bool, state: String, sinkPath: String, sinkName: String, repetitions: Int) throws -> SaveResult {
    let flags = preCopy ? "stop-copy,pre-copy" : "stop-copy"
    let device = try MockSaveBench(name: preCopy ? "pre" : "stop", state: state, preCopy: preCopy)
    let targets: [SaveTarget] = [.framed, .pipelined, .rawCopy, .discard]
    for target in targets { _ = try device.save(into: target, path: sinkPath) } // warm-up
    var rates: [SaveTarget: [Double]] = [:]
    var framedOverRaw: [Double] = []
    var pipelinedOverRaw: [Double] = []
    var extraOverDeviceRead: [Double] = []
    var bytes: UInt64 = 0
    for repetition in 0..<repetitions {
        var this: [SaveTarget: SaveMeasurement] = [:]
        for target in order(targets, repetition: repetition) {
            this[target] = try device.save(into: target, path: sinkPath)
        }
        for (target, m) in this { rates[target, default: []].append(m.bytesPerSecond) }
        framedOverRaw.append(this[.framed]!.bytesPerSecond / this[.rawCopy]!.bytesPerSecond)
        pipelinedOverRaw.append(this[.pipelined]!.bytesPerSecond / this[.rawCopy]!.bytesPerSecond)
        extraOverDeviceRead.append(
            (this[.framed]!.secondsPerMiB - this[.rawCopy]!.secondsPerMiB) / this[.discard]!.secondsPerMiB)
        bytes = this[.framed]!.stateBytes
    }
    let result = SaveResult(
        flags: flags, sinkName: sinkName, median: rates.mapValues(median), framedOverRaw: median(framedOverRaw),
        pipelinedOverRaw: median(pipelinedOverRaw))
    print("Save of a \(state) mock device [\(flags)], 1 MiB chunks, sink \(sinkName) (\(bytes >> 20) MiB of state per save, \(repetitions) repetitions)")
    let names: [SaveTarget: String] = [
        .framed: "framed (stream writer)", .pipelined: "framed, pipelined", .rawCopy: "raw copy (no framing)",
        .discard: "device reads only",
    ]
    for target in targets {
        let values = rates[target]!
        print(
            "  \(names[target]!.rightPad(24)) median \(format(result.median[target]! / 1e9)) GB/s"
                + "   (min \(format(values.min()! / 1e9)), max \(format(values.max()! / 1e9)))")
    }
    print("  framed / raw copy: \(format(result.framedOverRaw, 3)), pipelined / raw copy: \(format(result.pipelinedOverRaw, 3)) (medians of the per-repetition ratios)")
    print("  (framed − raw copy) time / device-read-only time: \(format(median(extraOverDeviceRead)))")
    print("")
    return result
}
