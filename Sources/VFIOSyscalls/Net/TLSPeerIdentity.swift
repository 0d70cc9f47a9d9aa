// Who the peer's certificate says it is, and the allow-list match on it. Names with an
// embedded NUL are dropped: "sender-a\0.evil" must never match "sender-a".
import COpenSSL

public struct TLSPeerIdentity: Sendable, Equatable, CustomStringConvertible {
    /// The subject in RFC 2253 form, e.g. "CN=sender-a,O=vfio-migration tests".
    public let subject: String
    public let issuer: String
    public let commonName: String?
    /// The certificate's DNS subjectAltNames.
    public let dnsNames: [String]

    public init(subject: String, issuer: String, commonName: String?, dnsNames: [String]) {
        self.subject = subject
        self.issuer = issuer
        self.commonName = commonName
        self.dnsNames = dnsNames
    }

    public var description: String { commonName.map { "CN=\($0)" } ?? subject }

    /// True when `names` holds the subject CN (exactly) or one of the DNS names (ignoring case).
    public func matches(anyOf names: [String]) -> Bool {
        names.contains { name in
            name == commonName || dnsNames.contains { $0.lowercased() == name.lowercased() }
        }
    }

    /// Reads the identity of an X509 certificate.
    init(certificate: OpaquePointer) {
        subject = Self.rfc2253(X509_get_subject_name(certificate))
        issuer = Self.rfc2253(X509_get_issuer_name(certificate))
        commonName = Self.commonName(of: certificate)
        dnsNames = Self.dnsNames(of: certificate)
    }

    private static func rfc2253(_ name: OpaquePointer?) -> String {
        guard let name else { return "(no name)" }
        var text = [CChar](repeating: 0, count: 1024)
        let n = vfio_tls_name_rfc2253(name, &text, CInt(text.count))
        return n < 0 ? "(unprintable name)" : String(decoding: text.prefix(Int(n)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func commonName(of certificate: OpaquePointer) -> String? {
        guard let name = X509_get_subject_name(certificate) else { return nil }
        let index = X509_NAME_get_index_by_NID(name, NID_commonName, -1)
        guard index >= 0, let entry = X509_NAME_get_entry(name, index) else { return nil }
        return utf8(X509_NAME_ENTRY_get_data(entry))
    }

    private static func dnsNames(of certificate: OpaquePointer) -> [String] {
        guard let names = vfio_tls_subject_alt_names(certificate) else { return [] }
        defer { vfio_tls_general_names_free(names) }
        return (0..<vfio_tls_general_names_count(names)).compactMap { utf8(vfio_tls_general_name_dns(names, $0)) }
    }

    /// An ASN.1 string as UTF-8, nil when absent or holding a NUL.
    private static func utf8(_ string: UnsafePointer<ASN1_STRING>?) -> String? {
        guard let string else { return nil }
        var output: UnsafeMutablePointer<UInt8>?
        let length = ASN1_STRING_to_UTF8(&output, string)
        guard length >= 0, let output else { return nil }
        defer { CRYPTO_free(output, nil, 0) }
        // SAFETY: ASN1_STRING_to_UTF8 allocated `length` bytes at `output`, freed above after the copy.
        let bytes = Array(UnsafeBufferPointer(start: output, count: Int(length)))
        return bytes.contains(0) ? nil : String(decoding: bytes, as: UTF8.self)
    }
}
