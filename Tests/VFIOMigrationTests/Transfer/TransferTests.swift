// Live migrations between two ends of this process over loopback TCP (and TLS), through the
// kernel backend's own code against the emulator: one device and several, with P2P and
// pre-copy, one channel and several (a device's data split across them and reassembled), the
// switchover acknowledgement and its REINIT restart.
import Foundation
import Testing
import VFIOMigration
import VFIOMockDevices
import VFIOMock

@Suite(.serialized) struct TransferTests {
    private func migrate(
        _ sourceSpecs: [String], _ targetSpecs: [String], options: TransferOptions = .test(),
        security: (source: TransportSecurity, target: TransportSecurity) = (.insecure, .insecure),
        policy: any ConvergencePolicy = PendingBytesPolicy()
    ) throws -> (sources: [VFIODevice], targets: [VFIODevice], sent: Migration.SendResult, received: ReceiveResult) {
        let env = DeviceEnvironment.withMockDevices()
        var sources: [VFIODevice] = []
        for spec in sourceSpecs { sources.append(try env.open(spec)) }
        var targets: [VFIODevice] = []
        for spec in targetSpecs { targets.append(try env.open(spec)) }
        let target = try LoopbackTarget(targets, security: security.target)
        let connector = TCPConnector(to: target.address, security: security.source)
        let sent = Result { () throws(VFIOError) in try Migration.send(sources, to: connector, options: options, save: .test, policy: policy) }
        let received = target.finish()
        return (sources, targets, try sent.get(), try received.get())
    }

    @Test func oneDeviceOverOneChannel() throws {
        let (sources, targets, sent, received) = try migrate(["mock:a?state=3MiB"], ["mock:b?state=3MiB"])
        #expect(sources[0].mock!.stateDigest == targets[0].mock!.stateDigest)
        #expect(try targets[0].currentState() == .running)
        #expect(try sources[0].currentState() == .stop)
        #expect(sent.confirmation.committed == .running)
        #expect(sent.confirmation.totalStateBytes == sent.report.totalBytes)
        #expect(received.report.totalBytes == sent.report.totalBytes)
        #expect(received.header.migrationID == sent.header.migrationID)
        #expect(sent.downtime.total >= sent.downtime.finalRead)
        #expect(received.rejectedConnections.isEmpty)
    }

    @Test func buffersAndThreadsAreOnTheDevicesNodeAndTheKernelSaysSo() throws {
        var options = TransferOptions.test(channels: 2)
        options.pipeline.node = 0
        let env = DeviceEnvironment.withMockDevices()
        let source = try env.open("mock:a?state=2MiB")
        let target = try LoopbackTarget([try env.open("mock:b?state=2MiB")], options: ReceiveOptions(node: 0))
        let sent = try Migration.send([source], to: TCPConnector(to: target.address, security: .insecure), options: options, save: .test)
        let received = try target.finish().get()
        // Node 0 exists on every Linux machine; where libnuma works the buffers are bound to it
        // and move_pages finds every page there.
        for placement in [sent.pipeline.buffers, received.metrics.buffers] {
            #expect(placement.requestedNode == 0)
            if placement.boundNode == 0 {
                let pages = placement.bufferCount * ((placement.bufferSize + 4095) / 4096)
                #expect(placement.residentPages == [0: pages], "\(placement)")
            } else {
                #expect(placement.note != nil, "not bound, and no reason given: \(placement)")
            }
        }
        #expect(sent.pipeline.channels.allSatisfy { $0.boundToNode == 0 || sent.pipeline.buffers.boundNode == nil })
        #expect(received.metrics.channels.allSatisfy { $0.boundToNode == 0 || received.metrics.buffers.boundNode == nil })
    }

    @Test func fourDevicesWithP2POverFourChannels() throws {
        let specs = (0..<4).map { "mock:s\($0)?state=2MiB&seed=\($0)&flags=stop-copy,p2p,pre-copy" }
        let targetSpecs = (0..<4).map { "mock:t\($0)?state=2MiB&seed=\($0)&flags=stop-copy,p2p,pre-copy" }
        let (sources, targets, sent, received) = try migrate(specs, targetSpecs, options: .test(channels: 4))
        for i in 0..<4 {
            #expect(sources[i].mock!.stateDigest == targets[i].mock!.stateDigest, "device \(i)")
            #expect(try targets[i].currentState() == .running)
            // Every device quiesced before any stopped, and resumed through RUNNING_P2P.
            #expect(sources[i].mock!.arcHistory.contains { $0.to == .preCopyP2P })
            #expect(targets[i].mock!.arcHistory.contains { $0.to == .runningP2P })
        }
        #expect(sent.pipeline.channels.count == 4)
        #expect(received.metrics.channels.count == 4)
        #expect(received.metrics.channels.allSatisfy { $0.stateBytes > 0 }, "each device went over its own channel")
    }

    @Test func aLargeDeviceSplitAcrossThreeChannelsIsReassembledInOrder() throws {
        let (sources, targets, sent, received) = try migrate(
            ["mock:big?state=24MiB&flags=stop-copy&seed=9"], ["mock:big2?state=24MiB&flags=stop-copy&seed=9"], options: .test(channels: 3))
        #expect(sources[0].mock!.stateDigest == targets[0].mock!.stateDigest)
        #expect(received.metrics.channels.count == 3)
        let perChannel = received.metrics.channels.map(\.stateBytes)
        #expect(perChannel.allSatisfy { $0 > 4 << 20 }, "the chunks were dealt over every channel: \(perChannel)")
        #expect(perChannel.reduce(0, +) == sent.report.totalBytes)
    }

    @Test func overTLSRecordChecksumsAreLeftToTheMAC() throws {
        let (sources, targets, sent, _) = try migrate(
            ["mock:a?state=2MiB"], ["mock:b?state=2MiB"], options: .test(channels: 2),
            security: (.tls(try TLSFixtures.client()), .tls(try TLSFixtures.server())))
        #expect(sources[0].mock!.stateDigest == targets[0].mock!.stateDigest)
        #expect(!sent.header.hasRecordChecksums, "automatic: no record CRCs under TLS")
    }

    @Test func plainTCPKeepsRecordChecksumsAndATargetRefusesAStreamWithout() throws {
        let env = DeviceEnvironment.withMockDevices()
        let source = try env.open("mock:a?state=1MiB")
        let target = try LoopbackTarget([try env.open("mock:b?state=1MiB")])
        let connector = TCPConnector(to: target.address, security: .insecure)
        source.mock!.clearArcHistory()
        do {
            try Migration.send([source], to: connector, options: .test(checksums: .off), save: .test)
            Issue.record("a plain TCP target took a stream without record checksums")
        } catch {
            #expect(error.message.contains("no record checksums"), "\(error)")
            #expect(error.outcomes.allSatisfy { $0.isRunning })
        }
        #expect(source.mock!.arcHistory.isEmpty, "refused before the source did anything")
        guard case .failure(let refusal) = target.finish() else { Issue.record("the target accepted"); return }
        #expect(refusal.code == .invalidArgument)
    }

    @Test func theSourceWaitsForTheSwitchoverAcknowledgement() throws {
        let (_, _, sent, received) = try migrate(["mock:a?state=4MiB&flags=stop-copy,pre-copy"], ["mock:b?state=4MiB&flags=stop-copy,pre-copy"])
        #expect(sent.report.usedPreCopy)
        let status = try #require(sent.switchover.first)
        #expect(status.preCopy && status.acknowledgements >= 1)
        #expect(status.acknowledgedOffset! >= status.requiredOffset!)
        #expect(received.acknowledgements[0] == status.acknowledgements)
    }

    /// Once the initial data first completed, the device REINITs (new initial data), once.
    private final class ReinitOnce: ConvergencePolicy, @unchecked Sendable {
        let device: MockDevice
        private var fired = false
        init(device: MockDevice) { self.device = device }
        func decide(after snapshot: RoundSnapshot) -> ConvergenceDecision {
            if snapshot.pending[0].initialBytes == 0 && !fired {
                fired = true
                #expect(device.reinitialize())
                return .iterate
            }
            return PendingBytesPolicy().decide(after: snapshot)
        }
    }

    @Test func aReinitDuringPreCopyNeedsANewAcknowledgement() throws {
        let env = DeviceEnvironment.withMockDevices()
        let source = try env.open("mock:a?state=2MiB&flags=stop-copy,pre-copy")
        let targetDevice = try env.open("mock:b?state=2MiB&flags=stop-copy,pre-copy")
        let target = try LoopbackTarget([targetDevice])
        let sent = try Migration.send(
            [source], to: TCPConnector(to: target.address, security: .insecure), options: .test(), save: .test,
            policy: ReinitOnce(device: source.mock!))
        let received = try target.finish().get()
        #expect(sent.report.devices[0].reinitCount == 1)
        // The requirement moved past the REINIT's new initial data, and the target acknowledged it.
        let status = try #require(sent.switchover.first)
        #expect(status.requiredOffset! > 2 << 20, "required beyond the first initial data: \(status)")
        #expect(status.acknowledgedOffset! >= status.requiredOffset!)
        #expect(received.acknowledgements[0] >= 2)
        #expect(source.mock!.stateDigest == targetDevice.mock!.stateDigest)
    }

    @Test func anIncompatibleTargetIsRefusedBeforeTheSourceDoesAnything() throws {
        let env = DeviceEnvironment.withMockDevices()
        let source = try env.open("mock:a?state=1MiB")
        let targetDevice = try env.open("mock:b?state=1MiB&compat=other-firmware")
        let target = try LoopbackTarget([targetDevice])
        source.mock!.clearArcHistory()
        do {
            try Migration.send([source], to: TCPConnector(to: target.address, security: .insecure), options: .test(), save: .test)
            Issue.record("an incompatible target was accepted")
        } catch {
            #expect(error.code == .streamIncompatible, "\(error)")
            #expect(error.message.contains("vendorCompatibility"), "\(error)")
            #expect(error.outcomes.map(\.isRunning) == [true])
        }
        #expect(source.mock!.arcHistory.isEmpty)
        #expect(targetDevice.mock!.arcHistory.isEmpty, "the target never entered RESUMING")
        guard case .failure(let refusal) = target.finish() else { Issue.record("the target accepted"); return }
        #expect(refusal.code == .streamIncompatible)
    }
}
