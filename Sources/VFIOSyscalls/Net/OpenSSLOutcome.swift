// One OpenSSL I/O call and what it left behind, read before anything else can change it.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import COpenSSL

struct OpenSSLOutcome {
    /// SSL_get_error's code; SSL_ERROR_NONE when the call succeeded.
    let code: CInt
    /// errno straight after the call (0 when the call set none).
    let errno: CInt

    var succeeded: Bool { code == SSL_ERROR_NONE }
    /// The socket must become readable or writable first (a non-blocking socket).
    var mustWait: Bool { code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE }

    /// Runs `call` with the thread's error queue and errno cleared, so neither is stale.
    static func of(_ ssl: OpaquePointer, succeeded: (CInt) -> Bool = { $0 == 1 }, _ call: () -> CInt) -> OpenSSLOutcome {
        ERR_clear_error()
        Glibc.errno = 0
        let rc = call()
        let saved = Glibc.errno
        return succeeded(rc) ? OpenSSLOutcome(code: SSL_ERROR_NONE, errno: 0) : OpenSSLOutcome(code: SSL_get_error(ssl, rc), errno: saved)
    }
}
