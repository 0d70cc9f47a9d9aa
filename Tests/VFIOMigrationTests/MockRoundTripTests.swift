import Testing
import VFIOCore
import VFIOMigration
import VFIOMockDevices
import VFIOMock

@Suite struct MockRoundTripTests {
    @Test(arguments: ["1", "1MiB", "3MiB"])
    func saveThenLoadRestoresIdenticalState(size: String) throws {
        let env = DeviceEnvironment.withMockDevices()
        let src = try env.open("mock:src?state=\(size)&seed=7")
        let dst = try env.open("mock:dst?state=\(size)&seed=99")
        let memory = MemoryCapture(deviceCount: 1)
        let saveReport = try SaveSession(drivers: [try MigrationDriver(device: src)]).run(into: memory)
        #expect(memory.isComplete)
        #expect(saveReport.devices[0].totalBytes == UInt64(memory.bytes(of: 0).count))
        #expect(try MigrationDriver(device: src).knownState == .stop)
        try LoadSession(drivers: [try MigrationDriver(device: dst)]).run(from: memory, leaving: .running)
        let s = try #require(src.mock)
        let d = try #require(dst.mock)
        #expect(s.stateDigest == d.stateDigest)
        #expect(d.migrationState == MigrationState.running.rawValue)
    }
}
