// Names for the errnos VFIO uses whose SystemPackage spellings read oddly in this domain.
import SystemPackage

extension Errno {
    /// ENODEV: the migration session or the device is gone.
    public static var noDevice: Errno { .operationNotSupportedByDevice }
    /// ENOTTY: the ioctl or feature is not implemented for this fd.
    public static var noIoctl: Errno { .inappropriateIOCTLForDevice }
    /// EOPNOTSUPP: understood, but not supported (DMA logging on some kernels).
    public static var operationNotSupported: Errno { .init(rawValue: 95) }
}
