// Loopback plumbing for the live-migration tests: a receiver on its own thread, the source on
// the test's, fixture TLS credentials, and counts of this process's descriptors and threads for
// the leak checks.
import Foundation
import Testing
import VFIOMigration
import VFIOMockDevices

/// Runs `body` on a new thread; `join()` returns what it returned or threw.
final class Background<T: Sendable>: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var result: Result<T, VFIOError>?

    init(_ body: @escaping @Sendable () throws(VFIOError) -> T) {
        let thread = Thread { [self] in
            do throws(VFIOError) { result = .success(try body()) } catch { result = .failure(error) }
            done.signal()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }

    func join() -> Result<T, VFIOError> {
        done.wait()
        return result!
    }
}

enum TLSFixtures {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("VFIOSyscallsTests/Fixtures/tls").path

    static func server(allowedClients: [String] = []) throws -> TLSContext {
        try TLSContext(TLSConfiguration(role: .server, credentialsDirectory: "\(directory)/server", allowedClients: allowedClients))
    }

    static func client(_ name: String = "client") throws -> TLSContext {
        try TLSContext(TLSConfiguration(role: .client, credentialsDirectory: "\(directory)/\(name)", serverName: "receiver.test"))
    }
}

/// What one migration may leave behind in this process, counted so that other tests running
/// at the same time do not count: sockets of its loopback port (from /proc/net/tcp*, matched
/// by inode against this process's descriptors) and threads whose names carry its tag.
struct MigrationResources: Equatable, CustomStringConvertible {
    var sockets: Int
    var threads: Int

    static func now(port: UInt16, tag: String?) -> MigrationResources {
        var inodes: Set<String> = []
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            let text = (try? String(contentsOfFile: table, encoding: .utf8)) ?? ""
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ")
                guard fields.count > 9 else { continue }
                let ports = [fields[1], fields[2]].compactMap { $0.split(separator: ":").last.flatMap { UInt16($0, radix: 16) } }
                if ports.contains(port) { inodes.insert(String(fields[9])) }
            }
        }
        var sockets = 0
        for fd in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? [] {
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)"),
                  target.hasPrefix("socket:[") else { continue }
            if inodes.contains(String(target.dropFirst(8).dropLast())) { sockets += 1 }
        }
        var threads = 0
        if let tag {
            for task in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? [] {
                let name = (try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8)) ?? ""
                if name.trimmingCharacters(in: .whitespacesAndNewlines).hasSuffix(tag) { threads += 1 }
            }
        }
        return MigrationResources(sockets: sockets, threads: threads)
    }

    /// Waits (threads end a moment after they signalled) until nothing of the migration is left.
    static func settle(port: UInt16, tag: String?, within seconds: Double = 5) -> MigrationResources {
        let end = Date().addingTimeInterval(seconds)
        var current = now(port: port, tag: tag)
        while current != MigrationResources(sockets: 0, threads: 0) && Date() < end {
            Thread.sleep(forTimeInterval: 0.05)
            current = now(port: port, tag: tag)
        }
        return current
    }

    var description: String { "\(sockets) sockets, \(threads) threads" }
}

/// A receiver for `targets` on a loopback port, running on its own thread.
struct LoopbackTarget {
    let acceptor: TCPAcceptor
    let session: ReceiveSession
    let run: Background<ReceiveResult>
    var address: NetworkAddress { NetworkAddress(host: "127.0.0.1", port: acceptor.port) }
    /// What the migration's threads are named with, once the target assigned its id.
    var tag: String? { session.migrationID?.threadTag }

    /// Nothing of this migration left: no socket of its port open here, none of its threads.
    func leftBehind() -> MigrationResources { MigrationResources.settle(port: acceptor.port, tag: tag) }

    init(
        _ targets: [VFIODevice], security: TransportSecurity = .insecure, options: ReceiveOptions = ReceiveOptions(),
        leaving final: TargetFinalState = .running, cancellation: MigrationCancellation? = nil
    ) throws {
        let acceptor = try TCPAcceptor(listeningOn: NetworkAddress(host: "127.0.0.1", port: 0), security: security)
        self.acceptor = acceptor
        let session = ReceiveSession(devices: targets, acceptor: acceptor, options: options, cancellation: cancellation)
        self.session = session
        run = Background { () throws(VFIOError) in try session.run(leaving: final) }
    }

    func finish() -> Result<ReceiveResult, VFIOError> {
        let result = run.join()
        acceptor.close()
        return result
    }
}

/// Quick settings for tests: short timeouts, small buffers.
extension TransferOptions {
    static func test(channels: Int = 1, checksums: RecordChecksums = .automatic) -> TransferOptions {
        TransferOptions(
            channels: channels, checksums: checksums, handshakeTimeout: .seconds(10), idleTimeout: .seconds(10),
            switchoverAckTimeout: .seconds(10), loadTimeout: .seconds(20), commitTimeout: .seconds(10),
            pipeline: PipelineOptions(bufferSize: 2 << 20, bufferCount: 6, lockMemory: false))
    }
}

extension SaveOptions {
    static let test = SaveOptions(chunkSize: 256 << 10)
}
