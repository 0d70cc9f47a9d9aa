// What docs/embedding.md promises a VMM: the example program builds and migrates, a VMM learns
// every source device's final state as a value after a failure, and an emulated device's
// fault options never reach a stream descriptor.
import Foundation
import Testing
import VFIOMigration
import VFIOMockDevices

/// Runs an executable built next to the test bundle; returns (exit code, stdout).
func runBuiltExecutable(_ name: String, _ arguments: [String] = []) throws -> (status: Int32, out: String) {
    let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    var binary = directory.appendingPathComponent(name)
    if !FileManager.default.fileExists(atPath: binary.path) {
        binary = directory.deletingLastPathComponent().appendingPathComponent(name)
    }
    let process = Process()
    process.executableURL = binary
    process.arguments = arguments
    let out = Pipe()
    process.standardOutput = out
    process.standardError = out
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

@Suite struct EmbeddingTests {
    @Test func theMiniVMMExampleMigratesStepByStep() throws {
        let (status, out) = try runBuiltExecutable("mini-vmm")
        #expect(status == 0, "\(out)")
        #expect(out.contains("round 1: 512 RAM pages"), "its own RAM rounds run between device iterations: \(out)")
        #expect(out.contains("target events: source stopped -> devices validated, stopped -> last RAM frame"), "\(out)")
        #expect(out.contains("-> devices resumed"), "\(out)")
        #expect(out.contains("RAM identical; devices identical; sources STOP,STOP, targets RUNNING,RUNNING"), "\(out)")
    }

    @Test func aVMMLearnsEachSourceDevicesFinalStateAsAValue() throws {
        let env = DeviceEnvironment.withMockDevices()
        let healthy = try env.open("mock:ok?state=256KiB")
        let failing = try env.open("mock:bad?state=256KiB&fail-arc=PRE_COPY_P2P>STOP_COPY:EIO:error")
        let session = try SaveSession(devices: [healthy, failing])
        try session.setup()
        try session.iterateRound(into: MemoryCapture(deviceCount: 2))
        do {
            try session.stop()
            Issue.record("the injected failure did not fail the stop")
        } catch {
            #expect(error.device == "mock:bad")
            #expect(error.errno == .ioError)
            #expect(error.state?.observed == .error)
            let byDevice = Dictionary(uniqueKeysWithValues: error.outcomes.map { ($0.device, $0) })
            #expect(byDevice["mock:ok"]?.finalState == .inState(.running))
            #expect(byDevice["mock:ok"]?.recovery == .moved(to: .running))
            #expect(byDevice["mock:bad"]?.finalState == .reset, "from ERROR only a reset leads back")
            #expect(byDevice["mock:bad"]?.recovery == .reset)
            #expect(error.outcomes.allSatisfy { $0.isRunning && $0.role == .source })
        }
        #expect(try healthy.currentState() == .running)
        #expect(try failing.currentState() == .running)
    }

    @Test func faultOptionsNeverReachTheStreamDescriptor() throws {
        let env = DeviceEnvironment.withMockDevices()
        let device = try env.open("mock:faulty?state=64KiB&short-read=1000&eintr=3&fail-arc=STOP>RUNNING:EIO")
        let descriptor = try device.descriptor()
        #expect(descriptor.name == "mock:faulty")
        let text = "\(descriptor)"
        for option in ["short-read", "eintr", "fail-arc", "EIO", "?"] {
            #expect(!text.contains(option), "\(option) leaked into \(text)")
        }
        let header = try Migration.header(for: [try MigrationDriver(device: device)], devices: [device], chunkSize: 1 << 20)
        let bytes = String(decoding: try header.encoded(), as: UTF8.self)
        #expect(bytes.contains("mock:faulty"))
        #expect(!bytes.contains("short-read") && !bytes.contains("fail-arc"), "the encoded header carries a fault option")
    }
}
