// --memory FILE[@IOVA]: guest RAM carried with the devices' state. Each occurrence is one
// region, a file (a memfd's /proc path, a hugetlbfs or tmpfs file, a regular file) placed at
// an IOVA (hex 0x... or decimal; without one, right after the previous region, the first at
// 0). A save maps the files read-only to send them, and read-write into every source
// device's container, as the VMM owning the RAM would, so the devices can DMA into it and
// the tracker sees their writes. A load maps them read-write and writes the pages into them;
// each target file must already have the region's size.
import ArgumentParser
import Foundation
import VFIOMigration

struct MemoryArguments: ParsableArguments {
    @Option(name: .customLong("memory"), help: ArgumentHelp(
        "Guest RAM: a file at an IOVA (FILE[@IOVA]); repeat for more regions.", valueName: "FILE[@IOVA]"))
    var regions: [String] = []
    @Option(help: "Page size of the memory regions (the unit of dirty tracking and of pages records).") var memoryPageSize = "4KiB"

    struct Spec: Equatable {
        var path: String
        var iova: UInt64?
    }

    static func parse(_ text: String) throws(CLIFailure) -> Spec {
        guard let at = text.lastIndex(of: "@"), at != text.startIndex else { return Spec(path: text, iova: nil) }
        let number = text[text.index(after: at)...]
        let value = number.hasPrefix("0x") ? UInt64(number.dropFirst(2), radix: 16) : UInt64(number)
        guard let value else { throw CLIFailure(.usage, "--memory \(text): the IOVA after @ is not a number (hex 0x... or decimal)") }
        return Spec(path: String(text[..<at]), iova: value)
    }

    var isEmpty: Bool { regions.isEmpty }

    /// Maps every region (writable for a load), laid out in IOVA order of the arguments.
    func map(writable: Bool) throws -> GuestMemory? {
        guard !regions.isEmpty else { return nil }
        let pageSize = UInt64(try parseSize(memoryPageSize))
        var next: UInt64 = 0
        var mapped: [GuestMemoryRegion] = []
        for text in regions {
            let spec = try Self.parse(text)
            let region = try GuestMemoryRegion.mapping(file: spec.path, iova: spec.iova ?? next, pageSize: pageSize, writable: writable)
            next = (region.end + pageSize - 1) / pageSize * pageSize
            mapped.append(region)
        }
        return try GuestMemory(mapped)
    }

    /// The VMM's part of a save: the same files mapped read-write into every device's
    /// container for DMA. The containers keep the mappings (and the memory) alive.
    func mapForDMA(_ memory: GuestMemory, into devices: [VFIODevice]) throws {
        for region in memory.regions {
            let writable = try GuestMemoryRegion.mapping(file: region.name, length: region.length, iova: region.iova, pageSize: region.pageSize, writable: true)
            var seen: [VFIOContainer] = []
            for device in devices where !seen.contains(where: { $0 === device.container }) {
                try device.container.map(writable)
                seen.append(device.container)
            }
        }
    }
}

extension MemorySaveReport {
    var summaryLine: String {
        "memory: \(formatBytes(totalBytes)) in \(regions) region(s), pre-copy \(formatBytes(preCopyBytes)), final \(formatBytes(finalBytes)); tracker \(tracker.kind.rawValue)\(tracker.precise ? "" : " (imprecise)")\(tracker.usable ? "" : " (unusable)"): \(tracker.reason)"
    }
}

extension MemoryLoadReport {
    var summaryLine: String {
        "memory: loaded \(formatBytes(bytes)) (\(dataPages) data pages, \(zeroPages) zero pages in \(records) records)"
    }
}

/// The convergence rule for save and send: the downtime rule when a limit is given or memory
/// travels (its dirty rate is what a byte threshold cannot see), else the pending-bytes rule.
func convergencePolicy(_ downtimeLimit: Double?, withMemory: Bool, fallback: any ConvergencePolicy = PendingBytesPolicy()) throws(CLIFailure) -> any ConvergencePolicy {
    if let limit = downtimeLimit {
        guard limit > 0, limit.isFinite, limit < 3_600_000 else { throw CLIFailure(.usage, "--downtime-limit takes milliseconds above 0") }
        return DowntimePolicy(downtimeLimit: .microseconds(Int64((limit * 1000).rounded())))
    }
    return withMemory ? DowntimePolicy() : fallback
}
