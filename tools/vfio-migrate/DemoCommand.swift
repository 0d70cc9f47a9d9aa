import ArgumentParser
import Foundation
import VFIOMigration
import VFIOMockDevices

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run a full live migration between emulated devices: pre-copy, stop-copy, transfer, load, compare.",
        discussion: """
            The default command. By default the migration runs live between two ends of this
            process over loopback TCP (127.0.0.1, a port only this run uses), exactly as `send`
            and `receive` run between hosts: the target's descriptors come back before anything
            runs, pre-copy goes on until the target acknowledged the initial data, the stop-copy
            state travels over --channels connections, the target confirms and the source
            commits. With --through FILE the stream goes through a file instead (save, verify,
            load). Exit 0 when every target holds exactly its source's state.

            Examples:
              vfio-migrate
              vfio-migrate demo --state 1GiB --devices 4 --channels 4
              vfio-migrate demo --through demo.vfiomig
              vfio-migrate demo --memory /dev/shm/guest-ram

            With --memory, the file is the guest's RAM: the mock devices write into it (64 MiB/s
            each, 1 MiB hot) while pre-copy runs, it travels through a stream file with the
            devices' state (--through, or a temporary file), and it is loaded into a temporary
            file of the same size, which must end equal.
            """)

    @Option(help: "Device state size of each mock device (e.g. 64MiB).") var state = "64MiB"
    @Option(help: "Number of devices migrated together.") var devices = 2
    @Option(help: "Data connections of the live migration.") var channels = 2
    @Option(help: "Go through this stream file instead of a live connection (kept afterwards).") var through: String?
    @OptionGroup var memory: MemoryArguments
    @OptionGroup var common: CommonOptions

    struct Result: Encodable {
        var transport: String
        var streamBytes: UInt64
        var save: SaveReport
        var load: LoadReport
        var downtime: DowntimeBreakdown?
        var channels: Int
        var identical: [Bool]
        var sourceStates: [String]
        var targetStates: [String]
        var memoryIdentical: Bool?
    }

    func run() throws {
        try execute(common) { invocation in
            guard devices >= 1 && devices <= 8 else { throw CLIFailure(.usage, "--devices takes 1 to 8") }
            guard channels >= 1 && channels <= 16 else { throw CLIFailure(.usage, "--channels takes 1 to 16") }
            let size = try parseSize(state)
            let env = DeviceEnvironment.withMockDevices()
            let options = "state=\(size)&flags=stop-copy,p2p,pre-copy&dirty-rate=4/1MiB"
            // With guest memory the sources write into it while they run (DMA at the mock's clock).
            func dma(_ i: Int) -> String { memory.isEmpty ? "" : "&dma-rate=64MiB/s&dma-hot=1MiB&dma-seed=\(i + 1)" }
            let sources = try (0..<devices).map { try env.open("mock:src\($0)?\(options)\(dma($0))&seed=\(100 + $0)") }
            let targets = try (0..<devices).map { try env.open("mock:dst\($0)?\(options)&seed=\(200 + $0)") }
            for s in sources { _ = s.mock!.mutateState(blocks: 8) }  // a guest has been running
            invocation.say("migrating \(devices) mock device(s) of \(formatBytes(size)) each (STOP_COPY|P2P|PRE_COPY)")

            let save: SaveReport
            let load: LoadReport
            var downtime: DowntimeBreakdown?
            let streamBytes: UInt64
            let transport: String
            var memoryIdentical: Bool?
            if !memory.isEmpty {
                // With memory the demo goes through a file, so its rounds can show the pages the
                // devices dirty while it runs (send/receive --memory carry memory live).
                let path = through ?? FileManager.default.temporaryDirectory.appendingPathComponent("vfio-demo-\(getpid()).vfiomig").path
                defer { if through == nil { try? FileManager.default.removeItem(atPath: path) } }
                let (saved, loaded, same) = try migrateWithMemory(sources, targets, path: path, env: env, invocation: invocation)
                save = saved
                load = loaded
                memoryIdentical = same
                let summary = try Migration.verify(path)
                streamBytes = summary.streamLength
                transport = "file \(path)"
                invocation.say("stream \(shown(path)): \(formatBytes(summary.streamLength)), \(summary.recordCount) records, every checksum verified")
            } else if let path = through {
                // Pre-copy while running, compatibility checked before the sources stop, then
                // every device quiesces P2P before any enters STOP_COPY.
                let result = try Migration.migrate(sources, to: targets, through: path)
                save = result.save
                load = result.load
                let summary = try Migration.verify(path)
                streamBytes = summary.streamLength
                transport = "file \(path)"
                invocation.say("stream \(shown(path)): \(formatBytes(summary.streamLength)), \(summary.recordCount) records, every checksum verified")
            } else {
                let acceptor = try TCPAcceptor(listeningOn: NetworkAddress(host: "127.0.0.1", port: 0), security: .insecure)
                defer { acceptor.close() }
                transport = "loopback TCP 127.0.0.1:\(acceptor.port), \(channels) channel(s)"
                invocation.say("live over \(transport)")
                let receivers = targets
                let target = DemoReceiver { () throws(VFIOError) in try Migration.receive(receivers, from: acceptor) }
                let connector = TCPConnector(to: NetworkAddress(host: "127.0.0.1", port: acceptor.port), security: .insecure)
                let sent: Migration.SendResult
                do {
                    sent = try Migration.send(sources, to: connector, options: TransferOptions(channels: channels))
                } catch {
                    _ = target.join()
                    throw error
                }
                let received = try target.join().get()
                save = sent.report
                load = received.report
                downtime = sent.downtime
                streamBytes = sent.pipeline.channels.reduce(0) { $0 + $1.bytes }
                for c in sent.pipeline.channels {
                    invocation.say("  channel \(c.channel): \(formatBytes(c.bytes)) at \(formatRate(bytes: c.bytes, seconds: c.elapsed.seconds))")
                }
            }
            for d in save.devices {
                invocation.say("  saved \(d.name): pre-copy \(formatBytes(d.preCopyBytes)), stop-copy \(formatBytes(d.stopCopyBytes)), \(d.chunks) chunks")
            }
            invocation.say("  pre-copy rounds: \(save.rounds.count)\(save.converged == true ? " (converged)" : "")")
            if let d = downtime {
                invocation.say("  downtime \(formatDuration(d.total)): stopping \(formatDuration(d.stopping)), final read \(formatDuration(d.finalRead)), transfer and target writes \(formatDuration(d.transferAndWrite)), target validation \(formatDuration(d.targetValidation)), commit and resume \(formatDuration(d.commitAndResume))")
            } else {
                invocation.say("  downtime \(formatDuration(save.timings.downtime)) (stopping and final read)")
            }
            let identical = zip(sources, targets).map { $0.mock!.stateDigest == $1.mock!.stateDigest }
            let sourceStates = try sources.map { try $0.currentState() }
            let targetStates = try targets.map { try $0.currentState() }
            for (i, same) in identical.enumerated() {
                invocation.say("  \(targets[i].name): \(same ? "identical state to" : "STATE DIFFERS FROM") \(sources[i].name); source \(sourceStates[i]), target \(targetStates[i])")
            }
            if common.json {
                try JSONOutput.print(Result(
                    transport: transport, streamBytes: streamBytes, save: save, load: load, downtime: downtime, channels: through == nil && memory.isEmpty ? channels : 1,
                    identical: identical, sourceStates: sourceStates.map(\.description), targetStates: targetStates.map(\.description),
                    memoryIdentical: memoryIdentical))
            }
            guard identical.allSatisfy({ $0 }) else {
                throw CLIFailure(.failed, "migration finished but a target's state differs from its source")
            }
            guard memoryIdentical != false else {
                throw CLIFailure(.failed, "migration finished but the target's guest memory differs from the source's")
            }
            invocation.say("migration complete: \(formatBytes(streamBytes)) moved")
        }
    }
}

/// The target end of the demo, on its own thread.
final class DemoReceiver: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var result: Result<ReceiveResult, VFIOError>?

    init(_ body: @escaping @Sendable () throws(VFIOError) -> ReceiveResult) {
        let thread = Thread { [self] in
            do throws(VFIOError) { result = .success(try body()) } catch { result = .failure(error) }
            done.signal()
        }
        thread.start()
    }

    func join() -> Result<ReceiveResult, VFIOError> {
        done.wait()
        return result!
    }
}

extension DemoCommand {
    /// The save and load by hand, with guest memory: the sources' DMA workloads run with the
    /// mock clock between rounds, the target RAM is a zeroed temporary file per region.
    func migrateWithMemory(
        _ sources: [VFIODevice], _ targets: [VFIODevice], path: String, env: DeviceEnvironment, invocation: Invocation
    ) throws -> (SaveReport, LoadReport, Bool) {
        guard let guestMemory = try memory.map(writable: false) else { preconditionFailure("no memory") }
        try memory.mapForDMA(guestMemory, into: sources)
        var targetRegions: [GuestMemoryRegion] = []
        var scratch: [String] = []
        defer { for file in scratch { try? FileManager.default.removeItem(atPath: file) } }
        for (i, region) in guestMemory.regions.enumerated() {
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("vfio-demo-ram-\(getpid())-\(i)").path
            guard FileManager.default.createFile(atPath: file, contents: nil), let handle = FileHandle(forWritingAtPath: file) else {
                throw CLIFailure(.failed, "cannot create the target RAM file \(file)")
            }
            try handle.truncate(atOffset: region.length)
            try handle.close()
            scratch.append(file)
            targetRegions.append(try GuestMemoryRegion.mapping(file: file, iova: region.iova, pageSize: region.pageSize, writable: true))
        }
        let targetMemory = try GuestMemory(targetRegions)
        invocation.say("guest memory: \(guestMemory.regions.count) region(s), \(formatBytes(guestMemory.totalBytes)); the devices write into it while pre-copy runs")
        let clock = env.mockKernel!.clock
        let saved = try Migration.save(
            sources, to: path, policy: DowntimePolicy(), checkingTargets: targets, memory: guestMemory,
            roundByteBudget: 16 << 20, afterRound: { _ in clock.advance(by: .milliseconds(20)) })
        let loaded = try Migration.load(targets, from: path, leaving: .running, memory: targetMemory)
        if let m = saved.report.memory { invocation.say("  \(m.summaryLine)") }
        if let reason = saved.report.convergenceReason { invocation.say("  policy: \(reason)") }
        let same = zip(guestMemory.regions, targetMemory.regions).allSatisfy { $0.buffer.bytes(0..<Int($0.length)) == $1.buffer.bytes(0..<Int($1.length)) }
        invocation.say("  target guest memory \(same ? "identical to" : "DIFFERS FROM") the source's")
        return (saved.report, loaded.report, same)
    }
}
