// MigrationDevice over a VFIO device fd: each call is one ioctl, translated to engine types.
import VFIOCore
import VFIOSyscalls

public final class KernelMigrationDevice: MigrationDevice, @unchecked Sendable {
    public let device: VFIODevice
    public let name: String

    /// `displayName` is how errors name the device (defaults to its VFIO name).
    public init(device: VFIODevice, displayName: String? = nil) {
        self.device = device
        self.name = displayName ?? device.name
    }

    public func migrationFlags() throws(VFIOError) -> MigrationFlags {
        do {
            return MigrationFlags(rawValue: try device.fd.migrationFlags())
        } catch where error.errno == .noIoctl {
            throw VFIOError(
                .notSupported, "the device does not support migration (its driver has no migration v2 ops)",
                device: name, operation: error.operation, errno: error.errno)
        } catch {
            throw VFIOError(syscall: error, device: name)
        }
    }

    public func currentState() throws(VFIOError) -> MigrationState {
        let raw = try wrap { () throws(SyscallError) in try device.fd.migrationState() }
        guard let state = MigrationState(uapi: raw) else {
            throw VFIOError(.deviceError, "the kernel reported unknown migration state \(raw)", device: name)
        }
        return state
    }

    public func setState(_ state: MigrationState) throws(VFIOError) -> (any MigrationDataChannel)? {
        let fd = try wrap { () throws(SyscallError) in try device.fd.setMigrationState(state.uapiValue) }
        guard let fd else { return nil }
        return KernelDataChannel(fd: fd, deviceName: name, saving: state.isSaving)
    }

    public func reset() throws(VFIOError) {
        try wrap { () throws(SyscallError) in try device.fd.reset() }
    }

    public func stopCopySizeEstimate() throws(VFIOError) -> UInt64? {
        do {
            return try device.fd.migrationDataSize()
        } catch where error.errno == .noIoctl || error.errno == .invalidArgument {
            return nil // kernels before 6.2 or drivers without the feature
        } catch {
            throw VFIOError(syscall: error, device: name)
        }
    }

    /// Like VFIODevice's, but errors name the device as this object's callers know it
    /// (`mock:vf0` rather than the emulated PCI address).
    private func wrap<T: ~Copyable>(_ body: () throws(SyscallError) -> T) throws(VFIOError) -> T {
        do {
            return try body()
        } catch {
            throw VFIOError(syscall: error, device: name)
        }
    }
}
