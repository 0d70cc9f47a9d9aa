// A VFIO container: one IOMMU context that groups join. Opening checks the API version and
// that the type1v2 IOMMU (the one dirty tracking needs) is available.
import Synchronization
import VFIOCore
import VFIOSyscalls

public final class VFIOContainer: Sendable {
    /// VFIO_TYPE1v2_IOMMU.
    public static let type1v2: UInt32 = 3

    let fd: ContainerFD
    package let kernel: any KernelInterface
    /// The IOMMU type, chosen once the first group joined (the kernel requires that order).
    private let iommu = Mutex<UInt32?>(nil)
    /// Mappings made through this object, in IOVA order, each holding the memory it maps
    /// alive (the kernel has only its address). Dirty tracking splits its reads at them.
    private let mapped = Mutex<[Mapping]>([])

    private struct Mapping: @unchecked Sendable {
        var range: DMARange
        // Kept only so the memory outlives its mapping; never read.
        var owner: AnyObject
    }

    /// Opens the real kernel's container.
    public convenience init(path: String = "/dev/vfio/vfio") throws(VFIOError) {
        try self.init(kernel: LinuxKernel.shared, path: path)
    }

    package init(kernel: any KernelInterface, path: String = "/dev/vfio/vfio") throws(VFIOError) {
        self.kernel = kernel
        fd = try VFIOError.wrapping { () throws(SyscallError) in try ContainerFD.open(path, kernel: kernel) }
        let version = try VFIOError.wrapping { () throws(SyscallError) in try fd.apiVersion() }
        guard version == 0 else {
            throw VFIOError(.notSupported, "unsupported VFIO API version \(version) (expected 0)", device: "container \(path)")
        }
        let type1v2 = try VFIOError.wrapping { () throws(SyscallError) in try fd.checkExtension(Self.type1v2) }
        guard type1v2 else {
            throw VFIOError(.notSupported, "the kernel's VFIO container lacks the type1v2 IOMMU", device: "container \(path)")
        }
    }

    /// The IOMMU type in use, once a group joined.
    public var iommuType: UInt32? { iommu.withLock { $0 } }

    /// Chooses the IOMMU type once the first group is attached.
    func ensureIOMMU() throws(VFIOError) {
        try iommu.withLock { (type) throws(VFIOError) in
            guard type == nil else { return }
            try VFIOError.wrapping { () throws(SyscallError) in try fd.setIOMMU(Self.type1v2) }
            type = Self.type1v2
        }
    }

    /// VFIO_IOMMU_GET_INFO with its capabilities.
    public func iommuInfo() throws(VFIOError) -> IOMMUInfo {
        try VFIOError.wrapping { () throws(SyscallError) in try fd.iommuInfo() }
    }

    /// Maps `memory` (all of it) at `iova` for the device's DMA.
    public func map(_ memory: DMAMemory, at iova: UInt64, access: DMAAccess = .readWrite) throws(VFIOError) {
        try VFIOError.wrapping { () throws(SyscallError) in
            try fd.mapDMA(vaddr: memory.address, iova: iova, size: UInt64(memory.count), access: access)
        }
        remember(DMARange(iova: iova, length: UInt64(memory.count)), owner: memory)
    }

    /// Maps a guest memory region at its IOVA for the devices' DMA (read-write unless
    /// `access` says otherwise). The container keeps the region's memory alive until unmapped.
    public func map(_ region: GuestMemoryRegion, access: DMAAccess = .readWrite) throws(VFIOError) {
        try VFIOError.wrapping(device: "container, guest memory \(region.name)") { () throws(SyscallError) in
            try fd.mapDMA(region.buffer, 0..<Int(region.length), iova: region.iova, access: access)
        }
        remember(DMARange(iova: region.iova, length: region.length), owner: region)
    }

    /// The mappings made through this object, in IOVA order.
    public var mappings: [DMARange] { mapped.withLock { $0.map(\.range) } }

    private func remember(_ range: DMARange, owner: AnyObject) {
        mapped.withLock { list in
            list.append(Mapping(range: range, owner: owner))
            list.sort { $0.range.iova < $1.range.iova }
        }
    }

    private func forget(_ range: DMARange) {
        mapped.withLock { list in list.removeAll { $0.range.iova >= range.iova && $0.range.end <= range.end } }
    }

    /// Unmaps an IOVA range; returns bytes unmapped.
    @discardableResult
    public func unmap(_ range: DMARange) throws(VFIOError) -> UInt64 {
        let done = try VFIOError.wrapping { () throws(SyscallError) in try fd.unmapDMA(iova: range.iova, size: range.length) }
        forget(range)
        return done
    }

    /// Unmaps a range and returns its dirty bitmap (tracking must be on): bit i of `bitmap`
    /// (zeroed first) is the page at `range.iova + i * pageSize`.
    @discardableResult
    public func unmap(_ range: DMARange, pageSize: UInt64, dirtyBitmap: inout [UInt64]) throws(VFIOError) -> UInt64 {
        let done = try VFIOError.wrapping { () throws(SyscallError) in
            try fd.unmapDMA(iova: range.iova, size: range.length, pageSize: pageSize, dirtyBitmap: &dirtyBitmap)
        }
        forget(range)
        return done
    }

    /// Starts type1 dirty page tracking.
    public func startDirtyTracking() throws(VFIOError) {
        try VFIOError.wrapping { () throws(SyscallError) in try fd.startDirtyTracking() }
    }

    /// Stops type1 dirty page tracking.
    public func stopDirtyTracking() throws(VFIOError) {
        try VFIOError.wrapping { () throws(SyscallError) in try fd.stopDirtyTracking() }
    }

    /// Reads (and clears) the dirty bitmap of an IOVA range.
    public func dirtyBitmap(of range: DMARange, pageSize: UInt64, into bitmap: inout [UInt64]) throws(VFIOError) {
        try VFIOError.wrapping { () throws(SyscallError) in
            try fd.dirtyBitmap(iova: range.iova, size: range.length, pageSize: pageSize, into: &bitmap)
        }
    }
}
