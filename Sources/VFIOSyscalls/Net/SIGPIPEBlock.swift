// OpenSSL writes to its socket with write(2), which raises SIGPIPE on a gone peer and would
// end the process. Around each OpenSSL call SIGPIPE is blocked on the calling thread only;
// when the call failed, a SIGPIPE it left pending is taken back before the mask is restored.
// (Changing the process's disposition would be a library deciding for its embedder; a
// custom BIO would keep kernel TLS from engaging.)
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

enum SIGPIPEBlock {
    static func around<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        var pipe = sigset_t()
        sigemptyset(&pipe)
        sigaddset(&pipe, SIGPIPE)
        var previous = sigset_t()
        pthread_sigmask(SIG_BLOCK, &pipe, &previous)
        // Already blocked by the embedder: whatever is pending is theirs to take.
        if sigismember(&previous, SIGPIPE) == 1 { return try body() }
        do {
            let result = try body()
            pthread_sigmask(SIG_SETMASK, &previous, nil)
            return result
        } catch {
            var pending = sigset_t()
            if sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1 {
                var now = timespec(tv_sec: 0, tv_nsec: 0)
                _ = sigtimedwait(&pipe, nil, &now)
            }
            pthread_sigmask(SIG_SETMASK, &previous, nil)
            throw error
        }
    }
}
