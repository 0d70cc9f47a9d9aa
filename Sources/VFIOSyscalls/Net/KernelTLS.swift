// Kernel TLS offload (the "tls" TCP upper-layer protocol): whether this kernel lists it, and
// whether OpenSSL engaged it on a connection. Without it records are encrypted in user space.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

public struct KernelTLSStatus: Sendable, Equatable, CustomStringConvertible {
    /// The kernel encrypts what we send / decrypts what we receive.
    public let send: Bool
    public let receive: Bool
    /// Why it is or is not engaged, in one line.
    public let note: String

    public var description: String { note }

    /// The upper-layer protocols the kernel lists (/proc/sys/net/ipv4/tcp_available_ulp), read
    /// once. A "tls" module that is installed but not loaded is absent from the list until
    /// the first use loads it, so this explains a fallback; it does not predict one.
    public static let availableULPs: [String] = {
        let fd = open("/proc/sys/net/ipv4/tcp_available_ulp", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { _ = close(fd) }
        var bytes = [UInt8](repeating: 0, count: 512)
        let n = read(fd, &bytes, bytes.count)
        guard n > 0 else { return [] }
        return String(decoding: bytes.prefix(n), as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
    }()

    static func observed(send: Bool, receive: Bool, requested: Bool, cipherSuite: String) -> KernelTLSStatus {
        let ulps = availableULPs.isEmpty ? "none" : availableULPs.joined(separator: " ")
        let note: String
        switch (requested, send, receive) {
        case (false, _, _):
            note = "kernel TLS not requested; records are encrypted in user space"
        case (true, true, true):
            note = "kernel TLS engaged for sending and receiving (\(cipherSuite))"
        case (true, true, false), (true, false, true):
            note = "kernel TLS engaged for \(send ? "sending" : "receiving") only (\(cipherSuite)); the other direction is encrypted in user space"
        case (true, false, false):
            note = availableULPs.contains("tls")
                ? "kernel TLS not engaged although the kernel lists the tls ULP (\(cipherSuite) may not be offloadable here); records are encrypted in user space"
                : "kernel TLS not engaged: the kernel lists no tls ULP (tcp_available_ulp: \(ulps)); records are encrypted in user space"
        }
        return KernelTLSStatus(send: send, receive: receive, note: note)
    }
}
