// A VFIO container: one IOMMU context that groups join. Opening checks the API version and
// that the type1v2 IOMMU (the one dirty tracking needs) is available.
import VFIOCore
import VFIOSyscalls

public final class VFIOContainer: @unchecked Sendable {
    /// VFIO_TYPE1v2_IOMMU.
    public static let type1v2: UInt32 = 3

    let fd: ContainerFD
    public let kernel: any KernelInterface
    /// Set once the first group joined and the IOMMU type was chosen.
    public private(set) var iommuType: UInt32?

    public init(kernel: any KernelInterface = LinuxKernel.shared, path: String = "/dev/vfio/vfio") throws(VFIOError) {
        self.kernel = kernel
        fd = try VFIOError.wrap { () throws(SyscallError) in try ContainerFD.open(path, kernel: kernel) }
        let version = try VFIOError.wrap { () throws(SyscallError) in try fd.apiVersion() }
        guard version == 0 else {
            throw VFIOError(.notSupported, "unsupported VFIO API version \(version) (expected 0)", device: "container \(path)")
        }
        let type1v2 = try VFIOError.wrap { () throws(SyscallError) in try fd.checkExtension(Self.type1v2) }
        guard type1v2 else {
            throw VFIOError(.notSupported, "the kernel's VFIO container lacks the type1v2 IOMMU", device: "container \(path)")
        }
    }

    /// Chooses the IOMMU type once the first group is attached (the kernel requires that order).
    func ensureIOMMU() throws(VFIOError) {
        guard iommuType == nil else { return }
        try VFIOError.wrap { () throws(SyscallError) in try fd.setIOMMU(Self.type1v2) }
        iommuType = Self.type1v2
    }

    /// VFIO_IOMMU_GET_INFO with its capabilities.
    public func iommuInfo() throws(VFIOError) -> IOMMUInfo {
        try VFIOError.wrap { () throws(SyscallError) in try fd.iommuInfo() }
    }

    /// Maps `size` bytes of process memory at `vaddr` to `iova`.
    public func mapDMA(vaddr: UInt64, iova: UInt64, size: UInt64, readable: Bool = true, writable: Bool = true) throws(VFIOError) {
        try VFIOError.wrap { () throws(SyscallError) in
            try fd.mapDMA(vaddr: vaddr, iova: iova, size: size, readable: readable, writable: writable)
        }
    }

    /// Unmaps an IOVA range; returns bytes unmapped.
    @discardableResult
    public func unmapDMA(iova: UInt64, size: UInt64) throws(VFIOError) -> UInt64 {
        try VFIOError.wrap { () throws(SyscallError) in try fd.unmapDMA(iova: iova, size: size) }
    }

    /// Unmaps a range and returns its dirty bitmap (tracking must be on).
    public func unmapDMA(iova: UInt64, size: UInt64, pageSize: UInt64, dirtyBitmap: inout [UInt64]) throws(VFIOError) -> UInt64 {
        try VFIOError.wrap { () throws(SyscallError) in
            try fd.unmapDMA(iova: iova, size: size, pageSize: pageSize, dirtyBitmap: &dirtyBitmap)
        }
    }

    /// Starts or stops type1 dirty page tracking.
    public func setDirtyTracking(_ enabled: Bool) throws(VFIOError) {
        try VFIOError.wrap { () throws(SyscallError) in try fd.setDirtyTracking(enabled) }
    }

    /// Reads (and clears) the dirty bitmap of an IOVA range.
    public func dirtyBitmap(iova: UInt64, size: UInt64, pageSize: UInt64, into bitmap: inout [UInt64]) throws(VFIOError) {
        try VFIOError.wrap { () throws(SyscallError) in
            try fd.dirtyBitmap(iova: iova, size: size, pageSize: pageSize, into: &bitmap)
        }
    }
}
