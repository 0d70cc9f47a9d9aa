// OpenSSL 3 (Debian package: libssl-dev) for the transport's TLS. Only VFIOSyscalls imports
// this module. Swift cannot call function-like macros, so the few this project needs are
// wrapped below as static inline functions, each doing exactly what its macro does.
#ifndef COPENSSL_SHIM_H
#define COPENSSL_SHIM_H
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/// TLS 1.3 as both the lowest and the highest version the context will speak.
static inline int vfio_tls_ctx_require_tls13(SSL_CTX *ctx) {
    return SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION)
        && SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
}

/// Asks for kernel TLS offload; OpenSSL falls back to user space when the kernel lacks it.
static inline void vfio_tls_ctx_enable_ktls(SSL_CTX *ctx) {
    SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS);
}

static inline void vfio_tls_ctx_set_read_ahead(SSL_CTX *ctx, int on) {
    SSL_CTX_set_read_ahead(ctx, on);
}

/// Partial writes on a non-blocking socket, resumable with the rest of the same bytes.
static inline void vfio_tls_ctx_set_partial_write_modes(SSL_CTX *ctx) {
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
}

static inline void vfio_tls_ctx_set_session_cache_mode(SSL_CTX *ctx, long mode) {
    SSL_CTX_set_session_cache_mode(ctx, mode);
}

/// SNI: the name the client asks the server for.
static inline int vfio_tls_set_server_name(SSL *ssl, const char *name) {
    return (int)SSL_set_tlsext_host_name(ssl, name);
}

static inline int vfio_tls_ktls_send(SSL *ssl) {
    return BIO_get_ktls_send(SSL_get_wbio(ssl));
}

static inline int vfio_tls_ktls_receive(SSL *ssl) {
    return BIO_get_ktls_recv(SSL_get_rbio(ssl));
}

/// The certificate's subjectAltName extension (free with vfio_tls_general_names_free), or NULL.
static inline GENERAL_NAMES *vfio_tls_subject_alt_names(const X509 *cert) {
    return (GENERAL_NAMES *)X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
}

static inline int vfio_tls_general_names_count(const GENERAL_NAMES *names) {
    return sk_GENERAL_NAME_num(names);
}

/// The DNS name at `index`, or NULL when that entry is another kind of name.
static inline const ASN1_STRING *vfio_tls_general_name_dns(const GENERAL_NAMES *names, int index) {
    const GENERAL_NAME *name = sk_GENERAL_NAME_value(names, index);
    return name != NULL && name->type == GEN_DNS ? name->d.dNSName : NULL;
}

static inline void vfio_tls_general_names_free(GENERAL_NAMES *names) {
    GENERAL_NAMES_free(names);
}

/// `name` in RFC 2253 form into `out` (NUL-terminated, cut at `capacity`); returns the length.
static inline int vfio_tls_name_rfc2253(const X509_NAME *name, char *out, int capacity) {
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL || capacity <= 0) { BIO_free(bio); return -1; }
    X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253);
    char *data = NULL;
    long length = BIO_get_mem_data(bio, &data);
    int n = length < capacity - 1 ? (int)length : capacity - 1;
    for (int i = 0; i < n; i++) out[i] = data[i];
    out[n] = 0;
    BIO_free(bio);
    return n;
}

#endif
