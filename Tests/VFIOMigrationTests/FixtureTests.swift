// Captured streams committed under Fixtures/ (made by the mock; see regenerate.sh) must keep
// decoding, inspecting and loading as the code evolves: they are what other people's CI replays.
import Foundation
import Testing
import VFIOCore
import VFIOMigration
import VFIOMockDevices

private func fixture(_ name: String) throws -> String {
    let url = try #require(Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: nil))
    return url.path
}

@Suite struct FixtureTests {
    @Test(arguments: ["v1-stopcopy-1dev.vfiomig", "v1-precopy-2dev.vfiomig", "v1-mdev-1dev.vfiomig"])
    func fixtureVerifiesAndInspects(name: String) throws {
        let path = try fixture(name)
        let summary = try Migration.verify(path)
        #expect(summary.complete)
        let inspection = try Migration.inspect(path)
        #expect(inspection.valid)
        #expect(inspection.header.version.major == 1)
        #expect(inspection.devices.allSatisfy { $0.ended })
        let total = inspection.devices.reduce(UInt64(0)) { $0 + $1.preCopy.bytes + $1.stopCopy.bytes }
        #expect(total == summary.totalStateBytes)
    }

    @Test(arguments: ["v1-stopcopy-1dev.vfiomig", "v1-mdev-1dev.vfiomig"])
    func oneDeviceFixturesReplayExactly(name: String) throws {
        let path = try fixture(name)
        let spec = try #require(try MockDevices.replayTargetSpecs(forStreamAt: path).first)
        let report = try Migration.replay(path, into: try DeviceEnvironment.withMockDevices().open(spec))
        #expect(report.matches, "\(report)")
        #expect(report.requestedStates == [.resuming, .stop, .running])
    }

    @Test func twoDeviceFixtureLoadsIntoMatchingTargets() throws {
        let path = try fixture("v1-precopy-2dev.vfiomig")
        let env = DeviceEnvironment.withMockDevices()
        let targets = try MockDevices.replayTargetSpecs(forStreamAt: path, names: { "t\($0)" }).map { try env.open($0) }
        let inspection = try Migration.inspect(path)
        let report = try Migration.load(targets, from: path, leaving: .running).report
        #expect(report.devices.map(\.bytes) == inspection.devices.map { $0.preCopy.bytes + $0.stopCopy.bytes })
        for target in targets {
            #expect(try target.currentState() == .running)
        }
    }

    @Test func aTargetOfAnotherKindIsRefusedBeforeResuming() throws {
        let path = try fixture("v1-stopcopy-1dev.vfiomig")
        let target = try DeviceEnvironment.withMockDevices().open("mock:other?state=64KiB&flags=stop-copy&compat=other-vendor")
        do {
            try Migration.load([target], from: path)
            Issue.record("an incompatible target was loaded")
        } catch {
            #expect(error.code == .streamIncompatible)
            #expect(error.message.contains("vendorCompatibility"), "\(error)")
        }
        #expect(target.mock!.arcHistory.isEmpty, "the target never left RUNNING")
    }
}
