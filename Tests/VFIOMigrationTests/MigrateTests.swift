import Foundation
import Testing
import VFIOCore
import VFIOMigration
import VFIOMockDevices
import VFIOMock

@Suite struct MigrateTests {
    private let path = FileManager.default.temporaryDirectory.appendingPathComponent("migrate-\(UUID().uuidString).vfiomig").path

    @Test func aTargetThatRefusesItsStateSendsTheSourceBackToRunning() throws {
        defer { try? FileManager.default.removeItem(atPath: path) }
        let env = DeviceEnvironment.withMockDevices()
        let source = try env.open("mock:src?state=128KiB&flags=stop-copy,p2p")
        // The target's RESUMING -> STOP validation fails as a vendor driver's can.
        let target = try env.open("mock:dst?state=128KiB&flags=stop-copy,p2p&fail-arc=RESUMING>STOP:EIO")
        do {
            try Migration.migrate([source], to: [target], through: path)
            Issue.record("a refused load counted as a migration")
        } catch {
            #expect(error.errno == .ioError, "\(error)")
            #expect(error.description.contains("source devices: mock:src returned to RUNNING"), "\(error)")
        }
        #expect(try source.currentState() == .running)
        #expect(try target.currentState() == .running, "the target was reset")
    }

    @Test func anIncompatibleTargetIsRefusedBeforeTheSourceStops() throws {
        defer { try? FileManager.default.removeItem(atPath: path) }
        let env = DeviceEnvironment.withMockDevices()
        let source = try env.open("mock:src?state=128KiB")
        let target = try env.open("mock:dst?state=128KiB&compat=another-firmware")
        source.mock!.clearArcHistory()
        do {
            try Migration.migrate([source], to: [target], through: path)
            Issue.record("an incompatible target was accepted")
        } catch {
            #expect(error.code == .streamIncompatible)
        }
        let arcs = source.mock!.arcHistory
        #expect(arcs.contains { $0.to == .preCopy }, "pre-copy ran before the check: \(arcs)")
        #expect(!arcs.contains { $0.to == .stopCopy || $0.to == .stop }, "the source never stopped: \(arcs)")
        #expect(try source.currentState() == .running)
        #expect(target.mock!.arcHistory.isEmpty)
    }
}
