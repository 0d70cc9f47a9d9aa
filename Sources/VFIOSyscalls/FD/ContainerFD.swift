// Container ioctls (/dev/vfio/vfio): only a ContainerFD has them, so a request number shared
// with a device ioctl (0x3B75 is both VFIO_IOMMU_DIRTY_PAGES and VFIO_DEVICE_FEATURE) can never
// reach the wrong kind of fd.
import CVFIO
import SystemPackage

extension KernelFD where Kind == ContainerKind {
    /// Opens the container device at its usual path, /dev/vfio/vfio.
    package static func open(kernel: any KernelInterface) throws(SyscallError) -> ContainerFD {
        try open("/dev/vfio/vfio", kernel: kernel)
    }

    /// VFIO_GET_API_VERSION.
    public func apiVersion() throws(SyscallError) -> Int32 {
        try call("VFIO_GET_API_VERSION", UInt(CVFIO_GET_API_VERSION), .none)
    }

    /// VFIO_CHECK_EXTENSION: true when the kernel supports extension `id` (e.g. TYPE1v2 = 3).
    public func checkExtension(_ id: UInt32) throws(SyscallError) -> Bool {
        try call("VFIO_CHECK_EXTENSION(\(id))", UInt(CVFIO_CHECK_EXTENSION), .value(UInt(id))) > 0
    }

    /// VFIO_SET_IOMMU: needs at least one group attached first.
    public func setIOMMU(_ type: UInt32) throws(SyscallError) {
        _ = try call("VFIO_SET_IOMMU(\(type))", UInt(CVFIO_SET_IOMMU), .value(UInt(type)))
    }

    /// VFIO_IOMMU_GET_INFO with its capability chain; re-issued with a larger buffer when the
    /// kernel says the caps did not fit.
    public func iommuInfo() throws(SyscallError) -> IOMMUInfo {
        var size = MemoryLayout<cvfio_iommu_type1_info>.size + 256
        for _ in 0..<4 {
            var arg = ArgumentBuffer(byteCount: size)
            var info = cvfio_iommu_type1_info()
            info.argsz = UInt32(size)
            arg.store(info)
            _ = try arg.withArgument { (a) throws(SyscallError) in try call("VFIO_IOMMU_GET_INFO", UInt(CVFIO_IOMMU_GET_INFO), a) }
            let out = arg.load(cvfio_iommu_type1_info.self)
            if out.argsz > UInt32(size) {
                size = Int(out.argsz)
                continue
            }
            return IOMMUInfo(decoding: out, bytes: arg.bytes)
        }
        throw SyscallError(operation: "VFIO_IOMMU_GET_INFO", object: object, errno: .overflow)
    }

    /// VFIO_IOMMU_MAP_DMA of process memory at `vaddr`. Package-only: the public way in is a
    /// memory object that owns the mapping (VFIOKernel), never a bare address.
    package func mapDMA(vaddr: UInt64, iova: UInt64, size: UInt64, access: DMAAccess) throws(SyscallError) {
        var map = cvfio_iommu_type1_dma_map()
        map.argsz = UInt32(MemoryLayout<cvfio_iommu_type1_dma_map>.size)
        map.flags = (access.contains(.read) ? UInt32(CVFIO_DMA_MAP_FLAG_READ) : 0) | (access.contains(.write) ? UInt32(CVFIO_DMA_MAP_FLAG_WRITE) : 0)
        map.vaddr = vaddr
        map.iova = iova
        map.size = size
        var arg = ArgumentBuffer(byteCount: MemoryLayout<cvfio_iommu_type1_dma_map>.size)
        arg.store(map)
        _ = try arg.withArgument { (a) throws(SyscallError) in
            try call("VFIO_IOMMU_MAP_DMA[iova 0x\(String(iova, radix: 16)) size 0x\(String(size, radix: 16))]", UInt(CVFIO_IOMMU_MAP_DMA), a)
        }
    }

    /// VFIO_IOMMU_UNMAP_DMA; returns the bytes the kernel unmapped (0 for a hole).
    public func unmapDMA(iova: UInt64, size: UInt64) throws(SyscallError) -> UInt64 {
        try unmap(iova: iova, size: size, flags: 0, name: "VFIO_IOMMU_UNMAP_DMA")
    }

    /// VFIO_IOMMU_UNMAP_DMA with VFIO_DMA_UNMAP_FLAG_ALL.
    public func unmapAllDMA() throws(SyscallError) -> UInt64 {
        try unmap(iova: 0, size: 0, flags: UInt32(CVFIO_DMA_UNMAP_FLAG_ALL), name: "VFIO_IOMMU_UNMAP_DMA[ALL]")
    }

    private func unmap(iova: UInt64, size: UInt64, flags: UInt32, name: String) throws(SyscallError) -> UInt64 {
        let structSize = MemoryLayout<cvfio_iommu_type1_dma_unmap>.size
        var unmap = cvfio_iommu_type1_dma_unmap()
        unmap.argsz = UInt32(structSize)
        unmap.flags = flags
        unmap.iova = iova
        unmap.size = size
        var arg = ArgumentBuffer(byteCount: structSize)
        arg.store(unmap)
        _ = try arg.withArgument { (a) throws(SyscallError) in try call(name, UInt(CVFIO_IOMMU_UNMAP_DMA), a) }
        return arg.load(cvfio_iommu_type1_dma_unmap.self).size
    }

    /// VFIO_IOMMU_UNMAP_DMA with VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP: the dirty bits of the
    /// range are written into `bitmap` (one bit per `pageSize` page, zeroed first) before the
    /// pages go away. Returns the bytes unmapped.
    public func unmapDMA(iova: UInt64, size: UInt64, pageSize: UInt64, dirtyBitmap bitmap: inout [UInt64]) throws(SyscallError) -> UInt64 {
        let structSize = MemoryLayout<cvfio_iommu_type1_dma_unmap>.size
        let total = structSize + MemoryLayout<cvfio_bitmap>.size
        for i in bitmap.indices { bitmap[i] = 0 }
        let bitmapBytes = UInt64(bitmap.count * 8)
        return try withUserRegion(of: &bitmap, writable: true) { (region) throws(SyscallError) in
            var unmap = cvfio_iommu_type1_dma_unmap()
            unmap.argsz = UInt32(total)
            unmap.flags = UInt32(CVFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP)
            unmap.iova = iova
            unmap.size = size
            var bits = cvfio_bitmap()
            bits.pgsize = pageSize
            bits.size = bitmapBytes
            // SAFETY: the bitmap's address, kept alive by withUserRegion around this call.
            bits.data = UnsafeMutablePointer(bitPattern: region.address)
            var arg = ArgumentBuffer(byteCount: total)
            arg.store(unmap)
            arg.store(bits, at: structSize)
            _ = try arg.withArgument(extra: [region]) { (a) throws(SyscallError) in
                try call("VFIO_IOMMU_UNMAP_DMA[GET_DIRTY_BITMAP]", UInt(CVFIO_IOMMU_UNMAP_DMA), a)
            }
            return arg.load(cvfio_iommu_type1_dma_unmap.self).size
        }
    }

    /// VFIO_IOMMU_DIRTY_PAGES with START: every mapping gets a kernel bitmap.
    public func startDirtyTracking() throws(SyscallError) {
        try dirtyPagesControl(UInt32(CVFIO_IOMMU_DIRTY_PAGES_FLAG_START), "START")
    }

    /// VFIO_IOMMU_DIRTY_PAGES with STOP: the kernel frees its bitmaps.
    public func stopDirtyTracking() throws(SyscallError) {
        try dirtyPagesControl(UInt32(CVFIO_IOMMU_DIRTY_PAGES_FLAG_STOP), "STOP")
    }

    private func dirtyPagesControl(_ flag: UInt32, _ name: String) throws(SyscallError) {
        let size = MemoryLayout<cvfio_iommu_type1_dirty_bitmap>.size
        var header = cvfio_iommu_type1_dirty_bitmap()
        header.argsz = UInt32(size)
        header.flags = flag
        var arg = ArgumentBuffer(byteCount: size)
        arg.store(header)
        _ = try arg.withArgument { (a) throws(SyscallError) in
            try call("VFIO_IOMMU_DIRTY_PAGES[\(name)]", UInt(CVFIO_IOMMU_DIRTY_PAGES), a)
        }
    }

    /// VFIO_IOMMU_DIRTY_PAGES with GET_BITMAP: bit i of `bitmap` (zeroed first) is the page at
    /// `iova + i * pageSize`. The kernel clears what it reports.
    public func dirtyBitmap(iova: UInt64, size: UInt64, pageSize: UInt64, into bitmap: inout [UInt64]) throws(SyscallError) {
        let headerSize = MemoryLayout<cvfio_iommu_type1_dirty_bitmap>.size
        let total = headerSize + MemoryLayout<cvfio_iommu_type1_dirty_bitmap_get>.size
        for i in bitmap.indices { bitmap[i] = 0 }
        let bitmapBytes = UInt64(bitmap.count * 8)
        try withUserRegion(of: &bitmap, writable: true) { (region) throws(SyscallError) in
            var header = cvfio_iommu_type1_dirty_bitmap()
            header.argsz = UInt32(total)
            header.flags = UInt32(CVFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP)
            var get = cvfio_iommu_type1_dirty_bitmap_get()
            get.iova = iova
            get.size = size
            get.bitmap.pgsize = pageSize
            get.bitmap.size = bitmapBytes
            // SAFETY: the bitmap's address, kept alive by withUserRegion around this call.
            get.bitmap.data = UnsafeMutablePointer(bitPattern: region.address)
            var arg = ArgumentBuffer(byteCount: total)
            arg.store(header)
            arg.store(get, at: headerSize)
            _ = try arg.withArgument(extra: [region]) { (a) throws(SyscallError) in
                try call("VFIO_IOMMU_DIRTY_PAGES[GET_BITMAP]", UInt(CVFIO_IOMMU_DIRTY_PAGES), a)
            }
        }
    }
}
