// The engine names errno values without libc; these pin its numbers and names to the C
// library's own: each named constant against Glibc's macro, and every symbol the message
// table prints against glibc's strerrorname_np.
import Glibc
import Testing
import VFIOBuffers
import VFIOCore

@Suite struct ErrorNumberTests {
    @Test func namedValuesAreTheCLibrarys() {
        let pinned: [(ErrorNumber, Int32)] = [
            (.notPermitted, EPERM), (.noSuchFileOrDirectory, ENOENT), (.interrupted, EINTR), (.ioError, EIO),
            (.noSuchDeviceOrAddress, ENXIO), (.argumentListTooLong, E2BIG), (.badFileDescriptor, EBADF),
            (.wouldBlock, EAGAIN), (.noMemory, ENOMEM), (.permissionDenied, EACCES), (.badAddress, EFAULT),
            (.busy, EBUSY), (.fileExists, EEXIST), (.noDevice, ENODEV), (.isDirectory, EISDIR),
            (.invalidArgument, EINVAL), (.tooManyOpenFiles, EMFILE), (.noIoctl, ENOTTY), (.noSpace, ENOSPC),
            (.illegalSeek, ESPIPE), (.brokenPipe, EPIPE), (.noMessage, ENOMSG), (.overflow, EOVERFLOW),
            (.notSupported, EOPNOTSUPP), (.connectionReset, ECONNRESET), (.timedOut, ETIMEDOUT),
            (.connectionRefused, ECONNREFUSED), (.diskQuotaExceeded, EDQUOT),
        ]
        for (named, value) in pinned { #expect(named.rawValue == value, "\(named.name)") }
    }

    @Test func everyPrintedSymbolIsGlibcs() throws {
        typealias NameOf = @convention(c) (Int32) -> UnsafePointer<CChar>?
        let symbol = try #require(dlsym(nil, "strerrorname_np"), "glibc 2.32 or later")
        let nameOf = unsafeBitCast(symbol, to: NameOf.self)
        var listed = 0
        for value in Int32(1)...Int32(133) {
            guard let ours = errnoSymbol(value) else { continue }
            listed += 1
            let theirs = nameOf(value).map { String(cString: $0) }
            #expect(ours == theirs, "errno \(value)")
        }
        #expect(listed >= 30)
    }
}
