// Guest memory over the network path: send/receive over loopback TCP with the devices doing
// DMA into the source memory while pre-copy runs; pages travel on the channel of their
// stripe, land straight in the target's memory, and the target memory ends equal to the
// source's, with one channel and several. A target whose memory does not match is refused
// before anything runs.
import Foundation
import Testing
import VFIOBuffers
import VFIOCore
import VFIOKernel
import VFIOMigration
import VFIOMock
import VFIOMockDevices

/// The caller's policy, with the mock's clock stepped after every round (the DMA workload
/// advances with it).
private struct Stepping: ConvergencePolicy {
    let base: any ConvergencePolicy
    let kernel: MockKernel
    let step: Duration
    func decide(after snapshot: RoundSnapshot) -> ConvergenceDecision {
        kernel.clock.advance(by: step)
        return base.decide(after: snapshot)
    }
}

private final class Receiver: @unchecked Sendable {
    let acceptor: TCPAcceptor
    private let done = DispatchSemaphore(value: 0)
    private var result: Result<ReceiveResult, VFIOError>?

    init(_ targets: [VFIODevice], memory: GuestMemory) throws {
        acceptor = try TCPAcceptor(listeningOn: NetworkAddress(host: "127.0.0.1", port: 0), security: .insecure)
        let acceptor = self.acceptor
        let thread = Thread { [self] in
            do throws(VFIOError) {
                result = .success(try Migration.receive(targets, from: acceptor, options: ReceiveOptions(handshakeTimeout: .seconds(10)), memory: memory))
            } catch {
                result = .failure(error)
            }
            done.signal()
        }
        thread.start()
    }

    var connector: TCPConnector { TCPConnector(to: NetworkAddress(host: "127.0.0.1", port: acceptor.port), security: .insecure) }

    func finish() -> Result<ReceiveResult, VFIOError> {
        done.wait()
        acceptor.close()
        return result!
    }
}

@Suite(.serialized) struct LiveMemoryTransferTests {
    @Test(arguments: [1, 3])
    func memoryAndDevicesOverLoopbackUnderADMAWorkload(channels: Int) throws {
        let rig = try MemoryRig(devices: ["state=512KiB", "state=256KiB"].map { $0 + "&flags=stop-copy,p2p,pre-copy" }, pages: 2048,
                                workload: MockDMAWorkload(rate: 64 << 20, hotSet: 64 << 10, pattern: .random))
        let receiver = try Receiver(rig.targets, memory: rig.targetMemory)
        let policy = Stepping(base: DowntimePolicy(downtimeLimit: .milliseconds(2), switchoverBandwidth: 100e6), kernel: rig.kernel, step: .milliseconds(50))
        let sent = try Migration.send(
            rig.sources, to: receiver.connector,
            options: TransferOptions(channels: channels, handshakeTimeout: .seconds(10), pipeline: PipelineOptions(bufferSize: 4 << 20, bufferCount: 4, lockMemory: false)),
            save: SaveOptions(chunkSize: 256 << 10), policy: policy, memory: rig.memory)
        let received = try receiver.finish().get()
        #expect(rig.sources.allSatisfy { $0.mock!.dmaWrites > 0 }, "the devices wrote guest memory during pre-copy")
        #expect((sent.report.memory?.preCopyBytes ?? 0) >= 8 << 20)
        #expect(received.report.memory?.bytes ?? 0 >= 8 << 20)
        #expect(rig.memoryMatches)
        #expect(rig.statesMatch)
        if channels > 1 {
            let pageChannels = received.metrics.channels.filter { $0.pageBytes > 0 }.count
            #expect(pageChannels > 1, "pages were spread over the channels by stripe: \(received.metrics.channels.map(\.pageBytes))")
        }
    }

    /// One device with PRE_COPY and one without: the devices do not pre-copy (all must), memory
    /// still runs rounds, no progress records go out, and the source must not wait for an
    /// acknowledgement that cannot come.
    @Test func memoryRoundsWithoutDevicePreCopyDoNotWaitForAnAcknowledgement() throws {
        let rig = try MemoryRig(devices: ["state=256KiB&flags=stop-copy,p2p,pre-copy", "state=128KiB&flags=stop-copy,p2p"], pages: 512,
                                workload: MockDMAWorkload(rate: 16 << 20, hotSet: 16 << 10))
        let receiver = try Receiver(rig.targets, memory: rig.targetMemory)
        let policy = Stepping(base: DowntimePolicy(downtimeLimit: .milliseconds(2), switchoverBandwidth: 100e6), kernel: rig.kernel, step: .milliseconds(50))
        let started = ContinuousClock.now
        let sent = try Migration.send(
            rig.sources, to: receiver.connector,
            options: TransferOptions(handshakeTimeout: .seconds(10), switchoverAckTimeout: .seconds(8), pipeline: PipelineOptions(bufferSize: 4 << 20, lockMemory: false)),
            save: SaveOptions(chunkSize: 256 << 10), policy: policy, memory: rig.memory)
        _ = try receiver.finish().get()
        #expect(ContinuousClock.now - started < .seconds(6), "no wait for an acknowledgement")
        #expect(!sent.report.rounds.isEmpty && sent.report.devices[0].preCopyBytes == 0)
        #expect(rig.memoryMatches)
        #expect(rig.statesMatch)
    }

    @Test func aTargetWhoseMemoryDiffersIsRefusedBeforeAnythingRuns() throws {
        let rig = try MemoryRig(devices: ["state=64KiB"], pages: 256, workload: nil)
        // The target's RAM is at another IOVA.
        let elsewhere = try GuestMemory([try patterned(0x8000_0000, pages: 256, seed: 0, name: "elsewhere", writable: true)])
        let receiver = try Receiver(rig.targets, memory: elsewhere)
        rig.sources[0].mock!.clearArcHistory()
        do {
            try Migration.send(rig.sources, to: receiver.connector, options: TransferOptions(handshakeTimeout: .seconds(10)), memory: rig.memory)
            Issue.record("a target with other memory was accepted")
        } catch {
            #expect(error.code == .streamIncompatible, "\(error)")
        }
        #expect(!rig.sources[0].mock!.arcHistory.contains { $0.to == .preCopy || $0.to == .stopCopy })
        guard case .failure = receiver.finish() else { Issue.record("the target reported success"); return }
        #expect(rig.targets[0].mock!.arcHistory.isEmpty)
    }
}
