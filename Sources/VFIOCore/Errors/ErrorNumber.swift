// An errno as a named value: what a VMM matches on ("did the device say ENODEV?") without
// importing swift-system or libc. The numbers are Linux's (the same on x86-64 and arm64).
import VFIOBuffers

/// A Linux errno value with its symbolic name.
public struct ErrorNumber: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// EPERM
    public static let notPermitted = ErrorNumber(rawValue: 1)
    /// ENOENT
    public static let noSuchFileOrDirectory = ErrorNumber(rawValue: 2)
    /// EINTR
    public static let interrupted = ErrorNumber(rawValue: 4)
    /// EIO
    public static let ioError = ErrorNumber(rawValue: 5)
    /// ENXIO
    public static let noSuchDeviceOrAddress = ErrorNumber(rawValue: 6)
    /// E2BIG
    public static let argumentListTooLong = ErrorNumber(rawValue: 7)
    /// EBADF
    public static let badFileDescriptor = ErrorNumber(rawValue: 9)
    /// EAGAIN
    public static let wouldBlock = ErrorNumber(rawValue: 11)
    /// ENOMEM
    public static let noMemory = ErrorNumber(rawValue: 12)
    /// EACCES
    public static let permissionDenied = ErrorNumber(rawValue: 13)
    /// EFAULT
    public static let badAddress = ErrorNumber(rawValue: 14)
    /// EBUSY
    public static let busy = ErrorNumber(rawValue: 16)
    /// EEXIST
    public static let fileExists = ErrorNumber(rawValue: 17)
    /// ENODEV: for a migration data fd, the session ended (a state change or a reset).
    public static let noDevice = ErrorNumber(rawValue: 19)
    /// EISDIR
    public static let isDirectory = ErrorNumber(rawValue: 21)
    /// EINVAL
    public static let invalidArgument = ErrorNumber(rawValue: 22)
    /// EMFILE
    public static let tooManyOpenFiles = ErrorNumber(rawValue: 24)
    /// ENOTTY: the ioctl or feature is not implemented for this fd.
    public static let noIoctl = ErrorNumber(rawValue: 25)
    /// ENOSPC
    public static let noSpace = ErrorNumber(rawValue: 28)
    /// ESPIPE
    public static let illegalSeek = ErrorNumber(rawValue: 29)
    /// EPIPE: the reading end of a pipe or socket is gone.
    public static let brokenPipe = ErrorNumber(rawValue: 32)
    /// ENOMSG: a PRE_COPY data fd has nothing more for now.
    public static let noMessage = ErrorNumber(rawValue: 42)
    /// EOVERFLOW
    public static let overflow = ErrorNumber(rawValue: 75)
    /// EOPNOTSUPP
    public static let notSupported = ErrorNumber(rawValue: 95)
    /// ECONNRESET
    public static let connectionReset = ErrorNumber(rawValue: 104)
    /// ETIMEDOUT
    public static let timedOut = ErrorNumber(rawValue: 110)
    /// ECONNREFUSED
    public static let connectionRefused = ErrorNumber(rawValue: 111)
    /// EDQUOT
    public static let diskQuotaExceeded = ErrorNumber(rawValue: 122)

    /// The symbolic name ("EINVAL"), or "errno N" for one the table does not list.
    public var name: String { errnoSymbol(rawValue) ?? "errno \(rawValue)" }

    /// "EINVAL (invalid argument)".
    public var description: String {
        guard let text = errnoText(rawValue) else { return name }
        return "\(name) (\(text))"
    }
}
