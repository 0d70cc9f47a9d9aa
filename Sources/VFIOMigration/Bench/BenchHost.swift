// The machine a benchmark ran on, as published numbers need it: CPU, cores, kernel, memory,
// the IOMMU's mode, and for each real device its driver, NUMA node and IOMMU group. Read from
// /proc and sysfs; what cannot be read is left out (nil), never guessed.
import Foundation
import VFIOKernel

public struct BenchHost: Sendable, Hashable, Codable {
    public var hostName: String
    public var kernelRelease: String
    public var cpuModel: String?
    /// CPUs this process may run on.
    public var cpus: Int
    public var numaNodes: Int?
    public var memoryBytes: UInt64?
    /// The IOMMU options on the kernel command line (intel_iommu=, amd_iommu=, iommu=, iommu.passthrough=...).
    public var iommuCommandLine: [String]
    /// The IOMMUs sysfs lists (/sys/class/iommu).
    public var iommus: [String]
    /// The 1, 5 and 15 minute load averages when the run started: how busy the machine was.
    public var loadAverage: [Double]

    public static func current(sysfsRoot: String = "/sys") -> BenchHost {
        let cmdline = read("/proc/cmdline")?.split(separator: " ").map(String.init) ?? []
        let iommuOptions = cmdline.filter { $0.contains("iommu") }
        let iommus = ((try? FileManager.default.contentsOfDirectory(atPath: sysfsRoot + "/class/iommu")) ?? []).sorted()
        let nodes = (try? FileManager.default.contentsOfDirectory(atPath: sysfsRoot + "/devices/system/node"))?
            .filter { $0.hasPrefix("node") && Int($0.dropFirst(4)) != nil }.count
        let memory = read("/proc/meminfo")?.split(separator: "\n").first { $0.hasPrefix("MemTotal:") }
            .flatMap { $0.split(separator: " ").dropFirst().first.flatMap { UInt64($0) } }.map { $0 << 10 }
        let cpu = read("/proc/cpuinfo")?.split(separator: "\n").first { $0.hasPrefix("model name") }?
            .split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) }
        return BenchHost(
            hostName: ProcessInfo.processInfo.hostName, kernelRelease: read("/proc/sys/kernel/osrelease") ?? "unknown", cpuModel: cpu,
            cpus: ProcessInfo.processInfo.activeProcessorCount, numaNodes: nodes, memoryBytes: memory, iommuCommandLine: iommuOptions,
            iommus: iommus, loadAverage: loadAverage())
    }

    public static func loadAverage() -> [Double] {
        (read("/proc/loadavg") ?? "").split(separator: " ").prefix(3).compactMap { Double($0) }
    }

    static func read(_ path: String) -> String? {
        (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// One device as a benchmark used it.
public struct BenchDeviceInfo: Sendable, Hashable, Codable {
    public var name: String
    public var vfioName: String
    public var driver: String
    public var driverVersion: String
    /// The device's NUMA node (sysfs numa_node; nil when unknown or -1).
    public var numaNode: Int?
    public var iommuGroup: Int
    /// The IOMMU group's domain type (sysfs iommu_groups/N/type: DMA, DMA-FQ, identity, ...).
    public var iommuGroupType: String?
    public var mdevType: String?

    public init(_ device: VFIODevice, sysfsRoot: String = "/sys") {
        name = device.name
        vfioName = device.vfioName
        driver = device.identity.driverName
        driverVersion = device.identity.driverVersion
        numaNode = device.identity.numaNode ?? device.discovered?.numaNode
        iommuGroup = device.group.number
        iommuGroupType = device.discovered == nil ? nil : BenchHost.read("\(sysfsRoot)/kernel/iommu_groups/\(device.group.number)/type")
        mdevType = device.identity.mdev?.type
    }
}
