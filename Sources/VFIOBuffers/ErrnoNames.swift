// Symbolic errno names and short texts for messages ("EINVAL (invalid argument)", not 22).
// Kept in this lowest shared module so the syscall layer and the engine, which may not import
// each other, print the same words. The numbers are Linux's (x86-64 and arm64 agree).

private let errnoTable: [Int32: (symbol: String, text: String)] = [
    1: ("EPERM", "operation not permitted"),
    2: ("ENOENT", "no such file or directory"),
    4: ("EINTR", "interrupted system call"),
    5: ("EIO", "input/output error"),
    6: ("ENXIO", "no such device or address"),
    7: ("E2BIG", "argument list too long"),
    9: ("EBADF", "bad file descriptor"),
    11: ("EAGAIN", "resource temporarily unavailable"),
    12: ("ENOMEM", "cannot allocate memory"),
    13: ("EACCES", "permission denied"),
    14: ("EFAULT", "bad address"),
    16: ("EBUSY", "device or resource busy"),
    17: ("EEXIST", "file exists"),
    18: ("EXDEV", "invalid cross-device link"),
    19: ("ENODEV", "no such device"),
    20: ("ENOTDIR", "not a directory"),
    21: ("EISDIR", "is a directory"),
    22: ("EINVAL", "invalid argument"),
    24: ("EMFILE", "too many open files"),
    25: ("ENOTTY", "inappropriate ioctl for device"),
    27: ("EFBIG", "file too large"),
    28: ("ENOSPC", "no space left on device"),
    29: ("ESPIPE", "illegal seek"),
    30: ("EROFS", "read-only file system"),
    32: ("EPIPE", "broken pipe"),
    34: ("ERANGE", "numerical result out of range"),
    36: ("ENAMETOOLONG", "file name too long"),
    39: ("ENOTEMPTY", "directory not empty"),
    42: ("ENOMSG", "no message of desired type"),
    75: ("EOVERFLOW", "value too large for defined data type"),
    77: ("EBADFD", "file descriptor in bad state"),
    95: ("EOPNOTSUPP", "operation not supported"),
    98: ("EADDRINUSE", "address already in use"),
    99: ("EADDRNOTAVAIL", "cannot assign requested address"),
    101: ("ENETUNREACH", "network is unreachable"),
    103: ("ECONNABORTED", "software caused connection abort"),
    104: ("ECONNRESET", "connection reset by peer"),
    107: ("ENOTCONN", "transport endpoint is not connected"),
    110: ("ETIMEDOUT", "connection timed out"),
    111: ("ECONNREFUSED", "connection refused"),
    113: ("EHOSTUNREACH", "no route to host"),
    122: ("EDQUOT", "disk quota exceeded"),
]

/// The Linux name of an errno value, nil when unlisted.
public func errnoSymbol(_ value: Int32) -> String? { errnoTable[value]?.symbol }

/// A short lowercase text for an errno value, nil when unlisted.
public func errnoText(_ value: Int32) -> String? { errnoTable[value]?.text }
