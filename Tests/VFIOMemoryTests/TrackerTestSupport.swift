// Shared pieces of the memory tests: guest memory mapped into a mock device's container, and
// a DMA logging device wrapper that refuses what a real device might.
import VFIOBuffers
import VFIOCore
import VFIOKernel
import VFIOMockDevices
import VFIOSyscalls

let page: UInt64 = 4096

func region(_ iova: UInt64, pages: Int, name: String, pageSize: UInt64 = 4096) throws -> GuestMemoryRegion {
    try GuestMemoryRegion(iova: iova, length: UInt64(pages) * pageSize, pageSize: pageSize,
                          buffer: IOBuffer(capacity: pages * Int(pageSize)), writable: true, name: name)
}

func emptyBitmaps(_ memory: GuestMemory) throws -> [DirtyBitmap] {
    try memory.regions.map { try DirtyBitmap(pageCount: $0.pageCount, pageSize: $0.pageSize) }
}

/// Forwards to a real device, refusing START with E2BIG above `maxRanges` ranges (a device
/// that takes fewer than the core's 256) and failing REPORTs as told.
final class ScriptedLoggingDevice: DMALoggingDevice {
    let inner: VFIODevice
    let maxRanges: Int
    var failReportsWith: ErrorNumber?
    private(set) var startedWith: [[DMARange]] = []

    init(_ inner: VFIODevice, maxRanges: Int = 256) {
        self.inner = inner
        self.maxRanges = maxRanges
    }

    var name: String { inner.name }

    func supports(_ feature: DeviceFeature, for access: FeatureAccess) throws(VFIOError) -> Bool {
        try inner.supports(feature, for: access)
    }

    func startDMALogging(ranges: [DMARange], pageSize: UInt64) throws(VFIOError) -> UInt64 {
        startedWith.append(ranges)
        guard ranges.count <= maxRanges else {
            throw VFIOError(.resourceExhausted, "DMA_LOGGING_START refused", device: name, operation: "VFIO_DEVICE_FEATURE[DMA_LOGGING_START]", errno: .argumentListTooLong)
        }
        return try inner.startDMALogging(ranges: ranges, pageSize: pageSize)
    }

    func stopDMALogging() throws(VFIOError) { try inner.stopDMALogging() }

    func dmaLoggingReport(of range: DMARange, pageSize: UInt64, into bitmap: inout [UInt64]) throws(VFIOError) {
        if let failReportsWith {
            throw VFIOError(.ioFailure, "DMA_LOGGING_REPORT refused", device: name, operation: "VFIO_DEVICE_FEATURE[DMA_LOGGING_REPORT]", errno: failReportsWith)
        }
        try inner.dmaLoggingReport(of: range, pageSize: pageSize, into: &bitmap)
    }
}
