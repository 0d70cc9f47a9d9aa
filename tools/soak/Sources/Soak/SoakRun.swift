// One soak run: a random migration (devices, state sizes, flags, channels, chunk size,
// checksums, plain TCP or TLS, a fault or none) between emulated devices in this process,
// and the checks after it. Returns what happened, or the violations it found.
import Foundation
import VFIOMigration
import VFIOMock
import VFIOMockDevices

struct RunOutcome {
    var fault: Fault
    var succeeded: Bool
    /// For a failure: the side and code that reported it, e.g. "source: device error".
    var kind: String
    var violations: [String]
    var parameters: String
}

struct Soak {
    let tls: (client: TLSContext, server: TLSContext)?

    init(credentials: String?) throws {
        guard let credentials else {
            tls = nil
            return
        }
        tls = (
            try TLSContext(TLSConfiguration(role: .client, credentialsDirectory: "\(credentials)/client", serverName: "receiver.test")),
            try TLSContext(TLSConfiguration(role: .server, credentialsDirectory: "\(credentials)/server")))
    }

    func run(_ number: Int, using random: inout SplitMix) -> RunOutcome {
        let env = DeviceEnvironment.withMockDevices()
        let deviceCount = Int.random(in: 1...3, using: &random)
        let preCopy = Bool.random(using: &random)
        // Several devices migrate together only when they can quiesce peer-to-peer DMA (P2P);
        // a single device may have the flag or not.
        var p2p = deviceCount > 1 || Bool.random(using: &random)
        let channels = Int.random(in: 1...4, using: &random)
        let chunk = 64 << (10 + Int.random(in: 0...4, using: &random))
        let checksums: RecordChecksums = [.automatic, .on, .off].randomElement(using: &random)!
        let secure = tls != nil && Int.random(in: 0..<4, using: &random) == 0
        let fault = Bool.random(using: &random) ? Fault.none : Fault.allCases.filter { $0.fits(preCopy: preCopy, p2p: p2p, devices: deviceCount) }.randomElement(using: &random)!
        if fault == .unquiescedDevices { p2p = false }
        let flags = ["stop-copy"] + (p2p ? ["p2p"] : []) + (preCopy ? ["pre-copy"] : [])
        let faulty = Int.random(in: 0..<deviceCount, using: &random)
        var violations: [String] = []
        var sources: [VFIODevice] = [], targets: [VFIODevice] = []
        var sizes: [Int] = []
        var cutAfter = 0
        for d in 0..<deviceCount {
            let state = 64 << (10 + Int.random(in: 0...6, using: &random))
            sizes.append(state)
            let common = "state=\(state)&flags=\(flags.joined(separator: ","))&seed=\(number * 7 + d)"
            let (sourceFault, targetFault) = d == faulty ? fault.options(preCopy: preCopy, p2p: p2p, stateBytes: state, using: &random) : ("", "")
            if d == faulty { cutAfter = Int.random(in: 4 << 10...max(4 << 10, state / 2), using: &random) }
            do {
                sources.append(try env.open("mock:s\(d)?\(common)\(sourceFault)"))
                targets.append(try env.open("mock:t\(d)?\(common)\(targetFault)"))
            } catch {
                return RunOutcome(fault: fault, succeeded: false, kind: "setup", violations: ["cannot open the devices: \(error)"], parameters: "")
            }
        }
        let parameters = "run \(number): \(deviceCount) device(s) of \(sizes.map { "\($0 >> 10) KiB" }.joined(separator: ", ")), flags \(flags.joined(separator: ",")), \(channels) channel(s), chunk \(chunk >> 10) KiB, checksums \(checksums), \(secure ? "TLS" : "TCP"), fault: \(fault.rawValue) on device \(faulty)"
        let before = targets.map { $0.mock!.stateDigest }

        let listener: TCPAcceptor
        do {
            listener = try TCPAcceptor(
                listeningOn: NetworkAddress(host: "127.0.0.1", port: 0), security: secure ? .tls(tls!.server) : .insecure)
        } catch {
            return RunOutcome(fault: fault, succeeded: false, kind: "setup", violations: ["cannot listen: \(error)"], parameters: parameters)
        }
        defer { listener.close() }
        // A stream without record checksums is taken only over TLS unless the target says otherwise.
        let session = ReceiveSession(
            devices: targets, acceptor: listener,
            options: ReceiveOptions(acceptsNoRecordChecksums: true, handshakeTimeout: .seconds(10), idleTimeout: .seconds(10), commitTimeout: .seconds(10)))
        nonisolated(unsafe) var received: Result<ReceiveResult, VFIOError>?
        let done = DispatchSemaphore(value: 0)
        Thread {
            received = Result { () throws(VFIOError) in try session.run() }
            done.signal()
        }.start()
        let base = TCPConnector(to: NetworkAddress(host: "127.0.0.1", port: listener.port), security: secure ? .tls(tls!.client) : .insecure)
        let cutting = fault == .linkCut ? CuttingConnector(base, channel: faulty % channels, after: cutAfter) : nil
        let connector: any TransferConnecting = cutting ?? base
        let options = TransferOptions(
            channels: channels, checksums: checksums, handshakeTimeout: .seconds(10), idleTimeout: .seconds(10),
            switchoverAckTimeout: .seconds(10), loadTimeout: .seconds(20), commitTimeout: .seconds(10),
            pipeline: PipelineOptions(bufferSize: 2 << 20, bufferCount: 4, lockMemory: false))
        let sent = Result { () throws(VFIOError) in
            try Migration.send(sources, to: connector, options: options, save: SaveOptions(chunkSize: chunk, preCopy: preCopy))
        }
        done.wait()
        let tag = session.migrationID?.threadTag

        func state(_ device: VFIODevice) -> MigrationState? { try? device.currentState() }
        var kind = "success"
        switch (sent, received!) {
        case (.success(let s), .success):
            // A link cut after more bytes than its channel carried never happened.
            if !fault.survivable && !(fault == .linkCut && cutting?.didCut == false) {
                violations.append("the fault '\(fault.rawValue)' did not stop the migration")
            }
            if s.confirmation.committed != .running { violations.append("committed as \(String(describing: s.confirmation.committed))") }
            for d in 0..<deviceCount {
                if sources[d].mock!.stateDigest != targets[d].mock!.stateDigest { violations.append("device \(d): the target's state differs from the source's") }
                if state(targets[d]) != .running { violations.append("device \(d): target in \(String(describing: state(targets[d])))") }
                if state(sources[d]) != .stop { violations.append("device \(d): source in \(String(describing: state(sources[d]))) after the commit") }
            }
        case (.failure(let s), .failure(let t)):
            kind = "source \(s.code)\(s.errno.map { " " + $0.name } ?? ""), target \(t.code)\(t.errno.map { " " + $0.name } ?? "")"
            if fault.survivable { violations.append("a survivable fault failed the migration: source \(s); target \(t)") }
            if s.message.isEmpty || t.message.isEmpty { violations.append("an error without a message") }
            if !s.outcomes.allSatisfy(\.isRunning) || s.outcomes.count != deviceCount { violations.append("source outcomes: \(s.outcomes)") }
            let uncommitted = t.message.contains("did not commit")
            if uncommitted && !fault.mayLeaveTargetStopped { violations.append("the target was left stopped: \(t)") }
            for d in 0..<deviceCount {
                if state(sources[d]) != .running { violations.append("device \(d): source in \(String(describing: state(sources[d]))) after a failure") }
                if uncommitted {
                    if state(targets[d]) != .stop { violations.append("device \(d): an uncommitted target in \(String(describing: state(targets[d])))") }
                } else {
                    if state(targets[d]) != .running { violations.append("device \(d): target in \(String(describing: state(targets[d]))) after a failure") }
                    // Nothing partial: the target holds its old state, or (a device that
                    // finished loading before another failed) the source's whole state, which
                    // the emulator's reset leaves in place as it models no device memory wipe.
                    let now = targets[d].mock!.stateDigest
                    if now != before[d] && now != sources[d].mock!.stateDigest { violations.append("device \(d): a failed migration left a partial state in the target") }
                }
            }
        case (.success, .failure(let t)):
            violations.append("the source committed but the target failed: \(t)")
        case (.failure(let s), .success):
            violations.append("the target committed but the source failed: \(s)")
        }
        // The migration's own threads are gone once both ends returned.
        if let tag {
            let end = Date().addingTimeInterval(2)
            while Resources.threads(tagged: tag) > 0 && Date() < end { usleep(5_000) }
            let left = Resources.threads(tagged: tag)
            if left > 0 { violations.append("\(left) thread(s) of the migration still run") }
        }
        return RunOutcome(fault: fault, succeeded: kind == "success", kind: kind, violations: violations, parameters: parameters)
    }
}
