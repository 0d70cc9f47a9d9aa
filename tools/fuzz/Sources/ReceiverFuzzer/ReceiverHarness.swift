// One fuzz input through the receiver's whole input path: ReceiveSession over the in-memory
// listener (control connection: prefix, proposal, commit; then the data channels: headers,
// records, reassembly over several channels), into emulated target devices. Whatever the
// bytes, the receiver must not crash or hang, must speak valid protocol back, and must leave
// its devices as it says: RUNNING and untouched after any failure before it confirmed the
// load, STOP with the load after a confirmation without a commit, RUNNING with a stream that
// verifies after a success (a target that finished loading before another failed may keep
// what it loaded: the emulator's reset does not wipe device memory).
//
// Input: byte 0 is the configuration, then segments, each a u16 length (little-endian) and
// that many bytes: segment 0 is what the source sends on the control connection, each later
// one (at most 8) a data connection.
//   bit 0      two target devices (otherwise one)
//   bit 1      the target accepts streams without record checksums
//   bits 2-4   r: each read returns at most 2^(2r-1) bytes (r = 0: as many as asked)
//   bit 5      feed the bytes as they are (otherwise every CRC is recomputed first)
//   bits 6-7   the target's guest memory (page records land in it): 0 none, 1 one region of
//              8 pages, 2 two regions of 4, 3 three regions (two adjacent, one apart)
import Foundation
import VFIOMigration
import VFIOMockDevices
import VFIOStream

enum ReceiverHarness {
    /// Same shape as the seeds' sources (SeedRecorder.swift); two devices migrate together only with P2P.
    static let spec = "state=16KiB&block-size=4KiB&flags=stop-copy,p2p,pre-copy"
    nonisolated(unsafe) static let environment = DeviceEnvironment.withMockDevices()
    nonisolated(unsafe) static let one: [VFIODevice] = open(["mock:t0?\(spec)&seed=1"])
    nonisolated(unsafe) static let two: [VFIODevice] = open(["mock:t1?\(spec)&seed=1", "mock:t2?\(spec)&seed=2"])

    /// The region tables bits 6-7 choose from (index 0: no memory); the seeds' sources use
    /// the same layouts.
    static let layouts: [[(iova: UInt64, pages: Int)]] = [
        [], [(0x10_0000, 16)], [(0x10_0000, 8), (0x20_0000, 8)], [(0x10_0000, 4), (0x10_4000, 4), (0x40_0000, 8)],
    ]
    nonisolated(unsafe) static let memories: [GuestMemory?] = layouts.map { $0.isEmpty ? nil : memory($0, name: "target") }

    static func memory(_ layout: [(iova: UInt64, pages: Int)], name: String) -> GuestMemory {
        do {
            return try GuestMemory(layout.enumerated().map { index, region throws(VFIOError) in
                try GuestMemoryRegion(
                    iova: region.iova, length: UInt64(region.pages * 4096), buffer: IOBuffer(capacity: region.pages * 4096), writable: true,
                    name: "\(name) ram\(index)")
            })
        } catch {
            preconditionFailure("cannot make the fuzz memory \(layout): \(error)")
        }
    }

    private static func open(_ specs: [String]) -> [VFIODevice] {
        specs.map { spec in
            do { return try environment.open(spec) } catch { preconditionFailure("cannot open \(spec): \(error)") }
        }
    }

    /// FUZZ_RECEIVER_VERBOSE=1 prints each input's outcome (to check what the seeds reach).
    static let verbose = ProcessInfo.processInfo.environment["FUZZ_RECEIVER_VERBOSE"] != nil

    static func segments(_ bytes: ArraySlice<UInt8>) -> [[UInt8]] {
        var result: [[UInt8]] = []
        var position = bytes.startIndex
        while position + 2 <= bytes.endIndex && result.count < 9 {
            let length = Int(bytes[position]) | Int(bytes[position + 1]) << 8
            let start = position + 2
            let end = min(bytes.endIndex, start + length)
            result.append(Array(bytes[start..<end]))
            position = end
        }
        return result
    }

    static func run(_ input: [UInt8]) {
        guard let config = input.first else { return }
        let parts = segments(input.dropFirst())
        guard let control = parts.first else { return }
        let targets = config & 1 == 0 ? one : two
        // A confirmed load without a commit leaves the devices stopped: start from RUNNING.
        for device in targets where (try? device.currentState()) != .running { device.mock!.reset() }
        for device in targets { device.mock!.clearArcHistory() }
        let before = targets.map { $0.mock!.stateDigest }
        let r = Int(config >> 2) & 7
        let acceptor = MemoryAcceptor(
            control: control, channels: Array(parts.dropFirst()), most: r == 0 ? 0 : 1 << (2 * r - 1), reseal: config & 0x20 == 0)
        let options = ReceiveOptions(
            maxPayload: 64 << 10, maxChannels: 8, acceptsNoRecordChecksums: config & 2 != 0,
            handshakeTimeout: .seconds(60), idleTimeout: .seconds(60), commitTimeout: .seconds(60), authenticationTimeout: .seconds(60))
        let session = ReceiveSession(devices: targets, acceptor: acceptor, options: options, memory: memories[Int(config >> 6)])
        let result = Result { () throws(VFIOError) in try session.run(leaving: .running) }
        if verbose { print("receiver: \(result.map { "loaded \($0.metrics.channels.count) channel(s), \($0.report.memory?.bytes ?? 0) memory bytes" })") }
        check(result, spoken: spoken(acceptor.control.written), channels: acceptor.handedOut, targets: targets, before: before)
    }

    /// What the receiver wrote on the control connection: it must always be valid protocol.
    static func spoken(_ written: [UInt8]) -> [ControlMessage] {
        guard !written.isEmpty else { return [] }
        precondition(written.count >= ControlFormat.prefixSize, "the receiver wrote a cut prefix")
        var decoder = ControlDecoder(role: .source)
        var messages: [ControlMessage] = []
        do {
            try decoder.decodePrefix(Array(written[0..<ControlFormat.prefixSize]))
            var position = ControlFormat.prefixSize
            while position < written.count {
                let header = try decoder.decodeMessageHeader(Array(written[position..<(position + ControlFormat.messageHeaderSize)]))
                let end = position + ControlFormat.messageHeaderSize + header.payloadLength
                guard let message = try decoder.decodeMessage(header, payload: Array(written[(position + ControlFormat.messageHeaderSize)..<end])) else {
                    preconditionFailure("the receiver wrote a message of unknown type \(header.rawType)")
                }
                messages.append(message)
                position = end
            }
        } catch {
            preconditionFailure("the receiver wrote invalid control bytes: \(error)")
        }
        return messages
    }

    static func check(
        _ result: Result<ReceiveResult, VFIOError>, spoken: [ControlMessage], channels: [[UInt8]], targets: [VFIODevice], before: [UInt64]
    ) {
        let types = spoken.map(\.type)
        let states = targets.map { try? $0.currentState() }
        precondition(types.first.map { $0 == .accept || $0 == .refuse } ?? true, "the receiver's first message was \(types)")
        precondition(types.filter { $0 == .loaded }.count <= 1 && types.filter { $0 == .failed }.count <= 1, "\(types)")
        for case .switchoverAck(let device, _, _) in spoken { precondition(Int(device) < targets.count, "an acknowledgement for device \(device)") }
        switch result {
        case .success(let received):
            precondition(types.suffix(2) == [.loaded, .committed], "a success ended with \(types)")
            precondition(states.allSatisfy { $0 == .running }, "a success left the targets in \(states)")
            precondition(received.report.devices.count == targets.count)
            // Whatever was accepted was a valid stream: as many handed-out streams verify on
            // their own as channels were loaded.
            let limits = StreamLimits(maxPayload: 64 << 10, acceptsNoRecordChecksums: true)
            let valid = channels.filter { (try? StreamReader.verify($0, limits: limits)) != nil }.count
            precondition(valid >= received.metrics.channels.count, "\(received.metrics.channels.count) channels loaded, \(valid) verify")
        case .failure(let error):
            _ = error.description
            // The harness drives the API as documented: a misuse error from inside the receiver
            // (a write into a load another failure aborted) would hide the real cause.
            precondition(!(error.code == .invalidUse && error.message.contains(" called in phase ")), "the cause was hidden: \(error)")
            precondition(!types.contains(.committed), "a failure after committed: \(error)")
            precondition(error.outcomes.isEmpty || error.outcomes.count == targets.count, "\(error)")
            if types.contains(.loaded) {
                // Confirmed, then no commit: the devices keep the state, stopped.
                precondition(error.message.contains("did not commit"), "after loaded: \(error)")
                precondition(states.allSatisfy { $0 == .stop }, "an uncommitted load left the targets in \(states)")
            } else {
                precondition(states.allSatisfy { $0 == .running }, "a failed receive left the targets in \(states): \(error)")
                // A device that finished loading (RESUMING -> STOP) before another failed keeps
                // what it loaded through its reset: the emulator's reset does not wipe device
                // memory. Any other device must hold its old state.
                for (device, old) in zip(targets, before) where device.mock!.stateDigest != old {
                    let loaded = device.mock!.arcHistory.contains { $0.from == .resuming && $0.to == .stop && $0.errno == nil }
                    precondition(loaded, "a failed receive changed the state of \(device): \(error)")
                }
                if types.contains(.accept) { precondition(types.last == .failed, "the source was not told: \(types), \(error)") }
            }
        }
    }
}
