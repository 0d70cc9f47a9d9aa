// Whole saves of an emulated device through SaveSession: into the real stream writer
// (StreamFileWriter, framing + CRC32C per 1 MiB chunk) and, as baselines, into a raw copy of
// the same bytes through the same sink with the same write call, and into nothing at all
// (the device reads alone). Same device, same descriptors, same buffer layout; only the sink
// differs. Plus peak resident memory of a framed save of a 64 MiB and of a 1 GiB device,
// which should be the same. One iteration is one whole save.
//
// mallocCountTotal counts the whole process, the emulator's producer thread included (it
// allocates a few times per MiB it generates, whoever reads it); what the stream adds is the
// framed count minus the raw-copy count, per save, and it does not grow with the state.
import BenchSupport
import Benchmark

let benchmarks: @Sendable () -> Void = {
    let timed = Benchmark.Configuration(
        metrics: [.throughput, .wallClock, .mallocCountTotal], warmupIterations: 1, maxDuration: .seconds(10),
        maxIterations: 10)

    for preCopy in [false, true] {
        let flags = preCopy ? "stop-copy,pre-copy" : "stop-copy"
        let device: MockSaveBench
        do {
            device = try MockSaveBench(name: preCopy ? "pre" : "stop", state: "256MiB", preCopy: preCopy)
        } catch {
            fatalError("cannot open the mock device: \(error)")
        }
        for target in SaveTarget.allCases {
            let into = target == .discard ? "discard (device reads only)" : "\(target.rawValue) -> /dev/null"
            Benchmark("save 256 MiB [\(flags)] \(into)", configuration: timed) { benchmark in
                for _ in benchmark.scaledIterations { blackHole(try device.save(into: target)) }
            }
        }
    }

    let memory = Benchmark.Configuration(
        metrics: [.peakMemoryResident, .peakMemoryResidentDelta, .mallocCountTotal, .wallClock], warmupIterations: 0,
        maxDuration: .seconds(30), maxIterations: 3)
    for state in ["64MiB", "1GiB"] {
        Benchmark("peak memory, framed save of \(state) [stop-copy]", configuration: memory) { benchmark in
            let device = try MockSaveBench(name: "m\(state)", state: state, preCopy: false)
            benchmark.startMeasurement()
            blackHole(try device.save(into: .framed))
        }
    }
}
