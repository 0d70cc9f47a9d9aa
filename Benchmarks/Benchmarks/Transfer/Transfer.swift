// send/receive over loopback TCP inside one process (Migration.send to Migration.receive on a
// second thread, what `vfio-migrate bench` measures in its loopback and tls sections): the
// emulator's fast source, so the emulator is not what is measured, over 1, 2 and 4 channels
// (a device per channel), one device split over 4 channels, and TLS 1.3 over one channel with
// the test fixture's credentials; next to each, the raw socket copy of the same bytes. One
// iteration is one whole migration, connections and handshakes included.
//
// mallocCountTotal is allocations per migration, the emulator's included (it runs in this
// process and allocates as it parses what a target is given). The 64 MiB and 256 MiB runs over
// one channel differ by 192 chunks of 1 MiB: the difference over 192, less the raw copy's, is
// what the engine allocates per chunk in steady state (docs/performance.md has the numbers).
import Benchmark
import Foundation
import VFIOMigration
import VFIOMockDevices
import VFIOSyscalls

/// The fixture credentials (Tests/VFIOSyscallsTests/Fixtures/tls), found from this file.
private func fixtureTLS() -> BenchTransport? {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path + "/Tests/VFIOSyscallsTests/Fixtures/tls"
    guard let server = try? TLSContext(TLSConfiguration(role: .server, credentialsDirectory: root + "/server")),
          let client = try? TLSContext(TLSConfiguration(role: .client, credentialsDirectory: root + "/client", serverName: "127.0.0.1"))
    else { return nil }
    return .tls(server: server, client: client)
}

let benchmarks: @Sendable () -> Void = {
    let configuration = Benchmark.Configuration(
        metrics: [.throughput, .wallClock, .cpuTotal, .mallocCountTotal], warmupIterations: 1, maxDuration: .seconds(5), maxIterations: 20)
    let env = DeviceEnvironment.withMockDevices()
    func pair(_ name: String, _ bytes: Int, p2p: Bool) -> (VFIODevice, VFIODevice) {
        let flags = p2p ? "stop-copy,p2p" : "stop-copy"
        do {
            return (try env.open("mock:\(name)-s?state=\(bytes)&source=fast&flags=\(flags)"),
                    try env.open("mock:\(name)-t?state=\(bytes)&source=fast&flags=\(flags)"))
        } catch { fatalError("mock device \(name): \(error)") }
    }
    let save = SaveOptions(chunkSize: 1 << 20, preCopy: false)

    for (total, channels) in [(64 << 20, 1), (256 << 20, 1), (64 << 20, 2), (64 << 20, 4)] {
        let devices = (0..<channels).map { pair("c\(channels)-\(total >> 20)-\($0)", total / channels, p2p: channels > 1) }
        let (sources, targets) = (devices.map(\.0), devices.map(\.1))
        let size = "\(total >> 20) MiB"
        Benchmark("send/receive \(size), \(channels) device(s) over \(channels) channel(s)", configuration: configuration) { benchmark in
            for _ in benchmark.scaledIterations { blackHole(try LoopbackRun.engine(sources, into: targets, channels: channels, save: save)) }
        }
        Benchmark("raw socket copy \(size), \(channels) connection(s)", configuration: configuration) { benchmark in
            for _ in benchmark.scaledIterations { blackHole(try LoopbackRun.raw(sources, into: targets, chunkSize: 1 << 20)) }
        }
    }
    let (split, splitTarget) = pair("split", 64 << 20, p2p: false)
    Benchmark("send/receive 64 MiB, one device split over 4 channels", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try LoopbackRun.engine([split], into: [splitTarget], channels: 4, save: save)) }
    }

    guard let tls = fixtureTLS() else { fatalError("the TLS fixture credentials did not load") }
    let (s, t) = pair("tls", 64 << 20, p2p: false)
    Benchmark("send/receive 64 MiB over TLS 1.3, 1 channel", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try LoopbackRun.engine([s], into: [t], channels: 1, transport: tls, save: save)) }
    }
    Benchmark("raw socket copy 64 MiB over TLS 1.3, 1 connection", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try LoopbackRun.raw([s], into: [t], transport: tls, chunkSize: 1 << 20)) }
    }
}
