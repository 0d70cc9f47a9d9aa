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

/// Descriptors and threads of this process, to see that a migration left none behind.
struct ProcessResources: Equatable, CustomStringConvertible {
    var descriptors: Int
    var threads: Int

    static func now() -> ProcessResources {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").count) ?? -1
        return ProcessResources(descriptors: fds, threads: tasks)
    }

    /// Waits (threads end a moment after they signalled) until nothing is left over `baseline`.
    static func settle(to baseline: ProcessResources, within seconds: Double = 5) -> ProcessResources {
        let end = Date().addingTimeInterval(seconds)
        var current = now()
        while (current.descriptors > baseline.descriptors || current.threads > baseline.threads) && Date() < end {
            Thread.sleep(forTimeInterval: 0.05)
            current = now()
        }
        return current
    }

    var description: String { "\(descriptors) descriptors, \(threads) threads" }
}

/// A receiver for `targets` on a loopback port, running on its own thread.
struct LoopbackTarget {
    let acceptor: TCPAcceptor
    let run: Background<ReceiveResult>
    var address: NetworkAddress { NetworkAddress(host: "127.0.0.1", port: acceptor.port) }

    init(
        _ targets: [VFIODevice], security: TransportSecurity = .insecure, options: ReceiveOptions = ReceiveOptions(),
        leaving final: TargetFinalState = .running, cancellation: MigrationCancellation? = nil
    ) throws {
        let acceptor = try TCPAcceptor(listeningOn: NetworkAddress(host: "127.0.0.1", port: 0), security: security)
        self.acceptor = acceptor
        let devices = targets
        run = Background { () throws(VFIOError) in
            try Migration.receive(devices, from: acceptor, options: options, leaving: final, cancellation: cancellation)
        }
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
