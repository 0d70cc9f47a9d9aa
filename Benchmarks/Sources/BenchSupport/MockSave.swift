// A save of one emulated device through SaveSession into a chosen sink, timed. The device is
// opened once and every save ends with it back in RUNNING, so framed and baseline runs read
// the same device through the same descriptors, one after the other.
import Foundation
import VFIOCore
import VFIOMigration
import VFIOMockDevices
import VFIOStream
import VFIOSyscalls

/// What a save writes its chunks into.
public enum SaveTarget: String, CaseIterable, Sendable {
    /// StreamOutput: record header + CRC32C per chunk, sealed and written by the reading thread.
    case framed
    /// PipelinedStreamOutput: the same stream; chunks read into pool buffers, a writer thread
    /// seals and writes them.
    case pipelined
    /// RawCopySink: the same payload bytes, same write call, no framing.
    case rawCopy
    /// DiscardSink: nothing written; the device reads alone.
    case discard
}

public struct SaveMeasurement: Sendable {
    public var stateBytes: UInt64
    public var seconds: Double
    public var bytesPerSecond: Double { Double(stateBytes) / seconds }
    public var secondsPerMiB: Double { seconds / (Double(stateBytes) / Double(1 << 20)) }
}

public final class MockSaveBench {
    public let spec: String
    public let preCopy: Bool
    public let chunkSize: Int
    public let environment: DeviceEnvironment
    public let opened: VFIODevice
    public let driver: MigrationDriver
    private let header: StreamHeader

    /// `state` as the mock spec writes sizes ("256MiB"); `preCopy` adds the PRE_COPY flag.
    public init(name: String, state: String, preCopy: Bool, chunkSize: Int = 1 << 20) throws(VFIOError) {
        spec = "mock:\(name)?state=\(state)&flags=\(preCopy ? "stop-copy,pre-copy" : "stop-copy")"
        self.preCopy = preCopy
        self.chunkSize = chunkSize
        environment = DeviceEnvironment.withMockDevices()
        opened = try environment.open(spec)
        driver = try MigrationDriver(device: opened)
        header = BenchHeader.make(flags: driver.flags, maxPayload: chunkSize, expectedStateSize: opened.mock?.stateSize)
    }

    private var options: SaveOptions { SaveOptions(chunkSize: chunkSize, preCopy: preCopy) }

    /// One whole save into `target` (`path` for the ones that write). Only the session's run is
    /// timed; opening the sink (and the stream header it writes) is not.
    public func save(into target: SaveTarget, path: String = "/dev/null") throws -> SaveMeasurement {
        let sink: any SaveSink
        switch target {
        case .framed: sink = try StreamOutput(header: header, to: try FileChannel.creating(path))
        case .pipelined: sink = try PipelinedStreamOutput(header: header, to: [try FileChannel.creating(path)])
        case .rawCopy: sink = try RawCopySink(path: path)
        case .discard: sink = DiscardSink()
        }
        let session = try SaveSession(drivers: [driver], options: options)
        let clock = ContinuousClock()
        let start = clock.now
        let report = try session.run(into: sink, leaving: .running)
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        return SaveMeasurement(stateBytes: report.devices[0].totalBytes, seconds: seconds)
    }
}

/// The process's resident memory, from /proc/self/status.
public enum ResidentMemory {
    /// VmRSS in bytes.
    public static var current: Int { field("VmRSS:") }
    /// RssAnon in bytes: the process's own memory, without the file pages it maps (guest RAM).
    public static var anonymous: Int { field("RssAnon:") }
    /// VmHWM (the peak since start or since the last `resetPeak`) in bytes.
    public static var peak: Int { field("VmHWM:") }

    /// Sets the peak back to the current RSS (Linux 4.0+: "5" into clear_refs). False when the
    /// kernel refuses, in which case `peak` keeps the process-lifetime maximum.
    @discardableResult
    public static func resetPeak() -> Bool {
        guard let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
        defer { try? handle.close() }
        do { try handle.write(contentsOf: Array("5".utf8)) } catch { return false }
        return true
    }

    private static func field(_ name: String) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name) }),
              let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])
        else { return 0 }
        return kib << 10
    }
}
