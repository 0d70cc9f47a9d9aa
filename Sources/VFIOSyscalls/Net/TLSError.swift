// The transport's TLS failures: which step failed, on what, and OpenSSL's reason text.
// Socket failures under TLS (EPIPE, ECONNRESET, an idle timeout) stay SyscallErrors.

public struct TLSError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Step: Sendable, Equatable, CustomStringConvertible {
        /// Reading credentials: every file named is missing, unreadable, malformed or mismatched.
        case loadCredentials(files: [String])
        /// Applying settings to the context (versions, cipher suites).
        case configure
        /// The handshake itself: protocol errors, a peer that is not TLS, the deadline.
        case handshake
        /// Our check of the peer's certificate against ca-cert.pem (or the expected name) failed.
        case verifyPeer
        /// The peer's certificate is valid but its identity is not in the allow-list.
        case peerNotAllowed
        /// The peer rejected us: it sent an alert (our certificate, our CA, its allow-list).
        case refusedByPeer
        case read, write, shutdown

        public var description: String {
            switch self {
            case .loadCredentials(let files): "loading \(files.joined(separator: ", "))"
            case .configure: "configuring TLS"
            case .handshake: "TLS handshake"
            case .verifyPeer: "verifying the peer's certificate"
            case .peerNotAllowed: "checking the peer's identity against the allow-list"
            case .refusedByPeer: "TLS handshake (refused by the peer)"
            case .read: "TLS read"
            case .write: "TLS write"
            case .shutdown: "TLS close_notify"
            }
        }
    }

    public let step: Step
    /// What it happened on: "TLS connection from 127.0.0.1:50312", "server credentials in /etc/pki/qemu".
    public let object: String
    /// OpenSSL's reason text, or ours where OpenSSL has none (a timeout, an allow-list miss).
    public let reason: String

    public init(step: Step, object: String, reason: String) {
        self.step = step
        self.object = object
        self.reason = reason
    }

    public var description: String { "\(step) on \(object) failed: \(reason)" }
}
