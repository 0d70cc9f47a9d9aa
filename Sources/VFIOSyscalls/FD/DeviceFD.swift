// Device ioctls and VFIO_DEVICE_FEATURE, on the fd VFIO_GROUP_GET_DEVICE_FD returned.
import CVFIO
import SystemPackage

extension KernelFD where Kind == DeviceKind {
    /// The name the device was opened by (PCI address or mdev UUID).
    public var name: String { label }

    /// VFIO_DEVICE_GET_INFO.
    public func info() throws(SyscallError) -> DeviceInfo {
        let size = MemoryLayout<cvfio_device_info>.size
        var info = cvfio_device_info()
        info.argsz = UInt32(size)
        var arg = ArgumentBuffer(byteCount: size)
        arg.store(info)
        _ = try arg.withArgument { (a) throws(SyscallError) in try call("VFIO_DEVICE_GET_INFO", UInt(CVFIO_DEVICE_GET_INFO), a) }
        let out = arg.load(cvfio_device_info.self)
        return DeviceInfo(flags: out.flags, regionCount: out.num_regions, irqCount: out.num_irqs)
    }

    /// VFIO_DEVICE_GET_REGION_INFO for region `index` (BAR0 = 0, config = 7 on vfio-pci).
    public func regionInfo(_ index: UInt32) throws(SyscallError) -> RegionInfo {
        let size = MemoryLayout<cvfio_region_info>.size
        var info = cvfio_region_info()
        info.argsz = UInt32(size)
        info.index = index
        var arg = ArgumentBuffer(byteCount: size)
        arg.store(info)
        _ = try arg.withArgument { (a) throws(SyscallError) in
            try call("VFIO_DEVICE_GET_REGION_INFO(\(index))", UInt(CVFIO_DEVICE_GET_REGION_INFO), a)
        }
        let out = arg.load(cvfio_region_info.self)
        return RegionInfo(index: out.index, flags: out.flags, size: out.size, offset: out.offset)
    }

    /// VFIO_DEVICE_GET_IRQ_INFO for IRQ index `index`.
    public func irqInfo(_ index: UInt32) throws(SyscallError) -> IRQInfo {
        let size = MemoryLayout<cvfio_irq_info>.size
        var info = cvfio_irq_info()
        info.argsz = UInt32(size)
        info.index = index
        var arg = ArgumentBuffer(byteCount: size)
        arg.store(info)
        _ = try arg.withArgument { (a) throws(SyscallError) in
            try call("VFIO_DEVICE_GET_IRQ_INFO(\(index))", UInt(CVFIO_DEVICE_GET_IRQ_INFO), a)
        }
        let out = arg.load(cvfio_irq_info.self)
        return IRQInfo(index: out.index, flags: out.flags, count: out.count)
    }

    /// VFIO_DEVICE_RESET.
    public func reset() throws(SyscallError) {
        _ = try call("VFIO_DEVICE_RESET", UInt(CVFIO_DEVICE_RESET), .none)
    }

    /// Reads `count` bytes of a region at `offset` within it (pread on the device fd).
    public func readRegion(_ region: RegionInfo, at offset: UInt64, count: Int) throws(SyscallError) -> [UInt8] {
        var words = [UInt64](repeating: 0, count: (count + 7) / 8)
        var done = 0
        try withUserRegion(of: &words, writable: true) { (buffer) throws(SyscallError) in
            while done < count {
                let n = try retryingInterrupts("pread(region \(region.index) +0x\(String(offset + UInt64(done), radix: 16)))", on: object) { () throws(Errno) in
                    try kernel.pread(rawValue, into: buffer.dropFirst(done).prefix(count - done), offset: Int64(region.offset + offset) + Int64(done))
                }
                if n == 0 { break }
                done += n
            }
        }
        return words.withUnsafeBytes { Array($0.prefix(done)) }
    }

    /// Writes `bytes` into a region at `offset` within it (pwrite on the device fd).
    public func writeRegion(_ region: RegionInfo, at offset: UInt64, bytes: [UInt8]) throws(SyscallError) {
        var words = [UInt64](repeating: 0, count: (bytes.count + 7) / 8)
        words.withUnsafeMutableBytes { raw in
            // SAFETY: `raw` holds at least bytes.count bytes.
            raw.copyBytes(from: bytes)
        }
        var done = 0
        try withUserRegion(of: &words, writable: false) { (buffer) throws(SyscallError) in
            while done < bytes.count {
                let n = try retryingInterrupts("pwrite(region \(region.index) +0x\(String(offset + UInt64(done), radix: 16)))", on: object) { () throws(Errno) in
                    try kernel.pwrite(rawValue, from: buffer.dropFirst(done).prefix(bytes.count - done), offset: Int64(region.offset + offset) + Int64(done))
                }
                precondition(n > 0, "pwrite accepted 0 bytes")
                done += n
            }
        }
    }
}

// VFIO_DEVICE_FEATURE: an 8-byte header (argsz, flags = direction | index) and a payload.
extension KernelFD where Kind == DeviceKind {
    /// Issues one feature call with `payloadSize` bytes of payload filled by `fill`; returns the
    /// buffer as the kernel left it (payload at offset 8).
    func feature(
        _ feature: DeviceFeature, _ direction: UInt32, payloadSize: Int, extra: [UserRegion] = [],
        fill: (inout ArgumentBuffer) -> Void = { _ in }
    ) throws(SyscallError) -> ArgumentBuffer {
        let size = MemoryLayout<cvfio_device_feature>.size + payloadSize
        var header = cvfio_device_feature()
        header.argsz = UInt32(size)
        header.flags = direction | feature.rawValue
        var arg = ArgumentBuffer(byteCount: size)
        arg.store(header)
        fill(&arg)
        _ = try arg.withArgument(extra: extra) { (a) throws(SyscallError) in
            try call(feature.operationName(direction), UInt(CVFIO_DEVICE_FEATURE), a)
        }
        return arg
    }

    /// PROBE: true when the device supports `feature` for `access` (GET and/or SET; empty asks
    /// whether the feature exists at all). ENOTTY, EINVAL and EOPNOTSUPP mean "no"; other
    /// errors are thrown.
    public func probeFeature(_ feature: DeviceFeature, for access: FeatureAccess) throws(SyscallError) -> Bool {
        do {
            _ = try self.feature(feature, UInt32(CVFIO_DEVICE_FEATURE_PROBE) | access.rawValue, payloadSize: 0)
            return true
        } catch where error.errno == .noIoctl || error.errno == .invalidArgument || error.errno == .operationNotSupported {
            return false
        }
    }

    /// GET VFIO_DEVICE_FEATURE_MIGRATION: the raw VFIO_MIGRATION_* flags.
    public func migrationFlags() throws(SyscallError) -> UInt64 {
        let arg = try feature(.migration, UInt32(CVFIO_DEVICE_FEATURE_GET),
                              payloadSize: MemoryLayout<cvfio_device_feature_migration>.size)
        return arg.load(cvfio_device_feature_migration.self, at: 8).flags
    }

    /// GET VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE: the raw state value.
    public func migrationState() throws(SyscallError) -> UInt32 {
        let arg = try feature(.migrationDeviceState, UInt32(CVFIO_DEVICE_FEATURE_GET),
                              payloadSize: MemoryLayout<cvfio_device_feature_mig_state>.size)
        return arg.load(cvfio_device_feature_mig_state.self, at: 8).device_state
    }

    /// SET VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE. Returns the new data fd when the final arc
    /// opened a session. On failure the kernel's copy of the state is the requested value,
    /// not the real one: callers must GET.
    public func setMigrationState(_ state: UInt32) throws(SyscallError) -> MigrationDataFD? {
        let arg = try feature(.migrationDeviceState, UInt32(CVFIO_DEVICE_FEATURE_SET),
                              payloadSize: MemoryLayout<cvfio_device_feature_mig_state>.size) { arg in
            var payload = cvfio_device_feature_mig_state()
            payload.device_state = state
            payload.data_fd = -1
            arg.store(payload, at: 8)
        }
        let out = arg.load(cvfio_device_feature_mig_state.self, at: 8)
        guard out.data_fd >= 0 else { return nil }
        return MigrationDataFD(kernel: kernel, rawValue: out.data_fd, label: name)
    }

    /// GET VFIO_DEVICE_FEATURE_MIG_DATA_SIZE: the STOP_COPY size estimate.
    public func migrationDataSize() throws(SyscallError) -> UInt64 {
        let arg = try feature(.migrationDataSize, UInt32(CVFIO_DEVICE_FEATURE_GET),
                              payloadSize: MemoryLayout<cvfio_device_feature_mig_data_size>.size)
        return arg.load(cvfio_device_feature_mig_data_size.self, at: 8).stop_copy_length
    }

    /// SET VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2 (no payload): from now on PRECOPY_INFO's
    /// `flags` is an output (REINIT). PROBE first; kernels without it answer ENOTTY or EINVAL.
    public func enablePreCopyInfoV2() throws(SyscallError) {
        _ = try feature(.preCopyInfoV2, UInt32(CVFIO_DEVICE_FEATURE_SET), payloadSize: 0)
    }

    /// SET VFIO_DEVICE_FEATURE_DMA_LOGGING_START over `ranges` (iova, length); returns the
    /// page size the driver chose.
    public func startDMALogging(ranges: [DMARange], pageSize: UInt64) throws(SyscallError) -> UInt64 {
        var table = [UInt64](repeating: 0, count: max(1, ranges.count) * 2)
        for (i, r) in ranges.enumerated() {
            table[2 * i] = r.iova
            table[2 * i + 1] = r.length
        }
        let count = UInt32(ranges.count)
        return try withUserRegion(of: &table, writable: false) { (region) throws(SyscallError) in
            let arg = try feature(.dmaLoggingStart, UInt32(CVFIO_DEVICE_FEATURE_SET),
                                  payloadSize: MemoryLayout<cvfio_device_feature_dma_logging_control>.size,
                                  extra: [region]) { arg in
                var control = cvfio_device_feature_dma_logging_control()
                control.page_size = pageSize
                control.num_ranges = count
                control.ranges = UInt64(region.address)
                arg.store(control, at: 8)
            }
            return arg.load(cvfio_device_feature_dma_logging_control.self, at: 8).page_size
        }
    }

    /// SET VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP.
    public func stopDMALogging() throws(SyscallError) {
        _ = try feature(.dmaLoggingStop, UInt32(CVFIO_DEVICE_FEATURE_SET), payloadSize: 0)
    }

    /// GET VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT: bit k of `bitmap` (zeroed first) is the page
    /// at `iova + k * pageSize`. Reading clears the device's log for the range.
    public func dmaLoggingReport(iova: UInt64, length: UInt64, pageSize: UInt64, into bitmap: inout [UInt64]) throws(SyscallError) {
        for i in bitmap.indices { bitmap[i] = 0 }
        try withUserRegion(of: &bitmap, writable: true) { (region) throws(SyscallError) in
            _ = try feature(.dmaLoggingReport, UInt32(CVFIO_DEVICE_FEATURE_GET),
                            payloadSize: MemoryLayout<cvfio_device_feature_dma_logging_report>.size,
                            extra: [region]) { arg in
                var report = cvfio_device_feature_dma_logging_report()
                report.iova = iova
                report.length = length
                report.page_size = pageSize
                report.bitmap = UInt64(region.address)
                arg.store(report, at: 8)
            }
        }
    }
}
