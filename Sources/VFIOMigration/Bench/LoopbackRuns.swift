// Migrations over loopback TCP inside one process, and their raw baseline. The engine run is
// `Migration.send` to `Migration.receive` on a thread of ours, exactly as two hosts run them;
// the raw run moves the same devices' bytes over one connection per device pair with a plain
// read/write loop at each end (a thread per end, the chunk size as the buffer). Both are timed
// from before the first connection until the last target holds its state, handshakes included.
import Foundation
import VFIOCore
import VFIOKernel

/// How the loopback connections are made.
public enum BenchTransport: Sendable {
    case plain
    /// TLS 1.3 with certificates both ways: the receiver's context and the sender's.
    case tls(server: TLSContext, client: TLSContext)

    var server: TransportSecurity {
        switch self {
        case .plain: .insecure
        case .tls(let server, _): .tls(server)
        }
    }

    var client: TransportSecurity {
        switch self {
        case .plain: .insecure
        case .tls(_, let client): .tls(client)
        }
    }

    public var isTLS: Bool { if case .tls = self { true } else { false } }
}

/// What one engine migration over loopback did.
public struct LoopbackMigration: Sendable {
    public var timing: BenchTiming
    public var send: Migration.SendResult
    public var receive: ReceiveResult
}

public enum LoopbackRun {
    static let loopback = "127.0.0.1"

    /// Migrates `sources` into `targets` with the engine over `channels` connections; the
    /// sources, left in STOP after the commit, are put back in RUNNING (outside the timing).
    /// `wrap` may stand between the engine and its connector (to sample the channels).
    public static func engine(
        _ sources: [VFIODevice], into targets: [VFIODevice], channels: Int, transport: BenchTransport = .plain,
        save: SaveOptions, policy: any ConvergencePolicy = PendingBytesPolicy(),
        wrap: ((any TransferConnecting) -> any TransferConnecting)? = nil
    ) throws(VFIOError) -> LoopbackMigration {
        let acceptor = try TCPAcceptor(listeningOn: NetworkAddress(host: loopback, port: 0), security: transport.server)
        defer { acceptor.close() }
        let base = TCPConnector(to: NetworkAddress(host: loopback, port: acceptor.port), security: transport.client)
        let connector = wrap?(base) ?? base
        let options = TransferOptions(channels: channels, handshakeTimeout: .seconds(20), idleTimeout: .seconds(30))
        let receiveOptions = ReceiveOptions(handshakeTimeout: .seconds(20), idleTimeout: .seconds(30))
        let clock = ContinuousClock()
        let start = clock.now
        let receiver = BenchThread { () throws(VFIOError) -> ReceiveResult in
            try Migration.receive(targets, from: acceptor, options: receiveOptions, leaving: .running)
        }
        let sent: Migration.SendResult
        do {
            sent = try Migration.send(sources, to: connector, options: options, save: save, policy: policy)
        } catch {
            acceptor.close()
            _ = receiver.join()
            throw error
        }
        let received = try receiver.join().get()
        let seconds = (clock.now - start).seconds
        try RawCopy.resume(sources)
        return LoopbackMigration(timing: BenchTiming(bytes: sent.report.totalBytes, seconds: seconds), send: sent, receive: received)
    }

    /// The raw socket copy: connection i carries `sources[i]`'s STOP_COPY state, read in
    /// `chunkSize` reads and written as it came, into `targets[i]`, one sender and one
    /// receiver thread per connection.
    public static func raw(
        _ sources: [VFIODevice], into targets: [VFIODevice], transport: BenchTransport = .plain, chunkSize: Int
    ) throws(VFIOError) -> BenchTiming {
        precondition(sources.count == targets.count && !sources.isEmpty, "one target per source")
        let acceptor = try TCPAcceptor(listeningOn: NetworkAddress(host: loopback, port: 0), security: transport.server)
        defer { acceptor.close() }
        let connector = TCPConnector(to: NetworkAddress(host: loopback, port: acceptor.port), security: transport.client)
        let count = sources.count
        let clock = ContinuousClock()
        let start = clock.now
        // Connected in order, accepted in the same order (TLS handshakes need both ends at once).
        let accepting = BenchThread { () throws(VFIOError) -> [ConnectionChannel] in
            var accepted: [ConnectionChannel] = []
            for _ in 0..<count { accepted.append(try acceptor.accept(timeout: .seconds(20))) }
            return accepted
        }
        var outgoing: [ConnectionChannel] = []
        do throws(VFIOError) {
            for _ in 0..<count { outgoing.append(try connector.connect()) }
        } catch {
            acceptor.close()
            for c in outgoing { c.close() }
            if case .success(let accepted) = accepting.join() { for c in accepted { c.close() } }
            throw error
        }
        let incoming = try accepting.join().get()
        defer { for c in outgoing + incoming { c.close() } }
        var workers: [BenchThread<UInt64>] = []
        for i in 0..<count {
            let (source, target, out, into) = (sources[i], targets[i], outgoing[i], incoming[i])
            workers.append(BenchThread { () throws(VFIOError) -> UInt64 in
                do throws(VFIOError) {
                    return try RawCopy.load(target, from: into, chunkSize: chunkSize)
                } catch {
                    out.interrupt()
                    throw error
                }
            })
            workers.append(BenchThread { () throws(VFIOError) -> UInt64 in
                do throws(VFIOError) {
                    let n = try RawCopy.save(source, into: out, chunkSize: chunkSize)
                    try out.finishSending()
                    return n
                } catch {
                    into.interrupt()
                    throw error
                }
            })
        }
        var received: UInt64 = 0
        var failure: VFIOError?
        for (i, worker) in workers.enumerated() {
            switch worker.join() {
            case .success(let n): if i % 2 == 0 { received += n }
            case .failure(let error): failure = failure ?? error
            }
        }
        if let failure { throw failure }
        return BenchTiming(bytes: received, seconds: (clock.now - start).seconds)
    }
}

/// A body run on a thread of its own, joined for its result.
final class BenchThread<Value>: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var result: Result<Value, VFIOError>?

    init(_ body: @escaping @Sendable () throws(VFIOError) -> Value) {
        let thread = Thread { [self] in
            do throws(VFIOError) { result = .success(try body()) } catch { result = .failure(error) }
            done.signal()
        }
        thread.name = "vfio-bench"
        thread.start()
    }

    /// Waits for the body once; later calls return the same result.
    func join() -> Result<Value, VFIOError> {
        if !joined {
            done.wait()
            joined = true
        }
        return result!
    }

    private var joined = false
}
