// A finding of the receiver fuzzer (tools/fuzz/corpus-receiver/finding-aborted-write-wins.bin):
// with two devices on two channels, one device refusing its data made the target report
// "write called in phase aborted of the load" — the other channel's write, refused because
// the first failure had already aborted the load — instead of the device's refusal, and
// without the devices' outcomes (or, once that was fixed, a third channel's read interrupted
// by that failure). The cause must win over its consequences.
import Foundation
import Testing
@testable import VFIOMigration
import VFIOMockDevices

@Suite struct SecurityReassemblerTests {
    private let env = DeviceEnvironment.withMockDevices()

    @Test func aWriteRefusedBecauseAnotherDeviceAbortedTheLoadDoesNotHideTheCause() throws {
        let targets = [try env.open("mock:ra0?state=64KiB"), try env.open("mock:ra1?state=64KiB")]
        let load = try LoadSession(drivers: try targets.map { try MigrationDriver(device: $0) })
        try load.begin()
        let header = StreamHeader(
            flags: 0, creationTimeNanoseconds: 1, maxPayload: 1 << 20, devices: try targets.map { try $0.descriptor() })
        let reassembler = Reassembler(header: header, channels: 2, load: load, checksData: false, sendAck: { _ in }, onFailure: { _ in })

        // Channel 0: device 0's write failed inside the load, which aborts it (resetting the
        // devices) before the channel reports the failure.
        let cause = load.failed(VFIOError(.deviceError, "the device refused resume data (test)", device: "mock:ra0", errno: .invalidArgument))
        // Meanwhile channel 1 writes device 1's data into the aborted load, and reports first.
        let buffer = IOBuffer(capacity: 4096)
        #expect(throws: VFIOError.self) { try reassembler.deliver(device: 1, offset: 0, buffer: buffer, range: 0..<4096, channel: 1) }
        // That failure interrupted every connection: a third channel's read fails with it.
        reassembler.fail(VFIOError(.ioFailure, "data connection 2 was interrupted (test)", errno: .connectionReset))
        reassembler.fail(cause)

        let reported = try #require(reassembler.firstFailure)
        #expect(reported.code == .deviceError && reported.errno == .invalidArgument, "\(reported)")
        #expect(reported.message.contains("refused resume data"), "\(reported)")
        #expect(reported.outcomes.count == 2, "the devices' outcomes reach the error: \(reported)")
        #expect(throws: VFIOError.self) { _ = try reassembler.finalTotals() }
        do { _ = try reassembler.finalTotals() } catch { #expect(error.code == .deviceError, "\(error)") }
    }
}
