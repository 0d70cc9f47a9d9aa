// `vfio-migrate bench` on the emulator: every comparison the roadmap sets a target for,
// measured side by side in one run on the same bytes and the same kinds of fds. The sections
// run one after another; inside a section every variant runs once per repetition, in an order
// that rotates, and each ratio is the median of the per-repetition ratios.
import Foundation
import VFIOCore
import VFIOKernel
import VFIOSyscalls

/// A device the benchmark needs; the caller makes it (the CLI: a `mock:` device with the
/// emulator's fast source, so the emulator is not what is measured).
public struct BenchDeviceRequest: Sendable, Hashable {
    public enum Role: String, Sendable, Hashable { case source, target }
    /// Unique in the run.
    public var name: String
    public var role: Role
    public var stateBytes: UInt64
    public var preCopy: Bool
    /// Needed when several devices migrate together.
    public var p2p: Bool
    /// The device keeps dirtying its state while it runs (pre-copy has rounds to do).
    public var dirtying: Bool
}

public typealias BenchDeviceFactory = (BenchDeviceRequest) throws(VFIOError) -> VFIODevice

public struct EmulatorBenchOptions: Sendable {
    /// State of the device saved and loaded.
    public var stateBytes: Int
    /// Bytes per loopback run, shared by its channels' devices.
    public var loopbackBytes: Int
    public var tlsBytes: Int
    public var chunkSize: Int
    public var repetitions: Int
    /// Chunks per codec measurement.
    public var codecIterations: Int
    /// Guest memory of the pages section (whole MiB).
    public var pageRegionBytes = 64 << 20
    public var channelCounts: [Int]
    /// Where the file sink and the page-cache file go (tmpfs keeps a disk out of it).
    public var scratchDirectory: String
    public var sections: Set<BenchSection>
    /// TLS contexts for the tls section; nil skips it.
    public var tls: BenchTransport?
    /// Bounds the caller holds ratios to, by ratio id, in place of the built-in targets.
    public var targets: [String: BenchTarget] = [:]

    public init(
        stateBytes: Int = 1 << 30, loopbackBytes: Int = 1 << 30, tlsBytes: Int = 256 << 20, chunkSize: Int = 1 << 20,
        repetitions: Int = 5, codecIterations: Int = 200, channelCounts: [Int] = [1, 2, 4], scratchDirectory: String,
        sections: Set<BenchSection> = Set(BenchSection.allCases), tls: BenchTransport? = nil
    ) {
        self.stateBytes = stateBytes
        self.loopbackBytes = loopbackBytes
        self.tlsBytes = tlsBytes
        self.chunkSize = chunkSize
        self.repetitions = repetitions
        self.codecIterations = codecIterations
        self.channelCounts = channelCounts
        self.scratchDirectory = scratchDirectory
        self.sections = sections
        self.tls = tls
    }
}

public final class EmulatorBenchmark {
    public let options: EmulatorBenchOptions
    private let makeDevice: BenchDeviceFactory
    private let progress: (String) -> Void
    private var report: EmulatorBenchReport
    private var devices: [String: VFIODevice] = [:]

    public init(options: EmulatorBenchOptions, devices: @escaping BenchDeviceFactory, progress: @escaping (String) -> Void = { _ in }) {
        precondition(options.repetitions >= 1, "at least one repetition")
        self.options = options
        self.makeDevice = devices
        self.progress = progress
        report = EmulatorBenchReport(host: BenchHost.current(), chunkSize: options.chunkSize, repetitions: options.repetitions)
    }

    /// Runs every section asked for.
    public func run() throws(VFIOError) -> EmulatorBenchReport {
        for section in BenchSection.allCases where options.sections.contains(section) {
            progress("measuring \(section.rawValue)")
            switch section {
            case .codec: try codec()
            case .pages: try pages()
            case .save: try save()
            case .load: try load()
            case .loopback: try loopback()
            case .tls: try tls()
            }
        }
        report.loadAverageAtEnd = BenchHost.loadAverage()
        return report
    }

    // MARK: the measurement loop

    struct Variant {
        var id: String
        var label: String
        var bytes: UInt64
        /// One run: its seconds.
        var run: () throws(VFIOError) -> Double
    }

    enum Kind { case throughput, cost }

    struct Comparison {
        var id: String
        var label: String
        var of: String
        var over: String
        var kind: Kind = .throughput
        var target: BenchTarget? = nil
        var note: String? = nil
    }

    /// Every variant once to warm up, then once per repetition in rotating order.
    private func measure(_ section: BenchSection, _ variants: [Variant], _ comparisons: [Comparison]) throws(VFIOError) {
        for v in variants { _ = try v.run() }
        var seconds: [String: [Double]] = [:]
        var cpu: [String: [Double]] = [:]
        for repetition in 0..<options.repetitions {
            for v in BenchStatistics.order(variants, repetition: repetition) {
                let before = BenchIO.processCPUSeconds()
                seconds[v.id, default: []].append(try v.run())
                cpu[v.id, default: []].append(BenchIO.processCPUSeconds() - before)
            }
        }
        var rows: [String: BenchRow] = [:]
        for v in variants {
            let row = BenchRow(id: v.id, section: section, label: v.label, bytes: v.bytes, seconds: seconds[v.id] ?? [], cpuSeconds: cpu[v.id] ?? [])
            rows[v.id] = row
            report.rows.append(row)
        }
        for c in comparisons {
            guard let of = rows[c.of], let over = rows[c.over] else { preconditionFailure("comparison \(c.id) of unmeasured rows") }
            let ratio = { (a: Double, b: Double) -> Double in
                c.kind == .throughput ? (Double(of.bytes) / a) / (Double(over.bytes) / b) : (a / Double(of.bytes)) / (b / Double(over.bytes))
            }
            let values = zip(of.seconds, over.seconds).map(ratio)
            let median = BenchStatistics.median(values) ?? 0
            let best = ratio(of.seconds.min() ?? 0, over.seconds.min() ?? 0)
            let cpu = BenchStatistics.median(zip(of.cpuSeconds, over.cpuSeconds).map(ratio)) ?? 0
            let target = options.targets[c.id] ?? c.target
            report.ratios.append(BenchRatio(
                id: c.id, label: c.label, of: c.of, over: c.over, values: values, median: median, best: best, cpu: cpu, target: target,
                met: target.map { $0.isMet(by: median) }, note: c.note))
        }
    }

    fileprivate func device(_ request: BenchDeviceRequest) throws(VFIOError) -> VFIODevice {
        if let known = devices[request.name] { return known }
        let made = try makeDevice(request)
        devices[request.name] = made
        return made
    }

    private func pair(_ name: String, bytes: Int, p2p: Bool = false) throws(VFIOError) -> (VFIODevice, VFIODevice) {
        let state = UInt64(bytes)
        let source = try device(BenchDeviceRequest(name: "\(name)-s", role: .source, stateBytes: state, preCopy: false, p2p: p2p, dirtying: false))
        let target = try device(BenchDeviceRequest(name: "\(name)-t", role: .target, stateBytes: state, preCopy: false, p2p: p2p, dirtying: false))
        return (source, target)
    }

    private var saveOptions: SaveOptions { SaveOptions(chunkSize: options.chunkSize, preCopy: false) }
    private var scratch: String { options.scratchDirectory }

    // MARK: sections

    private func codec() throws(VFIOError) {
        let chunk = options.chunkSize
        let timing = try ChunkTiming(chunkSize: chunk, directory: scratch)
        let n = options.codecIterations
        let size = label(chunk)
        try measure(.codec, [
            Variant(id: "codec.frame", label: "framing + CRC32C, \(size) chunk in place", bytes: UInt64(chunk)) { () throws(VFIOError) in try timing.frame(count: n) },
            Variant(id: "codec.read", label: "page-cache read (pread) of a \(size) chunk", bytes: UInt64(chunk)) { () throws(VFIOError) in try timing.read(count: n) },
            Variant(id: "codec.memcpy", label: "memcpy of a \(size) chunk, one thread", bytes: UInt64(chunk)) { timing.copy(count: n) },
        ], [
            Comparison(
                id: "codec.frame/read", label: "framing + CRC32C / page-cache read, \(size) chunk", of: "codec.frame", over: "codec.read",
                kind: .cost, target: BenchTarget(.atMost, 0.5, origin: "issue 12")),
            Comparison(id: "codec.memcpy/read", label: "memcpy / page-cache read, \(size) chunk", of: "codec.memcpy", over: "codec.read", kind: .cost),
        ])
    }

    private func pages() throws(VFIOError) {
        let timing = try PageStreamTiming(regionBytes: options.pageRegionBytes)
        let bytes = UInt64(timing.regionBytes)
        let what = "\(label(timing.regionBytes)) of 4 KiB pages, a quarter zero"
        try measure(.pages, [
            Variant(id: "pages.engine", label: "engine pages records → /dev/null, in place (stop-copy), \(what)", bytes: bytes) { () throws(VFIOError) in
                try timing.engine(liveCopy: false)
            },
            Variant(id: "pages.engine.live", label: "the same through the live-page copy (pre-copy)", bytes: bytes) { () throws(VFIOError) in
                try timing.engine(liveCopy: true)
            },
            Variant(id: "pages.stream", label: "zero-page scan + CRC32C + framing alone, \(timing.batchPages) pages per record", bytes: bytes) { () throws(VFIOError) in
                try timing.scanAndFrame()
            },
            Variant(id: "pages.memcpy", label: "memcpy of the same pages, one thread", bytes: bytes) { timing.copy() },
        ], [
            Comparison(
                id: "pages.engine/memcpy", label: "page streaming in place / memcpy of the pages", of: "pages.engine", over: "pages.memcpy", kind: .cost,
                note: "the scan, checksum and live-page copy spread over the cores (\(ProcessInfo.processInfo.activeProcessorCount) here); the memcpy is one thread"),
            Comparison(id: "pages.engine.live/memcpy", label: "page streaming with the live-page copy / memcpy", of: "pages.engine.live", over: "pages.memcpy", kind: .cost),
            Comparison(id: "pages.stream/memcpy", label: "scan + CRC + framing alone, one thread / memcpy", of: "pages.stream", over: "pages.memcpy", kind: .cost),
        ])
    }

    private func save() throws(VFIOError) {
        let (source, _) = try pair("save", bytes: options.stateBytes)
        let bytes = UInt64(options.stateBytes)
        let chunk = options.chunkSize
        let buffer = IOBuffer(capacity: chunk)
        let framed = scratch + "/vfio-bench-\(ProcessInfo.processInfo.processIdentifier).vfiomig"
        let raw = scratch + "/vfio-bench-\(ProcessInfo.processInfo.processIdentifier).raw"
        let options = saveOptions
        let engineFile = { () throws(VFIOError) -> Double in
            unlink(framed)
            let file = try FileChannel.creating(framed)
            return try timed { () throws(VFIOError) in
                let r = try Migration.save([source], to: file, options: options, leaving: .running)
                try file.commit()
                return r.report.totalBytes
            }.seconds
        }
        let rawFile = { () throws(VFIOError) -> Double in
            unlink(raw)
            let file = try FileChannel.creating(raw)
            return try timed { () throws(VFIOError) in
                let n = try RawCopy.save(source, into: file, chunkSize: chunk, buffer: buffer)
                try file.commit()
                return n
            }.seconds
        }
        try measure(.save, [
            Variant(id: "save.null.engine", label: "engine save → /dev/null", bytes: bytes) { () throws(VFIOError) in
                let sink = try FileChannel.creating("/dev/null")
                return try timed { () throws(VFIOError) in try Migration.save([source], to: sink, options: options, leaving: .running).report.totalBytes }.seconds
            },
            Variant(id: "save.null.serial", label: "engine save → /dev/null, one thread (no pipeline)", bytes: bytes) { () throws(VFIOError) in
                let sink = try FileChannel.creating("/dev/null")
                return try timed { () throws(VFIOError) in
                    try Migration.save([source], to: sink, options: options, leaving: .running, pipeline: nil).report.totalBytes
                }.seconds
            },
            Variant(id: "save.null.raw", label: "raw read/write loop → /dev/null", bytes: bytes) { () throws(VFIOError) in
                let sink = try FileChannel.creating("/dev/null")
                return try timed { () throws(VFIOError) in try RawCopy.save(source, into: sink, chunkSize: chunk, buffer: buffer) }.seconds
            },
            Variant(id: "save.file.engine", label: "engine save → file (\(scratch))", bytes: bytes, run: engineFile),
            Variant(id: "save.file.raw", label: "raw read/write loop → file", bytes: bytes, run: rawFile),
            Variant(id: "save.pipe.engine", label: "engine save → pipe (drained by a thread)", bytes: bytes) { () throws(VFIOError) in
                let pipe = try PipeSink()
                return try timed { () throws(VFIOError) in
                    _ = try Migration.save([source], to: pipe, options: options, leaving: .running)
                    return try pipe.finish()
                }.seconds
            },
            Variant(id: "save.pipe.raw", label: "raw read/write loop → pipe", bytes: bytes) { () throws(VFIOError) in
                let pipe = try PipeSink()
                return try timed { () throws(VFIOError) in
                    _ = try RawCopy.save(source, into: pipe, chunkSize: chunk, buffer: buffer)
                    return try pipe.finish()
                }.seconds
            },
        ], [
            Comparison(
                id: "save.null", label: "framed save / raw copy → /dev/null", of: "save.null.engine", over: "save.null.raw",
                target: BenchTarget(.atLeast, 0.97, origin: "issues 10 and 12")),
            Comparison(
                id: "save.null.serial", label: "framed save in one thread / raw copy → /dev/null", of: "save.null.serial", over: "save.null.raw",
                note: "the same save without the pipeline's writer thread: the reader frames and checksums each chunk itself"),
            Comparison(id: "save.file", label: "framed save / raw copy → file", of: "save.file.engine", over: "save.file.raw"),
            Comparison(id: "save.pipe", label: "framed save / raw copy → pipe", of: "save.pipe.engine", over: "save.pipe.raw"),
        ])
        savedFiles = (framed, raw)
    }

    private var savedFiles: (framed: String, raw: String)?

    deinit {
        if let savedFiles {
            unlink(savedFiles.framed)
            unlink(savedFiles.raw)
        }
    }

    private func load() throws(VFIOError) {
        let (source, target) = try pair("save", bytes: options.stateBytes)
        let chunk = options.chunkSize
        if savedFiles == nil {
            let framed = scratch + "/vfio-bench-\(ProcessInfo.processInfo.processIdentifier).vfiomig"
            let raw = scratch + "/vfio-bench-\(ProcessInfo.processInfo.processIdentifier).raw"
            try Migration.save([source], to: framed, options: saveOptions, leaving: .running)
            let file = try FileChannel.creating(raw)
            _ = try RawCopy.save(source, into: file, chunkSize: chunk)
            try file.commit()
            savedFiles = (framed, raw)
        }
        guard let files = savedFiles else { return }
        let bytes = UInt64(options.stateBytes)
        let buffer = IOBuffer(capacity: chunk)
        try measure(.load, [
            Variant(id: "load.file.engine", label: "engine load ← stream file", bytes: bytes) { () throws(VFIOError) in
                let file = try FileChannel.reading(files.framed)
                return try timed { () throws(VFIOError) in try Migration.load([target], from: file, leaving: .running).report.totalBytes }.seconds
            },
            Variant(id: "load.file.raw", label: "raw read/write loop ← file of the bare state", bytes: bytes) { () throws(VFIOError) in
                let file = try FileChannel.reading(files.raw)
                return try timed { () throws(VFIOError) in try RawCopy.load(target, from: file, chunkSize: chunk, buffer: buffer) }.seconds
            },
        ], [
            Comparison(id: "load.file", label: "load of the stream / raw copy into the device ← file", of: "load.file.engine", over: "load.file.raw"),
        ])
    }

    private func loopback() throws(VFIOError) {
        let total = options.loopbackBytes
        let chunk = options.chunkSize
        var variants: [Variant] = []
        var comparisons: [Comparison] = []
        let counts = options.channelCounts
        for n in counts {
            var sources: [VFIODevice] = []
            var targets: [VFIODevice] = []
            for i in 0..<n {
                let (s, t) = try pair("lb\(n)-\(i)", bytes: total / n, p2p: n > 1)
                sources.append(s)
                targets.append(t)
            }
            let bytes = UInt64(total / n * n)
            let save = saveOptions
            let (s, t) = (sources, targets)
            variants.append(Variant(id: "loopback.\(n).engine", label: "send/receive, \(n) device(s) over \(n) channel(s)", bytes: bytes) { () throws(VFIOError) in
                try LoopbackRun.engine(s, into: t, channels: n, save: save).timing.seconds
            })
            variants.append(Variant(id: "loopback.\(n).raw", label: "raw socket copy, \(n) connection(s), a thread per end", bytes: bytes) { () throws(VFIOError) in
                try LoopbackRun.raw(s, into: t, chunkSize: chunk).seconds
            })
            comparisons.append(Comparison(
                id: "loopback.\(n)", label: "send/receive / raw socket copy, \(n) channel(s)", of: "loopback.\(n).engine",
                over: "loopback.\(n).raw", target: BenchTarget(.atLeast, 0.9, origin: "issue 10")))
        }
        if let most = counts.max(), most > 1 {
            let (s, t) = try pair("lb-split", bytes: total / most * most)
            let save = saveOptions
            variants.append(Variant(id: "loopback.split.engine", label: "send/receive, one device split over \(most) channels", bytes: UInt64(total / most * most)) { () throws(VFIOError) in
                try LoopbackRun.engine([s], into: [t], channels: most, save: save).timing.seconds
            })
            comparisons.append(Comparison(
                id: "loopback.split", label: "one device over \(most) channels / raw socket copy, \(most) connections",
                of: "loopback.split.engine", over: "loopback.\(most).raw",
                note: "the raw copy moves \(most) devices' state, a connection each; the engine splits one device's chunks round-robin"))
            if let least = counts.min(), least < most {
                comparisons.append(Comparison(
                    id: "loopback.scaling.engine", label: "send/receive scaling, \(most) channels / \(least)", of: "loopback.\(most).engine",
                    over: "loopback.\(least).engine", note: "\(ProcessInfo.processInfo.activeProcessorCount) CPUs: more channels than cores add threads, not cores"))
                comparisons.append(Comparison(
                    id: "loopback.scaling.raw", label: "raw socket copy scaling, \(most) connections / \(least)", of: "loopback.\(most).raw",
                    over: "loopback.\(least).raw"))
            }
        }
        try measure(.loopback, variants, comparisons)
    }

    private func tls() throws(VFIOError) {
        guard let transport = options.tls else {
            report.notes.append("tls: skipped (no credentials)")
            return
        }
        let (s, t) = try pair("tls", bytes: options.tlsBytes)
        let bytes = UInt64(options.tlsBytes)
        let chunk = options.chunkSize
        let save = saveOptions
        try measure(.tls, [
            Variant(id: "tls.engine", label: "send/receive over TLS 1.3, 1 channel", bytes: bytes) { () throws(VFIOError) in
                try LoopbackRun.engine([s], into: [t], channels: 1, transport: transport, save: save).timing.seconds
            },
            Variant(id: "tls.plain.engine", label: "send/receive over plain TCP, 1 channel", bytes: bytes) { () throws(VFIOError) in
                try LoopbackRun.engine([s], into: [t], channels: 1, save: save).timing.seconds
            },
            Variant(id: "tls.raw", label: "raw socket copy over TLS 1.3, 1 connection", bytes: bytes) { () throws(VFIOError) in
                try LoopbackRun.raw([s], into: [t], transport: transport, chunkSize: chunk).seconds
            },
            Variant(id: "tls.plain.raw", label: "raw socket copy over plain TCP, 1 connection", bytes: bytes) { () throws(VFIOError) in
                try LoopbackRun.raw([s], into: [t], chunkSize: chunk).seconds
            },
        ], [
            Comparison(
                id: "tls.engine/plain", label: "send/receive, TLS 1.3 / plain TCP", of: "tls.engine", over: "tls.plain.engine",
                target: BenchTarget(.atLeast, 0.7, origin: "issue 10 (security)"),
                note: "known miss: OpenSSL 3.0's user-space AES-GCM and its extra copy on read cost more than loopback's one copy per end; no kernel TLS here (docs/security.md, \"Transport: TLS implementation\")"),
            Comparison(id: "tls.engine/raw", label: "send/receive over TLS / raw socket copy over TLS", of: "tls.engine", over: "tls.raw"),
            Comparison(id: "tls.raw/plain", label: "raw socket copy, TLS 1.3 / plain TCP", of: "tls.raw", over: "tls.plain.raw"),
        ])
    }

    private func label(_ bytes: Int) -> String {
        bytes >= 1 << 30 && bytes % (1 << 30) == 0 ? "\(bytes >> 30) GiB" : bytes >= 1 << 20 && bytes % (1 << 20) == 0 ? "\(bytes >> 20) MiB" : "\(bytes >> 10) KiB"
    }
}

/// One sampled live migration for the report: bytes per channel over time, the downtime's
/// parts, and what each pre-copy round left.
public struct BenchTimeline: Sendable, Codable {
    public var devices: Int
    public var channels: Int
    public var stateBytes: UInt64
    public var interval: Double
    public var samples: [ThroughputSample]
    public var downtime: DowntimeBreakdown
    public var rounds: [SaveReport.Round]
}

extension EmulatorBenchmark {
    /// `devices` devices of `bytes` each that pre-copy while they keep dirtying their state,
    /// sent over `channels` loopback connections with every channel's bytes sampled.
    public func timeline(devices count: Int = 4, bytes: Int, channels: Int = 4) throws(VFIOError) -> BenchTimeline {
        var sources: [VFIODevice] = []
        var targets: [VFIODevice] = []
        for i in 0..<count {
            let state = UInt64(bytes)
            sources.append(try device(BenchDeviceRequest(name: "tl\(i)-s", role: .source, stateBytes: state, preCopy: true, p2p: count > 1, dirtying: true)))
            targets.append(try device(BenchDeviceRequest(name: "tl\(i)-t", role: .target, stateBytes: state, preCopy: true, p2p: count > 1, dirtying: true)))
        }
        let interval = Duration.milliseconds(10)
        let box = SamplerBox()
        let run = try LoopbackRun.engine(
            sources, into: targets, channels: channels, save: SaveOptions(chunkSize: options.chunkSize, preCopy: true),
            wrap: { base in
                let counting = CountingConnector(base, channels: channels)
                box.sampler = ThroughputSampler(counting.counters, interval: interval)
                return counting
            })
        let samples = box.sampler?.stop() ?? []
        return BenchTimeline(
            devices: count, channels: channels, stateBytes: run.send.report.totalBytes, interval: interval.seconds, samples: samples,
            downtime: run.send.downtime, rounds: run.send.report.rounds)
    }
}

private final class SamplerBox: @unchecked Sendable {
    var sampler: ThroughputSampler?
}
