// Progress of long work, per device (and per channel once a transfer has several): on a
// terminal a few live lines (phase, bytes, rate, ETA) redrawn at most ten times a second;
// elsewhere one summary line at the end; nothing with --quiet.
//
// Feeding it: `StreamTap` (over any ByteSink or ByteSource carrying a stream) calls
// `devices(_:)` when the header passes and `add(device:phase:bytes:)` per record; a transfer
// with several connections adds one channel each (`addChannel`) and reports their bytes.
import Foundation

final class ProgressReporter {
    enum Mode { case live, summary, quiet }

    struct Row {
        var name: String
        var phase: String
        var bytes: UInt64 = 0
        /// Bytes expected in all (a device's stop-copy estimate), when known.
        var expected: UInt64?
        var done = false
    }

    let title: String
    let mode: Mode
    private(set) var devices: [Row] = []
    private(set) var channels: [Row] = []
    private let clock = ContinuousClock()
    private let started: ContinuousClock.Instant
    private var lastDraw: ContinuousClock.Instant?
    private var drawnLines = 0
    /// Channels of a transfer feed it from their own threads.
    private let lock = NSRecursiveLock()

    init(title: String, mode: Mode) {
        self.title = title
        self.mode = mode
        started = clock.now
    }

    // MARK: feeding

    func devices(_ names: [String], expected: [UInt64?]) {
        lock.lock()
        defer { lock.unlock() }
        // Every channel's header names the same devices: the first one sets the rows.
        if devices.map(\.name) == names { return }
        devices = zip(names, expected).map { Row(name: $0, phase: "waiting", expected: $1) }
        redraw(force: true)
    }

    func add(device: Int, phase: String, bytes: UInt64) {
        lock.lock()
        defer { lock.unlock() }
        guard devices.indices.contains(device) else { return }
        devices[device].phase = phase
        devices[device].bytes += bytes
        redraw()
    }

    func finish(device: Int) {
        lock.lock()
        defer { lock.unlock() }
        guard devices.indices.contains(device) else { return }
        devices[device].done = true
        devices[device].phase = "done"
        redraw()
    }

    /// A connection (or file) the bytes travel through; shown once there are two or more.
    @discardableResult
    func addChannel(_ name: String) -> Int {
        lock.lock()
        defer { lock.unlock() }
        channels.append(Row(name: name, phase: "open"))
        return channels.count - 1
    }

    func add(channel: Int, bytes: UInt64) {
        lock.lock()
        defer { lock.unlock() }
        guard channels.indices.contains(channel) else { return }
        channels[channel].bytes += bytes
        redraw()
    }

    /// Clears the live lines and prints `summary` (not with --quiet).
    func finish(_ summary: String) {
        lock.lock()
        defer { lock.unlock() }
        clear()
        if mode != .quiet { Console.err(summary) }
    }

    /// Clears the live lines before an error is printed.
    func abandon() {
        lock.lock()
        defer { lock.unlock() }
        clear()
    }

    // MARK: rendering

    var elapsedSeconds: Double {
        let (s, atto) = (clock.now - started).components
        return Double(s) + Double(atto) / 1e18
    }

    var totalBytes: UInt64 { devices.reduce(0) { $0 + $1.bytes } }

    /// The live lines: one per device, one per channel when there are several.
    func lines() -> [String] {
        lock.lock()
        defer { lock.unlock() }
        let seconds = elapsedSeconds
        var out = ["\(title): \(formatBytes(totalBytes)) in \(formatSeconds(seconds)), \(formatRate(bytes: totalBytes, seconds: seconds))"]
        let width = (devices + channels).map { shown($0.name, limit: 48).count }.max() ?? 0
        for row in devices { out.append("  " + line(row, width: width, seconds: seconds)) }
        if channels.count > 1 {
            for row in channels { out.append("  " + line(row, width: width, seconds: seconds)) }
        }
        return out
    }

    private func line(_ row: Row, width: Int, seconds: Double) -> String {
        let name = shown(row.name, limit: 48)
        var text = name + String(repeating: " ", count: max(0, width - name.count)) + "  " + row.phase
        text += "  " + formatBytes(row.bytes)
        if let expected = row.expected, expected > 0 { text += " / " + formatBytes(expected) }
        let rate = seconds > 0 ? Double(row.bytes) / seconds : 0
        text += "  " + formatRate(bytes: row.bytes, seconds: seconds)
        if !row.done, let expected = row.expected, expected > row.bytes, rate > 0 {
            text += "  ETA " + formatSeconds(Double(expected - row.bytes) / rate)
        }
        return text
    }

    private func redraw(force: Bool = false) {
        guard mode == .live else { return }
        let now = clock.now
        if !force, let lastDraw, now - lastDraw < .milliseconds(100) { return }
        lastDraw = now
        let lines = lines()
        var text = drawnLines > 0 ? "\u{1B}[\(drawnLines)F" : ""
        for line in lines { text += "\u{1B}[2K" + line + "\n" }
        drawnLines = lines.count
        // The lines were escaped when built; only our own cursor controls are raw.
        Console.raw(Data(text.utf8), toStandardError: true)
    }

    private func clear() {
        guard mode == .live, drawnLines > 0 else { return }
        Console.raw(Data(("\u{1B}[\(drawnLines)F" + "\u{1B}[J").utf8), toStandardError: true)
        drawnLines = 0
    }
}
