// Device fd ioctls: the vfio-pci driver's (info, regions, IRQs, reset) and the VFIO core's
// DEVICE_FEATURE with its validation order.
import SystemPackage
import VFIOSyscalls

extension MockDevice {
    /// One ioctl on a device fd. Returns the ioctl's result and, for a MIG_DEVICE_STATE SET
    /// whose final arc opened one, the new data session (the kernel installs its fd).
    func ioctl(_ request: UInt, _ argument: IoctlArgument, installFD: (DataSession) -> CInt) throws(Errno) -> CInt {
        try locked { () throws(Errno) in
            if gone { throw .noDevice }
            try injectInterrupt()
        }
        switch request {
        case Request.deviceFeature:
            return try feature(UserStruct(argument), installFD: installFD)
        case Request.deviceGetInfo:
            let arg = try UserStruct(argument)
            let argsz = try arg.u32(0)
            guard argsz >= 16 else { throw .invalidArgument }
            try arg.set(4, u32: DeviceFlag.reset | DeviceFlag.pci)
            try arg.set(8, u32: UInt32(PCIRegion.count))
            try arg.set(12, u32: 5)
            // The struct goes back up to min(argsz, 24) bytes: no capabilities, zero padding.
            if argsz >= 20 { try arg.set(16, u32: 0) }
            if argsz >= 24 { try arg.set(20, u32: 0) }
            return 0
        case Request.deviceGetRegionInfo:
            let arg = try UserStruct(argument)
            guard try arg.u32(0) >= 32 else { throw .invalidArgument }
            let index = try arg.u32(8)
            let (size, flags) = try locked { () throws(Errno) in try pci.regionInfo(index) }
            try arg.set(4, u32: flags)
            try arg.set(12, u32: 0)
            try arg.set(16, u64: size)
            try arg.set(24, u64: UInt64(index) << PCIRegion.offsetShift)
            return 0
        case Request.deviceGetIRQInfo:
            let arg = try UserStruct(argument)
            guard try arg.u32(0) >= 16 else { throw .invalidArgument }
            let (flags, count) = try PCIFunction.irqInfo(try arg.u32(8))
            try arg.set(4, u32: flags)
            try arg.set(12, u32: count)
            return 0
        case Request.deviceSetIRQs:
            try checkSetIRQs(UserStruct(argument))
            return 0
        case Request.deviceReset:
            reset()
            return 0
        default:
            throw .noIoctl
        }
    }

    /// VFIO_DEVICE_SET_IRQS header rules; the mock accepts valid requests and signals nothing.
    private func checkSetIRQs(_ arg: UserStruct) throws(Errno) {
        let argsz = try arg.u32(0), flags = try arg.u32(4), index = try arg.u32(8)
        let start = try arg.u32(12), count = try arg.u32(16)
        let minsz: UInt32 = 20
        guard argsz >= minsz, index < 5, count < UInt32.max - start,
              flags & ~(IRQSetFlag.dataMask | IRQSetFlag.actionMask) == 0 else { throw .invalidArgument }
        let irqs = try PCIFunction.irqInfo(index).count
        guard start < irqs || (start == 0 && count == 0), start + count <= irqs else { throw .invalidArgument }
        let elementSize: UInt32
        switch flags & IRQSetFlag.dataMask {
        case IRQSetFlag.dataNone: elementSize = 0
        case IRQSetFlag.dataBool: elementSize = 1
        case IRQSetFlag.dataEventfd: elementSize = 4
        default: throw .invalidArgument
        }
        guard argsz - minsz >= count * elementSize else { throw .invalidArgument }
        _ = try arg.memory.copyIn(from: arg.address + UInt(minsz), count: Int(count * elementSize))
    }

    // MARK: VFIO_DEVICE_FEATURE

    private func feature(_ arg: UserStruct, installFD: (DataSession) -> CInt) throws(Errno) -> CInt {
        let argsz = try arg.u32(0), flags = try arg.u32(4)
        guard argsz >= 8 else { throw .invalidArgument }
        let known = FeatureFlag.indexMask | FeatureFlag.get | FeatureFlag.set | FeatureFlag.probe
        guard flags & ~known == 0 else { throw .invalidArgument }
        let get = flags & FeatureFlag.get != 0, set = flags & FeatureFlag.set != 0, probe = flags & FeatureFlag.probe != 0
        if !probe && get && set { throw .invalidArgument }
        let payload = Int(argsz) - 8
        let data = UserStruct(address: arg.address + 8, memory: arg.memory)
        let migrates = configuration.supportsMigration
        let logs = configuration.dmaLogging

        /// The core's per-feature check: true = go on, false = PROBE answered.
        func check(supported: UInt32, minimum: Int) throws(Errno) -> Bool {
            if flags & (FeatureFlag.get | FeatureFlag.set) & ~supported != 0 { throw .invalidArgument }
            if probe { return false }
            if !get && !set { throw .invalidArgument }
            if payload < minimum { throw .invalidArgument }
            return true
        }

        switch flags & FeatureFlag.indexMask {
        case Feature.migration:
            guard migrates else { throw .noIoctl }
            guard try check(supported: FeatureFlag.get, minimum: 8) else { return 0 }
            try data.set(0, u64: UInt64(configuration.migrationFlags))
            return 0

        case Feature.migDeviceState:
            guard migrates else { throw .noIoctl }
            guard try check(supported: FeatureFlag.get | FeatureFlag.set, minimum: 8) else { return 0 }
            let requested = try data.u32(0)
            _ = try data.i32(4)
            if get {
                try data.set(0, u32: locked { state.rawValue })
                try data.set(4, i32: -1)
                return 0
            }
            // The fd goes back in this struct: make sure it can, before any arc runs.
            try requireWritable(data.memory, at: data.address + 4, count: 4)
            let opened: DataSession?
            do {
                opened = try setState(requested)
            } catch {
                // The struct goes back with the requested state and no fd.
                try data.set(0, u32: requested)
                try data.set(4, i32: -1)
                throw error
            }
            try data.set(4, i32: opened.map(installFD) ?? -1)
            return 0

        case Feature.dmaLoggingStart:
            guard logs else { throw .noIoctl }
            guard try check(supported: FeatureFlag.set, minimum: 24) else { return 0 }
            try startLogging(data)
            return 0

        case Feature.dmaLoggingStop:
            guard logs else { throw .noIoctl }
            guard try check(supported: FeatureFlag.set, minimum: 0) else { return 0 }
            locked { dmaLog = nil }
            return 0

        case Feature.dmaLoggingReport:
            guard logs else { throw .noIoctl }
            guard try check(supported: FeatureFlag.get, minimum: 32) else { return 0 }
            try reportLogging(data)
            return 0

        case Feature.migPrecopyInfoV2 where configuration.offersPrecopyInfoV2:
            // A newer kernel's core feature: PRECOPY_INFO exists only on PRE_COPY devices.
            guard migrates, configuration.migrationFlags & MigrationFlag.preCopy != 0 else { throw .noIoctl }
            guard try check(supported: FeatureFlag.set, minimum: 0) else { return 0 }
            locked { preCopyInfoV2 = true }
            return 0

        case Feature.migDataSize where configuration.reportsDataSize:
            guard migrates else { throw .noIoctl }
            guard try check(supported: FeatureFlag.get, minimum: 8) else { return 0 }
            try data.set(0, u64: locked { stopCopyLength })
            return 0

        default:
            // Unknown to the core: the driver's hook. vfio-pci answers ENOTTY; an mdev
            // driver without one leaves the core's EINVAL.
            throw configuration.isMediated ? .invalidArgument : .noIoctl
        }
    }

    private func startLogging(_ control: UserStruct) throws(Errno) {
        let pageSize = try control.u64(0)
        let count = try control.u32(8)
        let rangesAddress = try control.u64(16)
        guard count > 0 else { throw .invalidArgument }
        guard count <= DMALog.maxRanges else { throw .argListTooLong }
        let list = control.pointee(at: rangesAddress)
        var ranges: [(iova: UInt64, length: UInt64)] = []
        for i in 0..<UInt(count) {
            let iova = try list.u64(i * 16), length = try list.u64(i * 16 + 8)
            // IS_ALIGNED(x, 0) holds only for x == 0, as in the kernel.
            let mask = pageSize &- 1
            guard iova & mask == 0, length & mask == 0 else { throw .invalidArgument }
            let (end, overflow) = iova.addingReportingOverflow(length)
            guard !overflow, end <= UInt64(UInt.max) else { throw .overflow }
            if ranges.contains(where: { iova < $0.iova + $0.length && $0.iova < end }) { throw .invalidArgument }
            ranges.append((iova, length))
        }
        let granularity = DMALog.granularity(forHint: pageSize)
        try locked { () throws(Errno) in
            if gone { throw .noDevice }
            guard dmaLog == nil else { throw .invalidArgument }
            dmaLog = DMALog(pageSize: granularity, ranges: ranges)
        }
        try control.set(0, u64: granularity)
    }

    private func reportLogging(_ report: UserStruct) throws(Errno) {
        let iova = try report.u64(0), length = try report.u64(8)
        let pageSize = try report.u64(16), bitmap = UInt(truncatingIfNeeded: try report.u64(24))
        guard pageSize >= 4096, pageSize.nonzeroBitCount == 1 else { throw .invalidArgument }
        let (_, overflow) = iova.addingReportingOverflow(length)
        guard !overflow else { throw .overflow }
        guard length > 0 else { throw .invalidArgument }
        let bytes = Int(((length + pageSize - 1) / pageSize + 63) / 64 * 8)
        try requireWritable(report.memory, at: bitmap, count: bytes)
        try locked { () throws(Errno) in
            guard dmaLog != nil else { throw .invalidArgument }
            try dmaLog!.report(iova: iova, length: length, reportPage: pageSize, bitmap: bitmap, memory: report.memory)
        }
    }

    // MARK: region I/O on the device fd

    func readRegion(at offset: Int64, into region: UserRegion) throws(Errno) -> Int {
        let bytes = try locked { () throws(Errno) in
            if gone { throw .noDevice }
            try injectInterrupt()
            return try pci.read(at: offset, count: region.count)
        }
        try UserMemory([region]).copyOut(bytes, to: region.address)
        return bytes.count
    }

    func writeRegion(at offset: Int64, from region: UserRegion) throws(Errno) -> Int {
        let bytes = try UserMemory([region]).copyIn(from: region.address, count: region.count)
        return try locked { () throws(Errno) in
            if gone { throw .noDevice }
            try injectInterrupt()
            return try pci.write(bytes, at: offset)
        }
    }
}
