// `bench --report DIR`: one self-contained HTML page (inline SVG and CSS, no script, no
// external asset) with what a person would rather look at than read: throughput over time
// per channel, the downtime in its parts, the bytes left after each pre-copy round, and the
// ratio table (or, for --device, the percentiles).
import Foundation
import VFIOMigration

enum BenchReportWriter {
    static func emulator(_ r: EmulatorBenchReport, memory: TwoProcessMemory.Result?, timeline: BenchTimeline?, to directory: String) throws {
        var body = header("vfio-migrate bench: the engine against raw baselines on the emulator", host: r.host)
        body += "<p>Chunks of \(esc(formatBytes(r.chunkSize))), \(r.repetitions) repetitions of every variant in a rotating order; a ratio is the median of the per-repetition ratios. Load average \(esc(BenchText.load(r.host.loadAverage))) at the start, \(esc(BenchText.load(r.loadAverageAtEnd))) at the end.</p>\n"
        body += "<h2>Ratios and targets</h2>\n<table><tr><th>comparison</th><th>median</th><th>fastest runs</th><th>per CPU-second</th><th>target</th><th></th></tr>\n"
        for ratio in r.ratios {
            let verdict = ratio.met.map { $0 ? "<td class=\"pass\">met</td>" : "<td class=\"fail\">missed</td>" } ?? "<td></td>"
            body += "<tr><td>\(esc(ratio.label))\(ratio.note.map { "<div class=\"note\">\(esc($0))</div>" } ?? "")</td><td class=\"n\">\(f3(ratio.median))</td><td class=\"n\">\(f3(ratio.best))</td><td class=\"n\">\(f3(ratio.cpu))</td><td>\(esc(ratio.target?.description ?? ""))</td>\(verdict)</tr>\n"
        }
        if let m = memory {
            let verdict = m.met ? "<td class=\"pass\">met</td>" : "<td class=\"fail\">missed</td>"
            body += "<tr><td>peak RSS, \(m.devices) × \(esc(formatBytes(m.stateBytesPerDevice))) over \(m.channels) channels: sender / receiver</td><td class=\"n\" colspan=\"3\">\(esc(formatBytes(m.sender.peakBytes))) / \(esc(formatBytes(m.receiver.peakBytes)))</td><td>&lt; \(esc(formatBytes(m.limitBytes))) each</td>\(verdict)</tr>\n"
        }
        body += "</table>\n<h2>Measured</h2>\n<table><tr><th>section</th><th>variant</th><th>median rate</th><th>slowest – fastest run</th></tr>\n"
        for row in r.rows {
            let rates = row.seconds.map { Double(row.bytes) / $0 }
            body += "<tr><td>\(row.section.rawValue)</td><td>\(esc(row.label))</td><td class=\"n\">\(esc(BenchText.rate(row.rate)))</td><td class=\"n\">\(esc(BenchText.rate(rates.min() ?? 0))) – \(esc(BenchText.rate(rates.max() ?? 0)))</td></tr>\n"
        }
        body += "</table>\n"
        if let t = timeline {
            body += "<h2>A live migration, sampled</h2>\n<p>\(t.devices) devices of \(esc(formatBytes(t.stateBytes / UInt64(max(1, t.devices))))) (on average, pre-copy included) that keep dirtying their state, sent over \(t.channels) loopback connections; every channel's bytes read every \(Int(t.interval * 1000)) ms.</p>\n"
            let (plot, window) = throughput(t.samples, channels: (0..<t.channels).map { "channel \($0)" }, since: "the first connection")
            body += figure(plot, "Throughput of each channel over the migration (\(window) moving window).")
            let d = t.downtime
            let parts: [(String, Double)] = [
                ("stopping", d.stopping.seconds), ("final read", d.finalRead.seconds), ("source finish", d.sourceFinish.seconds),
                ("transfer and target writes", d.transferAndWrite.seconds), ("target validation", d.targetValidation.seconds),
                ("commit and resume", d.commitAndResume.seconds),
            ]
            body += figure(SVG.stackedBar(title: "downtime", parts: parts.map { ($0.0, $0.1 * 1000) }, unit: "ms"), "The downtime, from the first device stopping until the target's devices ran, in its parts.")
            body += rounds(t.rounds.map(\.remainingBytes))
        }
        try write(page(body), to: directory)
    }

    static func device(_ r: DeviceBenchReport, samples: [ThroughputSample], to directory: String) throws {
        var body = header("vfio-migrate bench --device: \(r.devices.map(\.name).joined(separator: ", "))", host: r.host)
        body += "<table><tr><th>device</th><th>driver</th><th>NUMA node</th><th>IOMMU group</th><th>loaded into</th></tr>\n"
        for (d, t) in zip(r.devices, r.targets) {
            body += "<tr><td>\(esc(d.name))</td><td>\(esc(d.driver)) \(esc(d.driverVersion))</td><td>\(d.numaNode.map(String.init) ?? "–")</td><td>\(d.iommuGroup)\(d.iommuGroupType.map { " (\(esc($0)))" } ?? "")</td><td>\(esc(t.name))</td></tr>\n"
        }
        body += "</table>\n<h2>Percentiles over \(r.runs.count) run(s)</h2>\n<table><tr><th>phase</th><th>p25</th><th>p50</th><th>p90</th></tr>\n"
        for name in BenchText.phaseOrder {
            guard let p = r.percentiles[name] else { continue }
            body += "<tr><td>\(esc(name))</td><td class=\"n\">\(esc(formatSeconds(p.p25)))</td><td class=\"n\">\(esc(formatSeconds(p.p50)))</td><td class=\"n\">\(esc(formatSeconds(p.p90)))</td></tr>\n"
        }
        body += "</table>\n"
        if !samples.isEmpty {
            let (plot, window) = throughput(samples, channels: ["save stream"], since: "the save started")
            body += figure(plot, "Throughput of the last run's save stream (\(window) moving window).")
        }
        let parts = ["save.quiesce": "quiesce (P2P)", "save.stopping": "stopping", "save.finalRead": "final read", "load.begin": "target: enter RESUMING",
                     "load.writing": "target: writes", "load.validation": "target: validation", "load.resume": "target: resume"]
        let order = ["save.quiesce", "save.stopping", "save.finalRead", "load.begin", "load.writing", "load.validation", "load.resume"]
        let present = order.compactMap { key in r.percentiles[key].map { (parts[key]!, $0.p50 * 1000) } }
        body += figure(SVG.stackedBar(title: "downtime", parts: present, unit: "ms"), "The downtime's parts, medians over the runs (through memory: the target's writes include the pre-copy bytes).")
        if let last = r.runs.last { body += rounds(last.remainingAfterRound) }
        try write(page(body), to: directory)
    }

    // MARK: pieces

    private static func rounds(_ remaining: [UInt64]) -> String {
        guard !remaining.isEmpty else { return "<p>No pre-copy rounds (the devices stopped at once).</p>\n" }
        let most = remaining.max() ?? 0
        let (unit, shift): (String, Int) = most >= 1 << 30 ? ("GiB", 30) : most >= 1 << 20 ? ("MiB", 20) : most >= 1 << 10 ? ("KiB", 10) : ("bytes", 0)
        let bars = remaining.enumerated().map { ("\($0.offset + 1)", Double($0.element) / Double(1 << shift)) }
        return figure(SVG.barChart(title: "pre-copy rounds", bars: bars, xLabel: "pre-copy round", yLabel: "\(unit) left after the round"), "What each pre-copy round left to send (the session's estimate of the remaining state).")
    }

    /// Per channel, GiB/s over a moving window of up to 5 samples (fewer for a short run, so
    /// the line starts near its beginning); the plot and the window's length.
    private static func throughput(_ samples: [ThroughputSample], channels: [String], since start: String) -> (String, String) {
        let window = max(1, min(5, samples.count / 10))
        var series: [(name: String, points: [(Double, Double)])] = []
        for (c, name) in channels.enumerated() {
            var points: [(Double, Double)] = []
            for i in samples.indices where i >= window {
                let a = samples[i - window], b = samples[i]
                let dt = b.time - a.time
                guard dt > 0, c < b.bytes.count, c < a.bytes.count else { continue }
                points.append((b.time, Double(b.bytes[c] - a.bytes[c]) / dt / Double(1 << 30)))
            }
            series.append((name, points))
        }
        let spacing = samples.count > 1 ? (samples.last!.time - samples.first!.time) / Double(samples.count - 1) : 0
        let plot = SVG.lineChart(title: "throughput per channel", series: series, xLabel: "seconds since \(start)", yLabel: "GiB/s")
        return (plot, formatSeconds(spacing * Double(window)))
    }

    private static func header(_ title: String, host h: BenchHost) -> String {
        "<h1>\(esc(title))</h1>\n<p class=\"host\">\(esc(h.cpuModel ?? "unknown CPU")), \(h.cpus) CPUs\(h.numaNodes.map { ", \($0) NUMA node(s)" } ?? ""), \(esc(h.memoryBytes.map { formatBytes($0) } ?? "?")) of memory, Linux \(esc(h.kernelRelease)), host \(esc(h.hostName))\(h.iommuCommandLine.isEmpty ? "" : ", " + esc(h.iommuCommandLine.joined(separator: " "))); \(esc(ISO8601DateFormatter().string(from: Date())))</p>\n"
    }

    private static func figure(_ svg: String, _ caption: String) -> String {
        "<figure>\(svg)<figcaption>\(esc(caption))</figcaption></figure>\n"
    }

    private static func page(_ body: String) -> String {
        """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <title>vfio-migrate bench</title>
        <style>
        body { font-family: sans-serif; max-width: 60rem; margin: 1.5rem auto; padding: 0 1rem; color: #222; }
        table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
        th, td { border-bottom: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
        td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
        td.pass { color: #1a7f37; font-weight: bold; }
        td.fail { color: #c62828; font-weight: bold; }
        .note { color: #666; font-size: 0.85em; }
        .host { color: #555; }
        figure { margin: 1rem 0 2rem; }
        figcaption { color: #555; font-size: 0.9em; }
        </style>
        </head>
        <body>
        \(body)</body>
        </html>

        """
    }

    /// The run's JSON document and its text beside the page (bench.json, bench.txt), so a
    /// published report carries its numbers.
    static func keep(json: Data, text: String, in directory: String) throws {
        do {
            try (json + Data([0x0A])).write(to: URL(fileURLWithPath: directory + "/bench.json"))
            try (text + "\n").write(toFile: directory + "/bench.txt", atomically: true, encoding: .utf8)
        } catch {
            throw CLIFailure(.failed, "cannot write the run's numbers into \(shown(directory)): \(error.localizedDescription)")
        }
    }

    private static func write(_ html: String, to directory: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try html.write(toFile: directory + "/index.html", atomically: true, encoding: .utf8)
        } catch {
            throw CLIFailure(.failed, "cannot write the report into \(shown(directory)): \(error.localizedDescription)")
        }
    }

    private static func esc(_ text: String) -> String { SVG.escape(text) }
    private static func f3(_ v: Double) -> String { String(format: "%.3f", v) }
}
