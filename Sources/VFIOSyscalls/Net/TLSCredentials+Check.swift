// Every credential file checked before OpenSSL sees any, so one error names all that are
// missing or unreadable instead of the first OpenSSL trips over.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemPackage

extension TLSCredentials {
    var object: String { "\(role) credentials in \(directory)" }

    func checkReadable() throws(TLSError) {
        var problems: [(file: String, why: String)] = []
        for file in [caCertificate, certificate, privateKey] {
            let fd = Glibc.open(file, O_RDONLY | O_CLOEXEC)
            if fd >= 0 {
                var info = stat()
                let isRegular = fstat(fd, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
                _ = Glibc.close(fd)
                if !isRegular { problems.append((file, "not a regular file")) }
                continue
            }
            let error = Errno(rawValue: errno)
            let why = error == .noSuchFileOrDirectory ? "missing" : "unreadable (\(SyscallError.errnoName(error)))"
            problems.append((file, why))
        }
        guard !problems.isEmpty else { return }
        var directoryNote = ""
        var info = stat()
        if stat(directory, &info) != 0 { directoryNote = " (the directory \(directory) does not exist)" }
        throw TLSError(
            step: .loadCredentials(files: problems.map(\.file)), object: object,
            reason: problems.map { "\($0.file) \($0.why)" }.joined(separator: "; ") + directoryNote)
    }
}
