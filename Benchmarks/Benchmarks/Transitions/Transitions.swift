// What a migration costs apart from its bytes, on the emulator: one FSM arc pair through the
// uAPI (RUNNING -> STOP -> RUNNING), the stop-copy path with its data fd opened and closed
// (RUNNING -> STOP -> STOP_COPY -> STOP -> RUNNING), and a whole save of a 4 KiB device into
// /dev/null (descriptors, session, pipeline, finish): the fixed overhead a real device adds its
// own time to. mallocCountTotal is allocations per iteration, the emulator's ioctl handling
// included (it runs in this process).
import Benchmark
import VFIOMigration
import VFIOMockDevices

let benchmarks: @Sendable () -> Void = {
    let configuration = Benchmark.Configuration(
        metrics: [.wallClock, .mallocCountTotal], warmupIterations: 10, maxDuration: .seconds(2), maxIterations: 20_000)
    let env = DeviceEnvironment.withMockDevices()
    guard let device = try? env.open("mock:arcs?state=4KiB&flags=stop-copy"),
          let small = try? env.open("mock:small?state=4KiB&source=fast&flags=stop-copy")
    else { fatalError("mock devices") }

    Benchmark("RUNNING -> STOP -> RUNNING (2 arcs)", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations {
            _ = try device.setState(.stop)
            _ = try device.setState(.running)
        }
    }
    Benchmark("RUNNING -> STOP_COPY -> RUNNING (4 arcs, data fd opened and closed)", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations {
            // The data fd closes as the session is dropped.
            _ = try device.setState(.stopCopy)
            _ = try device.setState(.running)
        }
    }
    let save = SaveOptions(chunkSize: 1 << 20, preCopy: false)
    Benchmark("save of a 4 KiB device to /dev/null (whole-migration overhead)", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try Migration.save([small], to: "/dev/null", options: save, leaving: .running)) }
    }
}
