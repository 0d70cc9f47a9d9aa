import ArgumentParser
import Foundation
import VFIOMigration

struct ProbeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Open a device and report its VFIO and migration capabilities.",
        discussion: """
            Regions, migration flags, state and the STOP_COPY size estimate (MIG_DATA_SIZE), the
            dirty trackers (type1: page sizes and the largest bitmap from the IOMMU's MIGRATION
            capability, and whether its bitmaps are precise; device DMA logging), PRECOPY_INFOv2,
            the compatibility descriptor exactly as a stream would carry it, and the verdict.
            GETs and PROBEs only: no device state changes.

            Examples:
              vfio-migrate probe 0000:3b:00.2
              vfio-migrate probe 83b8f4f2-509f-382f-3c1e-e6bfe0fa1001 --json
              vfio-migrate probe 'mock:vf0?flags=stop-copy,p2p&dma-logging=no'
            """)

    @Argument(help: "PCI address, mdev UUID, sysfs path or mock:NAME?opts.") var device: String
    @OptionGroup var environment: EnvironmentOptions
    @OptionGroup var common: CommonOptions

    func run() throws {
        try execute(common) { invocation in
            let report = try environment.make().open(device).report()
            if common.json { return try JSONOutput.print(report) }
            Console.out(Self.render(report))
        }
    }

    static func render(_ r: DeviceReport) -> String {
        var out: [String] = []
        let v = r.vfio
        out.append("device        \(shown(r.device)) (\(r.kind.rawValue))")
        out.append("vfio          flags 0x\(String(v.flags, radix: 16)) (\(v.pci ? "PCI" : "non-PCI")\(v.reset ? ", reset" : "")), \(v.regionCount) regions, \(v.irqCount) IRQ indexes")
        for region in r.regions {
            let access = (region.readable ? "r" : "") + (region.writable ? "w" : "") + (region.mappable ? " mmap" : "")
            out.append("  \(region.name.padding(toLength: 12, withPad: " ", startingAt: 0))\(formatBytes(region.size)) \(access)")
        }
        let pages = r.iommu.smallestPageSize.map { "from \(formatBytes($0)) (bitmap \(r.iommu.pageSizeBitmap ?? "?"))" } ?? "not reported"
        out.append("iommu         page sizes \(pages); \(r.iommu.iovaRanges.count) IOVA range(s)\(r.iommu.dmaMappingsAvailable.map { ", \($0) DMA mappings free" } ?? "")")
        let c = r.capabilities
        if let flags = c.flags {
            out.append("migration     \(flags), state \(c.state.map(\.description) ?? "?")")
            out.append("stop-copy     \(c.stopCopySizeEstimate.map { "about \(formatBytes($0)) (MIG_DATA_SIZE)" } ?? "no estimate (MIG_DATA_SIZE unsupported)")")
            out.append("precopy info  \(c.preCopyInfoV2 ? "MIG_PRECOPY_INFOv2 (REINIT reports)" : "v1 only")")
        } else {
            out.append("migration     not supported (VFIO_DEVICE_FEATURE_MIGRATION answers ENOTTY)")
        }
        out.append("dma logging   \(c.dmaLogging ? "supported (device tracks the pages it writes)" : "not supported")")
        if let t = c.type1 {
            out.append("type1 dirty   page sizes \(sizeList(t.pageSizes)), largest bitmap \(formatBytes(t.maxBitmapBytes)), \(t.precise ? "precise (emulated IOMMU group)" : "not precise: every mapped page reported dirty")")
        } else {
            out.append("type1 dirty   not offered by the container")
        }
        if let d = r.descriptor {
            out.append("descriptor    (as a stream records it)")
            out += DescriptorText.lines(d, indent: "  ")
        }
        out.append("verdict       \(VerdictText.summary(r.verdict))")
        out += VerdictText.details(r.verdict, indent: "  ")
        return out.joined(separator: "\n")
    }

    static func sizeList(_ sizes: [UInt64]) -> String {
        sizes.count > 4 ? "\(formatBytes(sizes[0])) ... \(formatBytes(sizes[sizes.count - 1])) (\(sizes.count) sizes)" : sizes.map(formatBytes).joined(separator: ", ")
    }
}

enum VerdictText {
    static func summary(_ v: MigrationVerdict) -> String {
        switch v.status {
        case .migratable: "migratable"
        case .notMigratable: "not migratable"
        case .unknown: "unknown"
        }
    }

    static func details(_ v: MigrationVerdict, indent: String) -> [String] {
        var out = v.blockers.map { "\(indent)- \(shown($0.message, limit: 512))" }
        if let reason = v.reason { out.append("\(indent)- \(shown(reason, limit: 512))") }
        if let hint = v.hint { out.append("\(indent)hint: \(shown(hint, limit: 512))") }
        return out
    }
}

/// A device descriptor for people, every string escaped and bounded.
enum DescriptorText {
    static func lines(_ d: DeviceDescriptor, indent: String) -> [String] {
        var out = ["\(indent)name           \(shown(d.name))",
                   "\(indent)device API     \(shown(d.deviceAPI))",
                   "\(indent)driver         \(shown(d.driverName)) \(shown(d.driverVersion)) (major \(shown(driverMajor(of: d.driverVersion))))"]
        if let p = d.pci {
            out.append(String(format: "\(indent)PCI identity   %04x:%04x subsystem %04x:%04x class %06x rev %02x",
                              p.vendorID, p.deviceID, p.subsystemVendorID, p.subsystemDeviceID, p.classCode, p.revision))
        }
        if let m = d.mdev {
            out.append("\(indent)mdev type      \(shown(m.type))")
            for a in m.attributes { out.append("\(indent)mdev attribute \(shown(a.name, limit: 64))=\(shown(a.value))") }
        }
        out.append("\(indent)migration      \(d.migrationFlags)")
        out.append("\(indent)state size     \(d.expectedStateSize.map { "about \(formatBytes($0))" } ?? "unknown")")
        out.append("\(indent)vendor compat  \(d.vendorCompatibility.isEmpty ? "(none)" : shown(d.vendorCompatibility))")
        return out
    }
}
