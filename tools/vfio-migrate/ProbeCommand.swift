import ArgumentParser
import VFIOCore
import VFIOKernel
import VFIOMigration
import VFIOStream
import VFIOSyscalls

struct ProbeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe", abstract: "Open a device and report its VFIO and migration capabilities.")

    @Argument(help: "PCI address, mdev UUID, sysfs path or mock:NAME?opts.") var device: String
    @OptionGroup var environment: EnvironmentOptions
    @Flag(help: "Print JSON.") var json = false

    struct Report: Encodable {
        var device: String
        var deviceInfo: DeviceInfo
        var regions: [RegionInfo]
        var iommu: IOMMUInfo
        var migrationFlags: MigrationFlags?
        var migrationState: MigrationState?
        var stopCopySizeEstimate: UInt64?
        var dmaLogging: Bool
        var descriptor: DeviceDescriptor?
        var problem: String?
    }

    func run() throws {
        try reporting {
            let opened = try environment.make().open(device)
            let info = try opened.vfio.info()
            var regions: [RegionInfo] = []
            for index in 0..<min(info.regionCount, 9) {
                if let region = try? opened.vfio.regionInfo(index), region.size > 0 { regions.append(region) }
            }
            var report = Report(
                device: opened.displayName, deviceInfo: info, regions: regions, iommu: try opened.vfio.container.iommuInfo(),
                dmaLogging: (try? opened.vfio.probeFeature(6, set: true)) ?? false)
            do {
                let driver = try opened.driver()
                report.migrationFlags = driver.flags
                report.migrationState = driver.knownState
                report.stopCopySizeEstimate = try driver.device.stopCopySizeEstimate()
                report.descriptor = try opened.descriptor(flags: driver.flags, expectedStateSize: report.stopCopySizeEstimate)
            } catch {
                report.problem = "\(error)"
            }
            if json { return try printJSON(report) }
            print("device        \(report.device)")
            print("vfio          flags 0x\(String(info.flags, radix: 16)) (\(info.isPCI ? "PCI" : "non-PCI")\(info.supportsReset ? ", reset" : "")), \(info.regionCount) regions, \(info.irqCount) IRQ indexes")
            for r in regions {
                print("  region \(r.index)    \(formatBytes(r.size))\(r.readable ? " r" : "")\(r.writable ? "w" : "")\(r.mappable ? " mmap" : "")")
            }
            if let m = report.iommu.migration {
                print("iommu         type1v2, dirty tracking page sizes 0x\(String(m.pageSizes, radix: 16)), max bitmap \(formatBytes(m.maxDirtyBitmapBytes))")
            }
            if let flags = report.migrationFlags {
                print("migration     \(flags), state \(report.migrationState.map { "\($0)" } ?? "?")")
                print("stop-copy     \(report.stopCopySizeEstimate.map(formatBytes) ?? "no estimate (MIG_DATA_SIZE unsupported)")")
                print("dma logging   \(report.dmaLogging ? "supported" : "not supported")")
            } else {
                print("migration     not supported: \(report.problem ?? "")")
            }
        }
    }
}
