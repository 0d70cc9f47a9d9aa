// How one end of the transport speaks TLS: its role, its credentials (QEMU's x509 layout),
// whom it accepts, and the handshake deadline.

public enum TLSRole: String, Sendable, Equatable {
    /// The receiver: presents server-cert.pem, requires and verifies a client certificate.
    case server
    /// The sender: presents client-cert.pem, verifies the server's certificate.
    case client
}

/// The TLS 1.3 cipher suites the transport can offer, by OpenSSL's names.
public enum TLSCipherSuite: String, Sendable, CaseIterable {
    case aes128GCM = "TLS_AES_128_GCM_SHA256"
    case aes256GCM = "TLS_AES_256_GCM_SHA384"
    case chacha20Poly1305 = "TLS_CHACHA20_POLY1305_SHA256"
}

public struct TLSConfiguration: Sendable, Equatable {
    public var role: TLSRole
    /// A directory holding ca-cert.pem and, for the role, server-cert.pem and server-key.pem
    /// or client-cert.pem and client-key.pem.
    public var credentialsDirectory: String
    /// Server only: client identities admitted (a subject CN, or a DNS subjectAltName);
    /// empty admits every client whose certificate ca-cert.pem verifies.
    public var allowedClients: [String]
    /// Client only: the name (DNS name or IP address) the server's certificate must carry;
    /// nil checks the chain only.
    public var serverName: String?
    /// Offered in this order. AES-128-GCM first: on AES-NI hardware it measured fastest
    /// (docs/security.md, "Transport: TLS implementation").
    public var cipherSuites: [TLSCipherSuite]
    /// Ask OpenSSL for kernel TLS offload; it falls back to user space where the kernel lacks it.
    public var kernelTLS: Bool
    /// A peer that has not completed the handshake by then is dropped.
    public var handshakeTimeout: Duration

    public init(
        role: TLSRole,
        credentialsDirectory: String,
        allowedClients: [String] = [],
        serverName: String? = nil,
        cipherSuites: [TLSCipherSuite] = [.aes128GCM, .aes256GCM, .chacha20Poly1305],
        kernelTLS: Bool = true,
        handshakeTimeout: Duration = .seconds(10)
    ) {
        self.role = role
        self.credentialsDirectory = credentialsDirectory
        self.allowedClients = allowedClients
        self.serverName = serverName
        self.cipherSuites = cipherSuites
        self.kernelTLS = kernelTLS
        self.handshakeTimeout = handshakeTimeout
    }

    /// The files of QEMU's layout this role reads.
    public var credentials: TLSCredentials { TLSCredentials(directory: credentialsDirectory, role: role) }
}

/// The credential files of one role in a QEMU-layout directory.
public struct TLSCredentials: Sendable, Equatable {
    public let directory: String
    public let role: TLSRole

    public init(directory: String, role: TLSRole) {
        self.directory = directory
        self.role = role
    }

    public var caCertificate: String { path("ca-cert.pem") }
    public var certificate: String { path("\(role.rawValue)-cert.pem") }
    public var privateKey: String { path("\(role.rawValue)-key.pem") }

    private func path(_ name: String) -> String { directory.hasSuffix("/") ? directory + name : directory + "/" + name }
}
