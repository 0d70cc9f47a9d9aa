import ArgumentParser
import VFIOCore
import VFIOKernel
import VFIOMigration
import VFIOStream

struct ProbeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe", abstract: "Open a device and report its VFIO and migration capabilities.")

    @Argument(help: "PCI address, mdev UUID, sysfs path or mock:NAME?opts.") var device: String
    @OptionGroup var environment: EnvironmentOptions
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        try reporting {
            let report = try environment.make().open(device).probe()
            let info = report.deviceInfo
            let regions = report.regions
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
