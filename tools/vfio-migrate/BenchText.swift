// The bench's results for people: the measured rows (median rate and the spread of the
// repetitions), then every ratio with its target and verdict, then the memory check.
import Foundation
import VFIOMigration

enum BenchText {
    static func emulator(_ r: EmulatorBenchReport, memory: TwoProcessMemory.Result?) -> String {
        var lines: [String] = []
        let h = r.host
        lines.append("machine: \(h.cpuModel ?? "unknown CPU"), \(h.cpus) CPUs, Linux \(h.kernelRelease); load average \(load(h.loadAverage)) at start, \(load(r.loadAverageAtEnd)) at end")
        lines.append("chunks of \(formatBytes(r.chunkSize)), \(r.repetitions) repetitions per variant, interleaved; rates are the median run's")
        var section: BenchSection?
        let width = max(40, r.rows.map(\.label.count).max() ?? 0)
        for row in r.rows {
            if row.section != section {
                section = row.section
                lines.append("")
                lines.append("\(row.section.rawValue):")
            }
            let rates = row.seconds.map { Double(row.bytes) / $0 }
            let spread = rates.isEmpty ? "" : "  (\(rate(rates.min()!)) – \(rate(rates.max()!)))"
            lines.append("  \(pad(shown(row.label), width))  \(rate(row.rate).leftPadded(12))\(spread)")
        }
        lines.append("")
        lines.append("ratios: median of the per-repetition ratios (of the fastest runs; of bytes per CPU-second), then the ratio's id (for --expect)")
        let ratioWidth = max(40, r.ratios.map(\.label.count).max() ?? 0)
        for ratio in r.ratios {
            let verdict = ratio.met.map { $0 ? "PASS" : "FAIL" } ?? "    "
            let target = ratio.target.map { "target \($0)" } ?? ""
            let also = String(format: "(%.3f; %.3f)", ratio.best, ratio.cpu)
            lines.append("  \(verdict)  \(pad(shown(ratio.label), ratioWidth))  \(String(format: "%.3f", ratio.median).leftPadded(7)) \(also.leftPadded(16))  \(pad(target, 14))  \(shown(ratio.id))")
            if let note = ratio.note, ratio.met == false || ratio.target == nil { lines.append("        \(shown(note, limit: 400))") }
        }
        if let m = memory {
            lines.append("")
            lines.append("memory: \(m.devices) × \(formatBytes(m.stateBytesPerDevice)) over \(m.channels) channels, send and receive as two processes (\(formatSeconds(m.seconds)))")
            let verdict = m.met ? "PASS" : "FAIL"
            lines.append("  \(verdict)  peak RSS sender \(formatBytes(m.sender.peakBytes)), receiver \(formatBytes(m.receiver.peakBytes))  target < \(formatBytes(m.limitBytes)) each")
        }
        for note in r.notes { lines.append("note: \(shown(note, limit: 400))") }
        let missed = r.missed.count + ((memory?.met ?? true) ? 0 : 1)
        let total = r.ratios.filter { $0.target != nil }.count + (memory == nil ? 0 : 1)
        lines.append("")
        lines.append("targets met: \(total - missed) of \(total)")
        return lines.joined(separator: "\n")
    }

    static func rate(_ bytesPerSecond: Double) -> String { formatRate(bytes: UInt64(max(0, bytesPerSecond)), seconds: 1) }

    static func load(_ values: [Double]) -> String { values.map { String(format: "%.2f", $0) }.joined(separator: " ") }

    static func pad(_ text: String, _ width: Int) -> String { text.count >= width ? text : text + String(repeating: " ", count: width - text.count) }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}

extension BenchText {
    static let phaseOrder = [
        "save.setup", "save.preCopy", "save.quiesce", "save.stopping", "save.finalRead", "save.finish", "save.total",
        "load.begin", "load.writing", "load.validation", "load.resume", "load.total", "downtime",
    ]

    static func device(_ r: DeviceBenchReport) -> String {
        var lines: [String] = []
        let h = r.host
        lines.append("host: \(h.cpuModel ?? "unknown CPU"), \(h.cpus) CPUs, \(h.numaNodes.map { "\($0) NUMA node(s), " } ?? "")Linux \(h.kernelRelease)\(h.iommuCommandLine.isEmpty ? "" : ", " + h.iommuCommandLine.joined(separator: " "))")
        for (d, t) in zip(r.devices, r.targets) {
            let node = d.numaNode.map { "node \($0)" } ?? "no NUMA node"
            let group = "group \(d.iommuGroup)\(d.iommuGroupType.map { " (\($0))" } ?? "")"
            lines.append("device \(shown(d.name)): \(shown(d.driver)) \(shown(d.driverVersion)), \(node), \(group)\(t.name == d.name ? "" : " -> \(shown(t.name))")")
        }
        if let b = r.buffers {
            let placed = b.boundNode.map { "on node \($0)" } ?? "not bound to a node"
            lines.append("buffers: \(b.bufferCount) × \(formatBytes(b.bufferSize)) \(placed), \(b.locked ? "locked" : "not locked")\(r.writerThreadNode.map { "; writer thread on node \($0)" } ?? "")\(b.note.map { " (\(shown($0)))" } ?? "")")
        }
        if let first = r.runs.first {
            let rates = r.runs.map(\.saveRate)
            lines.append("\(r.runs.count) run(s) of \(formatBytes(first.stateBytes)) (\(formatBytes(first.preCopyBytes)) pre-copy), save rate p50 \(rate(BenchStatistics.median(rates) ?? 0))\(BenchStatistics.median(r.runs.compactMap(\.loadRate)).map { ", load rate p50 \(rate($0))" } ?? "")")
        }
        lines.append("")
        lines.append("phase".padding(toLength: 18, withPad: " ", startingAt: 0) + "p25".leftPadded(12) + "p50".leftPadded(12) + "p90".leftPadded(12))
        for name in phaseOrder {
            guard let p = r.percentiles[name] else { continue }
            lines.append(name.padding(toLength: 18, withPad: " ", startingAt: 0) + formatSeconds(p.p25).leftPadded(12) + formatSeconds(p.p50).leftPadded(12) + formatSeconds(p.p90).leftPadded(12))
        }
        lines.append("")
        lines.append("devices left: " + r.finalStates.sorted { $0.key < $1.key }.map { "\(shown($0.key)) \($0.value)" }.joined(separator: ", "))
        return lines.joined(separator: "\n")
    }
}
