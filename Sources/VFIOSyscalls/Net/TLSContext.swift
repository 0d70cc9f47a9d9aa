// An OpenSSL context for one role, built from a QEMU-layout credentials directory: TLS 1.3
// only, the peer verified against ca-cert.pem (the server requires a client certificate),
// the allow-list checked once the chain is verified, kernel TLS requested.
//
// The client learns whether the server accepted its certificate before its handshake
// returns: in TLS 1.3 the client finishes first, so the server's verdict would otherwise
// surface only at a later read, after megabytes were written. The server sends one session
// ticket once it has verified the client (OpenSSL sends tickets after reading the client's
// Finished); the client waits for it or for the alert, within the handshake deadline. The
// ticket is never used to resume.
import COpenSSL

/// What the callbacks of one handshake found; OpenSSL reaches it through the SSL's app data.
final class HandshakeNotes {
    let allowedClients: [String]
    var verificationFailure: String?
    var rejectedIdentity: TLSPeerIdentity?
    var serverAccepted = false

    init(allowedClients: [String]) { self.allowedClients = allowedClients }

    static func of(_ ssl: OpaquePointer?) -> HandshakeNotes? {
        guard let ssl, let pointer = SSL_get_ex_data(ssl, 0) else { return nil }
        return Unmanaged<HandshakeNotes>.fromOpaque(pointer).takeUnretainedValue()
    }
}

/// Runs after OpenSSL checked each certificate of the chain (depth 0 is the peer's own).
private let verifyCallback: @convention(c) (CInt, OpaquePointer?) -> CInt = { preverified, store in
    guard let store,
          let ssl = SSL_get_ex_data_X509_STORE_CTX_idx() >= 0
              ? X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()) : nil,
          let notes = HandshakeNotes.of(OpaquePointer(ssl))
    else { return preverified }
    let depth = X509_STORE_CTX_get_error_depth(store)
    if preverified == 0 {
        let code = X509_STORE_CTX_get_error(store)
        let reason = String(cString: X509_verify_cert_error_string(Int(code)))
        let subject = X509_STORE_CTX_get_current_cert(store).map { TLSPeerIdentity(certificate: $0).subject } ?? "?"
        if notes.verificationFailure == nil { notes.verificationFailure = "\(reason) (certificate \(subject), depth \(depth))" }
        return 0
    }
    if depth == 0, !notes.allowedClients.isEmpty, let certificate = X509_STORE_CTX_get_current_cert(store) {
        let identity = TLSPeerIdentity(certificate: certificate)
        if !identity.matches(anyOf: notes.allowedClients) {
            notes.rejectedIdentity = identity
            X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED)
            return 0
        }
    }
    return 1
}

/// The server's session ticket arrived: it verified our certificate. The session is dropped.
private let ticketCallback: @convention(c) (OpaquePointer?, OpaquePointer?) -> CInt = { ssl, _ in
    HandshakeNotes.of(ssl)?.serverAccepted = true
    return 0
}

/// A configured OpenSSL context; immutable, shared by every connection of its role.
public final class TLSContext: @unchecked Sendable {
    public let configuration: TLSConfiguration
    let context: OpaquePointer

    /// Loads the role's credentials; every missing, unreadable, malformed or mismatched file
    /// is named in the error.
    public convenience init(_ configuration: TLSConfiguration) throws(TLSError) {
        let credentials = configuration.credentials
        try credentials.checkReadable()
        try self.init(configuration, caFile: credentials.caCertificate, identity: (credentials.certificate, credentials.privateKey))
    }

    /// A client that trusts `caFile` and presents no certificate (tests: a server must refuse it).
    package static func clientWithoutCertificate(trusting caFile: String, handshakeTimeout: Duration) throws(TLSError) -> TLSContext {
        let configuration = TLSConfiguration(role: .client, credentialsDirectory: "(none)", handshakeTimeout: handshakeTimeout)
        return try TLSContext(configuration, caFile: caFile, identity: nil)
    }

    private init(_ configuration: TLSConfiguration, caFile: String, identity: (certificate: String, key: String)?) throws(TLSError) {
        self.configuration = configuration
        let object = configuration.credentials.object
        ERR_clear_error()
        guard let context = SSL_CTX_new(configuration.role == .server ? TLS_server_method() : TLS_client_method()) else {
            throw TLSError(step: .configure, object: object, reason: OpenSSLErrorQueue.drain().text(or: "SSL_CTX_new failed"))
        }
        self.context = context
        func check(_ ok: Bool, _ step: TLSError.Step, _ fallback: String) throws(TLSError) {
            if !ok { throw TLSError(step: step, object: object, reason: OpenSSLErrorQueue.drain().text(or: fallback)) }
        }
        try check(vfio_tls_ctx_require_tls13(context) == 1, .configure, "cannot restrict the context to TLS 1.3")
        let suites = configuration.cipherSuites.map(\.rawValue).joined(separator: ":")
        try check(!suites.isEmpty && SSL_CTX_set_ciphersuites(context, suites) == 1, .configure, "cipher suites '\(suites)' rejected")

        try check(SSL_CTX_load_verify_locations(context, caFile, nil) == 1, .loadCredentials(files: [caFile]), "no CA certificate loaded")
        if let identity {
            try check(SSL_CTX_use_certificate_chain_file(context, identity.certificate) == 1,
                      .loadCredentials(files: [identity.certificate]), "no certificate loaded")
            // OpenSSL checks the key against the certificate as it loads it.
            if SSL_CTX_use_PrivateKey_file(context, identity.key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(context) != 1 {
                let queue = OpenSSLErrorQueue.drain()
                if queue.contains(reason: X509_R_KEY_VALUES_MISMATCH) || queue.contains(reason: SSL_R_NO_CERTIFICATE_ASSIGNED) {
                    throw TLSError(step: .loadCredentials(files: [identity.certificate, identity.key]), object: object,
                                   reason: "the private key does not match the certificate (\(queue.text(or: "?")))")
                }
                throw TLSError(step: .loadCredentials(files: [identity.key]), object: object, reason: queue.text(or: "no private key loaded"))
            }
        }

        switch configuration.role {
        case .server:
            // The client is told which CA to pick its certificate from.
            if let names = SSL_load_client_CA_file(caFile) { SSL_CTX_set_client_CA_list(context, names) }
            SSL_CTX_set_verify(context, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verifyCallback)
            vfio_tls_ctx_set_session_cache_mode(context, Int(SSL_SESS_CACHE_OFF))
            try check(SSL_CTX_set_num_tickets(context, 1) == 1, .configure, "cannot set the session ticket count")
        case .client:
            SSL_CTX_set_verify(context, SSL_VERIFY_PEER, verifyCallback)
            vfio_tls_ctx_set_session_cache_mode(context, Int(SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE))
            SSL_CTX_sess_set_new_cb(context, ticketCallback)
        }
        if configuration.kernelTLS { vfio_tls_ctx_enable_ktls(context) }
        // Reads take whole socket buffers' worth of records per system call.
        vfio_tls_ctx_set_read_ahead(context, 1)
        SSL_CTX_set_default_read_buffer_len(context, TLSConnection.readBufferSize)
        vfio_tls_ctx_set_partial_write_modes(context)
    }

    deinit { SSL_CTX_free(context) }
}
