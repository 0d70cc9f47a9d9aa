// Throughput over time, per channel: byte counters the data path's channels bump as they
// write, and a thread that reads them at a fixed interval. The counters cost one atomic add
// per write call (megabytes), so a sampled run moves at the speed of an unsampled one.
import Foundation
import Synchronization
import VFIOBuffers
import VFIOCore
import VFIOKernel

/// Bytes a channel has written so far, readable from any thread.
public final class ByteCounter: Sendable {
    private let total = Atomic<UInt64>(0)
    public init() {}
    public func add(_ n: Int) { total.add(UInt64(n), ordering: .relaxed) }
    public var value: UInt64 { total.load(ordering: .relaxed) }
}

/// One reading of every channel's counter.
public struct ThroughputSample: Sendable, Hashable, Codable {
    /// Seconds since the sampler started.
    public var time: Double
    public var bytes: [UInt64]
}

public final class ThroughputSampler: @unchecked Sendable {
    public let counters: [ByteCounter]
    public let interval: Duration
    private let lock = NSLock()
    private var samples: [ThroughputSample] = []
    private var stopped = false
    private let done = DispatchSemaphore(value: 0)

    /// Starts sampling `counters` every `interval` at once.
    public init(_ counters: [ByteCounter], interval: Duration = .milliseconds(10)) {
        self.counters = counters
        self.interval = interval
        let thread = Thread { [self] in run() }
        thread.name = "vfio-bench-sampler"
        thread.start()
    }

    private func run() {
        let clock = ContinuousClock()
        let start = clock.now
        var next = start
        while true {
            let sample = ThroughputSample(time: (clock.now - start).seconds, bytes: counters.map(\.value))
            let stop = lock.withLock { () -> Bool in
                samples.append(sample)
                return stopped
            }
            if stop { break }
            next += interval
            let wait = next - clock.now
            if wait > .zero { Thread.sleep(forTimeInterval: wait.seconds) }
        }
        done.signal()
    }

    /// Stops (after one last reading) and returns every reading.
    public func stop() -> [ThroughputSample] {
        let first = lock.withLock { () -> Bool in
            defer { stopped = true }
            return !stopped
        }
        if first { done.wait() }
        return lock.withLock { samples }
    }
}

/// A sink that counts what passes through it.
final class CountingSink: ByteSink {
    let inner: any ByteSink
    let counter: ByteCounter
    init(_ inner: any ByteSink, counter: ByteCounter) {
        self.inner = inner
        self.counter = counter
    }
    var name: String { inner.name }
    func write(_ buffer: IOBuffer, _ range: Range<Int>) throws(VFIOError) {
        try inner.write(buffer, range)
        counter.add(range.count)
    }
    func write(gathering slices: [BufferSlice]) throws(VFIOError) {
        try inner.write(gathering: slices)
        counter.add(slices.reduce(0) { $0 + $1.range.count })
    }
    func flush() throws(VFIOError) { try inner.flush() }
}

/// A connection that counts what it sends.
final class CountingConnection: ByteStreamConnection, @unchecked Sendable {
    let inner: any ByteStreamConnection
    let counter: ByteCounter
    init(_ inner: any ByteStreamConnection, counter: ByteCounter) {
        self.inner = inner
        self.counter = counter
    }
    var description: String { inner.description }
    var peerAddress: String { inner.peerAddress }
    func read(into buffer: IOBuffer, range: Range<Int>) throws -> Int { try inner.read(into: buffer, range: range) }
    func write(_ buffer: IOBuffer, range: Range<Int>) throws {
        try inner.write(buffer, range: range)
        counter.add(range.count)
    }
    func write(gather slices: [BufferSlice]) throws {
        try inner.write(gather: slices)
        counter.add(slices.reduce(0) { $0 + $1.range.count })
    }
    func shutdownWrite() throws { try inner.shutdownWrite() }
    func close() throws { try inner.close() }
    func interrupt() { inner.interrupt() }
    func setIdleTimeout(_ timeout: Duration?) throws { try inner.setIdleTimeout(timeout) }
}

/// Counts each data connection a connector opens (the first one is the control connection).
public final class CountingConnector: TransferConnecting, @unchecked Sendable {
    let base: any TransferConnecting
    public let counters: [ByteCounter]
    private let lock = NSLock()
    private var opened = 0

    public init(_ base: any TransferConnecting, channels: Int) {
        self.base = base
        counters = (0..<channels).map { _ in ByteCounter() }
    }

    public var description: String { base.description }
    public var isAuthenticated: Bool { base.isAuthenticated }

    public func connect() throws(VFIOError) -> ConnectionChannel {
        let channel = try base.connect()
        let index = lock.withLock { defer { opened += 1 }; return opened }
        guard index > 0 && index <= counters.count else { return channel }
        return ConnectionChannel(CountingConnection(channel.connection, counter: counters[index - 1]))
    }
}
