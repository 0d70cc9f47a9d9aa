// Section 4: the transport over loopback. Plain TCP against TLS 1.3 (AES-128-GCM and
// AES-256-GCM, mutual authentication with the test credentials), one connection, then 1, 2
// and 4 connections sharing the same bytes. 1 MiB writes and reads, the sender and the
// receiver of each connection on their own threads, the handshake outside the timing.
//
// Two readings per variant: wall-clock GB/s as it ran, and each end's CPU time per byte
// (getrusage per thread). On a shared machine the wall clock says how the scheduler treated
// the run; the busier end's CPU time says what the bytes cost, so "bound" (bytes over that
// end's CPU seconds) is the rate with a core per end, as two hosts have.
import Foundation
import VFIOBuffers
import VFIOSyscalls

struct TransportRun {
    var seconds: Double
    var senderCPU: Double
    var receiverCPU: Double
}

enum TransportVariant: Hashable, CustomStringConvertible {
    case plain
    case tls(TLSCipherSuite)

    var description: String {
        switch self {
        case .plain: "plain TCP"
        case .tls(.aes128GCM): "TLS 1.3 AES-128-GCM"
        case .tls(.aes256GCM): "TLS 1.3 AES-256-GCM"
        case .tls(.chacha20Poly1305): "TLS 1.3 ChaCha20-Poly1305"
        }
    }
}

struct TransportResult {
    /// Median wall-clock ratio TLS AES-128-GCM / plain, one connection.
    var wallRatio: Double
    /// Median ratio of the CPU-bound rates (a core per end), one connection.
    var boundRatio: Double
}

/// The committed test credentials (QEMU layout), found from this file's place in the repository.
private let credentials = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Tests/VFIOSyscallsTests/Fixtures/tls").path

/// CPU seconds the calling thread has used (RUSAGE_THREAD is Linux's 1).
private func threadCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(1), &usage)
    let user = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
    let system = Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
    return user + system
}

/// Runs `body` on a new thread; the returned semaphore is signalled when it is done.
private func onThread(_ body: @escaping @Sendable () -> Void) -> DispatchSemaphore {
    let done = DispatchSemaphore(value: 0)
    let thread = Thread {
        body()
        done.signal()
    }
    thread.start()
    return done
}

private final class Shared<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: T
    init(_ value: T) { stored = value }
    func update(_ change: (inout T) -> Void) { lock.withLock { change(&stored) } }
    var value: T { lock.withLock { stored } }
}

private func contexts(_ variant: TransportVariant) throws -> (server: TLSContext, client: TLSContext)? {
    guard case .tls(let suite) = variant else { return nil }
    let server = try TLSContext(TLSConfiguration(role: .server, credentialsDirectory: credentials + "/server", cipherSuites: [suite]))
    let client = try TLSContext(TLSConfiguration(
        role: .client, credentialsDirectory: credentials + "/client", serverName: "receiver.test", cipherSuites: [suite]))
    return (server, client)
}

/// `bytes` split evenly over `connections` connections of `variant`, all moving at once.
func transfer(_ variant: TransportVariant, connections: Int, bytes: Int) throws -> TransportRun {
    let chunk = 1 << 20
    let listener = try TCPListener.bind(NetworkAddress(host: "127.0.0.1", port: 0), backlog: 16)
    let address = NetworkAddress(host: "127.0.0.1", port: listener.port)
    let tls = try contexts(variant)
    var pairs: [(receiver: any ByteStreamConnection, sender: any ByteStreamConnection)] = []
    for _ in 0..<connections {
        let accepted = Shared<Result<any ByteStreamConnection, any Error>?>(nil)
        let done = onThread {
            let result = Result { () throws -> any ByteStreamConnection in
                let tcp = try listener.accept(timeout: .seconds(10))
                return try tls.map { try TLSConnection(over: tcp, context: $0.server) } ?? tcp
            }
            accepted.update { $0 = result }
        }
        let tcp = try TCPConnection.connect(to: address, timeout: .seconds(5))
        let sender: any ByteStreamConnection = try tls.map { try TLSConnection(over: tcp, context: $0.client) } ?? tcp
        done.wait()
        pairs.append((try accepted.value!.get(), sender))
    }
    let perConnection = bytes / connections / chunk * chunk
    let senderCPU = Shared(0.0)
    let receiverCPU = Shared(0.0)
    let failures = Shared<[String]>([])
    let start = ContinuousClock.now
    var waits: [DispatchSemaphore] = []
    for (receiver, sender) in pairs {
        waits.append(onThread {
            let cpu = threadCPUSeconds()
            let buffer = IOBuffer(capacity: chunk)
            var received = 0
            do {
                while received < perConnection {
                    let n = try receiver.read(into: buffer, range: 0..<chunk)
                    if n == 0 { throw TransportBenchError.endedEarly(received) }
                    received += n
                }
            } catch {
                failures.update { $0.append("receiver: \(error)") }
            }
            let used = threadCPUSeconds() - cpu
            receiverCPU.update { $0 += used }
        })
        waits.append(onThread {
            let cpu = threadCPUSeconds()
            let buffer = IOBuffer(capacity: chunk)
            buffer.write((0..<chunk).map { UInt8(truncatingIfNeeded: $0 &* 7) }, at: 0)
            do {
                for _ in 0..<perConnection / chunk { try sender.write(buffer, range: 0..<chunk) }
            } catch {
                failures.update { $0.append("sender: \(error)") }
            }
            let used = threadCPUSeconds() - cpu
            senderCPU.update { $0 += used }
        })
    }
    for wait in waits { wait.wait() }
    let elapsed = seconds(ContinuousClock.now - start)
    if let failure = failures.value.first { fail("transport comparison failed (\(variant), \(connections) connections): \(failure)") }
    for (receiver, sender) in pairs {
        try sender.close()
        try receiver.close()
    }
    return TransportRun(seconds: elapsed, senderCPU: senderCPU.value, receiverCPU: receiverCPU.value)
}

enum TransportBenchError: Error { case endedEarly(Int) }

func measureTransport(bytes: Int, repetitions: Int) throws -> TransportResult {
    let mib = bytes >> 20
    let single: [TransportVariant] = [.plain, .tls(.aes128GCM), .tls(.aes256GCM)]
    _ = try transfer(.tls(.aes128GCM), connections: 1, bytes: 64 << 20) // warm-up
    var runs: [TransportVariant: [TransportRun]] = [:]
    var wallRatios: [TransportVariant: [Double]] = [:]
    var boundRatios: [TransportVariant: [Double]] = [:]
    func bound(_ run: TransportRun) -> Double { Double(bytes) / max(run.senderCPU, run.receiverCPU) }
    for repetition in 0..<repetitions {
        var this: [TransportVariant: TransportRun] = [:]
        for variant in order(single, repetition: repetition) { this[variant] = try transfer(variant, connections: 1, bytes: bytes) }
        for (variant, run) in this {
            runs[variant, default: []].append(run)
            wallRatios[variant, default: []].append(this[.plain]!.seconds / run.seconds)
            boundRatios[variant, default: []].append(bound(run) / bound(this[.plain]!))
        }
    }
    let kernelTLS = KernelTLSStatus.availableULPs.contains("tls") ? "the kernel lists the tls ULP" : "no tls ULP in this kernel: user-space records"
    print("Transport over loopback, one connection, \(mib) MiB per run, 1 MiB writes (\(repetitions) repetitions; \(kernelTLS))")
    print("  wall: GB/s as it ran; CPU: ns per byte at each end; bound: GB/s with a core per end (bytes / busier end's CPU time)")
    for variant in single {
        let values = runs[variant]!
        let wall = Double(bytes) / median(values.map(\.seconds)) / 1e9
        let send = median(values.map(\.senderCPU)) / Double(bytes) * 1e9
        let receive = median(values.map(\.receiverCPU)) / Double(bytes) * 1e9
        let bounded = median(values.map(bound)) / 1e9
        print(
            "  \(variant.description.rightPad(22)) wall \(format(wall).leftPad(5)) GB/s (× \(format(median(wallRatios[variant]!)))),"
                + " CPU send \(format(send, 3)) receive \(format(receive, 3)) ns/B,"
                + " bound \(format(bounded).leftPad(5)) GB/s (× \(format(median(boundRatios[variant]!))))")
    }

    var scaling: [String: [TransportRun]] = [:]
    let counts = [1, 2, 4]
    let variants = counts.flatMap { count in [(TransportVariant.plain, count), (.tls(.aes128GCM), count)] }
    for repetition in 0..<repetitions {
        for (variant, count) in order(variants, repetition: repetition) {
            scaling["\(variant) ×\(count)", default: []].append(try transfer(variant, connections: count, bytes: bytes))
        }
    }
    print("Connections sharing \(mib) MiB per run (each with its own sender and receiver thread; \(ProcessInfo.processInfo.activeProcessorCount) CPUs)")
    for count in counts {
        let plain = scaling["\(TransportVariant.plain) ×\(count)"]!
        let tls = scaling["\(TransportVariant.tls(.aes128GCM)) ×\(count)"]!
        let plainRate = Double(bytes) / median(plain.map(\.seconds)) / 1e9
        let tlsRate = Double(bytes) / median(tls.map(\.seconds)) / 1e9
        let plainCPU = median(plain.map { $0.senderCPU + $0.receiverCPU }) / Double(bytes) * 1e9
        let tlsCPU = median(tls.map { $0.senderCPU + $0.receiverCPU }) / Double(bytes) * 1e9
        print(
            "  \(count) connection\(count == 1 ? " " : "s"): plain \(format(plainRate)) GB/s (\(format(plainCPU, 3)) CPU ns/B),"
                + " AES-128-GCM \(format(tlsRate)) GB/s (\(format(tlsCPU, 3)) CPU ns/B), wall × \(format(tlsRate / plainRate))")
    }
    print("")
    return TransportResult(wallRatio: median(wallRatios[.tls(.aes128GCM)]!), boundRatio: median(boundRatios[.tls(.aes128GCM)]!))
}
