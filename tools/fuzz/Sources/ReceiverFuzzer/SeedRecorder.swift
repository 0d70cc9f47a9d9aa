// The receiver fuzzer's seed inputs: real migrations between emulated devices over loopback
// TCP, every byte the receiver read recorded per connection, stored in the fuzzer's input
// layout (ReceiverHarness.swift): one, two devices; one to three channels; with and without
// pre-copy (and its acknowledgements) and record checksums; whole and short reads; guest
// memory in each of the harness's region layouts (page records on one and several channels).
//   .build/release/ReceiverFuzzer --make-seeds corpus-receiver
import Foundation
import VFIOMigration
import VFIOMockDevices

/// Keeps every byte read from a connection.
final class Tap: ByteStreamConnection, @unchecked Sendable {
    let inner: any ByteStreamConnection
    private let lock = NSLock()
    private var seen: [UInt8] = []
    init(_ inner: any ByteStreamConnection) { self.inner = inner }
    var bytes: [UInt8] { lock.withLock { seen } }
    var description: String { inner.description }
    var peerAddress: String { inner.peerAddress }
    func read(into buffer: IOBuffer, range: Range<Int>) throws -> Int {
        let count = try inner.read(into: buffer, range: range)
        lock.withLock { seen += buffer.bytes(range.lowerBound..<(range.lowerBound + count)) }
        return count
    }
    func write(_ buffer: IOBuffer, range: Range<Int>) throws { try inner.write(buffer, range: range) }
    func write(gather slices: [BufferSlice]) throws { try inner.write(gather: slices) }
    func shutdownWrite() throws { try inner.shutdownWrite() }
    func close() throws { try inner.close() }
    func interrupt() { inner.interrupt() }
    func setIdleTimeout(_ timeout: Duration?) throws { try inner.setIdleTimeout(timeout) }
}

final class TappingAcceptor: TransferAccepting, @unchecked Sendable {
    let base: TCPAcceptor
    private(set) var taps: [Tap] = []
    init(_ base: TCPAcceptor) { self.base = base }
    var description: String { base.description }
    var isAuthenticated: Bool { base.isAuthenticated }
    func accept(timeout: Duration) throws(VFIOError) -> ConnectionChannel {
        let tap = Tap(try base.accept(timeout: timeout).connection)
        taps.append(tap)
        return ConnectionChannel(tap)
    }
}

struct Seed {
    var name: String
    var devices: Int
    var channels: Int
    var preCopy: Bool
    var checksums: Bool
    /// Configuration bits 2-4: reads of at most 2^(2r-1) bytes (0: whole).
    var reads = 0
    /// Configuration bits 6-7: the guest memory layout (ReceiverHarness.layouts; 0: none).
    var memory = 0
}

/// Source memory of `layout` with every other page written (the rest stay zero).
func sourceMemory(_ layout: Int) -> GuestMemory {
    let memory = ReceiverHarness.memory(ReceiverHarness.layouts[layout], name: "source")
    for region in memory.regions {
        for page in stride(from: 0, to: region.pageCount, by: 2) {
            region.buffer.write([UInt8](repeating: UInt8(truncatingIfNeeded: 0x31 &+ page &* 7), count: 4096), at: page * 4096)
        }
    }
    return memory
}

func record(_ seed: Seed, into directory: String) throws {
    let environment = ReceiverHarness.environment
    let spec = ReceiverHarness.spec
    let sources = try (0..<seed.devices).map { try environment.open("mock:\(seed.name)-s\($0)?\(spec)&seed=\(7 + $0)") }
    let targets = try (0..<seed.devices).map { try environment.open("mock:\(seed.name)-t\($0)?\(spec)") }
    let listener = try TCPAcceptor(listeningOn: NetworkAddress(host: "127.0.0.1", port: 0), security: .insecure)
    defer { listener.close() }
    let tapping = TappingAcceptor(listener)
    let source = seed.memory == 0 ? nil : sourceMemory(seed.memory)
    for device in sources { for region in source?.regions ?? [] { try device.container.map(region) } }
    let target = seed.memory == 0 ? nil : ReceiverHarness.memory(ReceiverHarness.layouts[seed.memory], name: "seed target")
    let receiving = ReceiveSession(
        devices: targets, acceptor: tapping, options: ReceiveOptions(acceptsNoRecordChecksums: !seed.checksums), memory: target)
    let done = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var received: Result<ReceiveResult, VFIOError>?
    Thread {
        received = Result { () throws(VFIOError) in try receiving.run() }
        done.signal()
    }.start()
    let options = TransferOptions(
        channels: seed.channels, checksums: seed.checksums ? .on : .off,
        pipeline: PipelineOptions(bufferSize: 64 << 10, bufferCount: 4, lockMemory: false))
    try Migration.send(
        sources, to: TCPConnector(to: NetworkAddress(host: "127.0.0.1", port: listener.port), security: .insecure),
        options: options, save: SaveOptions(chunkSize: seed.memory == 0 ? 4096 : 16384, preCopy: seed.preCopy), memory: source)
    done.wait()
    _ = try received!.get()
    if let source, let target {
        for (a, b) in zip(source.regions, target.regions) {
            precondition(a.buffer.bytes(0..<Int(a.length)) == b.buffer.bytes(0..<Int(b.length)), "the seed's memory did not arrive")
        }
    }

    var input: [UInt8] = [UInt8(seed.devices == 2 ? 1 : 0) | (seed.checksums ? 0 : 2) | UInt8(seed.reads << 2) | UInt8(seed.memory << 6)]
    for tap in tapping.taps {
        let bytes = tap.bytes
        precondition(bytes.count <= 0xFFFF, "a seed connection of \(bytes.count) bytes does not fit a segment")
        input += [UInt8(bytes.count & 0xFF), UInt8(bytes.count >> 8)] + bytes
    }
    try Data(input).write(to: URL(fileURLWithPath: "\(directory)/\(seed.name).bin"))
}

/// Records every seed into `directory`.
func makeSeeds(in directory: String) throws {
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    for seed in [
        Seed(name: "one-device-stop-copy", devices: 1, channels: 1, preCopy: false, checksums: true),
        Seed(name: "one-device-pre-copy", devices: 1, channels: 1, preCopy: true, checksums: true),
        Seed(name: "one-device-two-channels", devices: 1, channels: 2, preCopy: true, checksums: true),
        Seed(name: "one-device-no-checksums", devices: 1, channels: 1, preCopy: false, checksums: false),
        Seed(name: "two-devices-two-channels", devices: 2, channels: 2, preCopy: true, checksums: true),
        Seed(name: "two-devices-three-channels-no-checksums", devices: 2, channels: 3, preCopy: false, checksums: false),
        Seed(name: "one-device-short-reads", devices: 1, channels: 1, preCopy: true, checksums: true, reads: 3),
        Seed(name: "memory-one-region", devices: 1, channels: 1, preCopy: true, checksums: true, memory: 1),
        Seed(name: "memory-two-regions-two-channels", devices: 1, channels: 2, preCopy: true, checksums: true, memory: 2),
        Seed(name: "memory-three-regions-three-channels-two-devices", devices: 2, channels: 3, preCopy: false, checksums: false, memory: 3),
    ] {
        try record(seed, into: directory)
        print("wrote \(directory)/\(seed.name).bin")
    }
}
