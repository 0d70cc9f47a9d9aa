// Symbolic errno names for messages ("EINVAL", not 22). Kept in this lowest shared module so
// the syscall layer and the engine, which may not import each other, print the same names.

/// The Linux name of an errno value (x86-64 and arm64 agree for these), nil when unlisted.
public func errnoSymbol(_ value: Int32) -> String? {
    switch value {
    case 1: "EPERM"
    case 2: "ENOENT"
    case 4: "EINTR"
    case 5: "EIO"
    case 6: "ENXIO"
    case 7: "E2BIG"
    case 9: "EBADF"
    case 11: "EAGAIN"
    case 12: "ENOMEM"
    case 13: "EACCES"
    case 14: "EFAULT"
    case 16: "EBUSY"
    case 17: "EEXIST"
    case 19: "ENODEV"
    case 22: "EINVAL"
    case 24: "EMFILE"
    case 25: "ENOTTY"
    case 27: "EFBIG"
    case 28: "ENOSPC"
    case 29: "ESPIPE"
    case 32: "EPIPE"
    case 34: "ERANGE"
    case 36: "ENAMETOOLONG"
    case 42: "ENOMSG"
    case 75: "EOVERFLOW"
    case 77: "EBADFD"
    case 95: "EOPNOTSUPP"
    case 122: "EDQUOT"
    default: nil
    }
}
