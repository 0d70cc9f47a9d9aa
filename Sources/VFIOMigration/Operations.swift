// The embeddable one-call operations: save devices into a stream, load a stream into devices,
// check a stream, check a target's compatibility. The CLI is a thin layer over these; a VMM
// that drives the steps itself uses SaveSession and LoadSession directly.
import Foundation
import VFIOCore
import VFIOKernel
import VFIOStream

public enum Migration {
    public struct SaveResult: Sendable {
        public var report: SaveReport
        public var header: StreamHeader
        /// The pipelined data path's channels and buffers, when it was used.
        public var pipeline: PipelineMetrics?
    }

    public struct LoadResult: Sendable {
        public var report: LoadReport
        public var header: StreamHeader
    }

    /// How a save carries guest memory.
    public struct MemoryOptions {
        /// The tracker to use; nil: chosen as QEMU chooses (DirtyTrackerChoice).
        public var tracker: (any DirtyPageTracker)?
        /// With no tracker available, treat every page as dirty (instead of refusing).
        public var allowAllDirty: Bool
        /// The VMM's own dirty log, merged at every sync.
        public var vmmLog: (any VMMDirtyLog)?
        /// Nothing writes guest memory during the save (a paused guest, a file no one else
        /// maps): pre-copy pages are then checksummed and sent without a copy.
        public var stableDuringPreCopy: Bool

        public init(tracker: (any DirtyPageTracker)? = nil, allowAllDirty: Bool = false, vmmLog: (any VMMDirtyLog)? = nil, stableDuringPreCopy: Bool = false) {
            self.tracker = tracker
            self.allowAllDirty = allowAllDirty
            self.vmmLog = vmmLog
            self.stableDuringPreCopy = stableDuringPreCopy
        }
    }

    /// The stream header for `devices`: one descriptor each, in stream order, and the regions
    /// of `memory`. `recordChecksums: .off` sets NO_RECORD_CHECKSUMS (for transports that
    /// authenticate every byte); `.automatic` is `.on` here, where no transport is known.
    public static func header(
        for drivers: [MigrationDriver], devices: [VFIODevice], chunkSize: Int, memory: GuestMemory? = nil, recordChecksums: RecordChecksums = .on
    ) throws(VFIOError) -> StreamHeader {
        var descriptors: [DeviceDescriptor] = []
        for (device, driver) in zip(devices, drivers) {
            descriptors.append(try device.descriptor(flags: driver.flags, expectedStateSize: try device.stopCopySizeEstimate()))
        }
        if let memory, memory.largestPageSize + UInt64(PageTable.minimumPayload) > UInt64(chunkSize) {
            throw VFIOError(.invalidArgument, "pages of \(memory.largestPageSize) bytes do not fit records of \(chunkSize) bytes: raise the chunk size")
        }
        return StreamHeader(
            flags: recordChecksums == .off ? HeaderFlags.noRecordChecksums.rawValue : 0,
            creationTimeNanoseconds: Int64(Date().timeIntervalSince1970 * 1e9), maxPayload: UInt32(chunkSize),
            host: HostInfo.current, writer: "vfio-migrate \(VersionInfo.version)", devices: descriptors,
            regions: memory?.descriptors ?? [])
    }

    /// Saves `devices` (in stream order) into `sink`. When `targets` are known, their
    /// compatibility is checked after pre-copy and before any source stops; a mismatch returns
    /// the sources to RUNNING and throws `.streamIncompatible`. With `pipeline` (the default)
    /// device state is read into NUMA-local pool buffers on the devices' node and a writer
    /// thread seals and writes them; nil writes from the reading thread.
    ///
    /// With `memory`, its pages go in the stream too: every page at least once while the
    /// guest runs, the pages the devices (and the VMM's log) dirtied meanwhile again, round by
    /// round until the policy stops, the rest after the devices stopped. The tracker is chosen
    /// as QEMU chooses unless `memoryOptions` names one; a migration with no tracker is
    /// refused unless it allows treating every page as dirty.
    @discardableResult
    public static func save(
        _ devices: [VFIODevice], to sink: any ByteSink, options: SaveOptions = SaveOptions(),
        policy: any ConvergencePolicy = PendingBytesPolicy(), leaving final: SourceFinalState = .stopped,
        checkingTargets targets: [VFIODevice]? = nil, pipeline: PipelineOptions? = PipelineOptions(),
        memory: GuestMemory? = nil, memoryOptions: MemoryOptions = MemoryOptions(), recordChecksums: RecordChecksums = .on,
        roundByteBudget: Int = .max, afterRound: (SaveReport.Round) -> Void = { _ in }
    ) throws(VFIOError) -> SaveResult {
        if let targets, targets.count != devices.count {
            throw VFIOError(.invalidArgument, "\(devices.count) source device(s) but \(targets.count) target device(s)")
        }
        var drivers: [MigrationDriver] = []
        for device in devices { drivers.append(try MigrationDriver(device: device)) }
        let header = try header(for: drivers, devices: devices, chunkSize: options.chunkSize, memory: memory, recordChecksums: recordChecksums)
        var saveMemory: SaveMemory?
        if let memory {
            let tracker: any DirtyPageTracker
            if let given = memoryOptions.tracker {
                tracker = given
            } else {
                tracker = try DirtyTrackerChoice.choose(for: devices, memory: memory, allowAllDirty: memoryOptions.allowAllDirty)
            }
            saveMemory = SaveMemory(memory: memory, tracker: tracker, vmmLog: memoryOptions.vmmLog)
        }
        var targetDescriptors: [DeviceDescriptor]?
        if let targets {
            var found: [DeviceDescriptor] = []
            for target in targets { found.append(try target.descriptor()) }
            targetDescriptors = found
        }
        let session = try SaveSession(drivers: drivers, options: options, memory: saveMemory)
        let output: any SaveSink
        var pipelined: PipelinedStreamOutput?
        do {
            if var pipeline {
                pipeline.node = pipeline.node ?? devices.first?.identity.numaNode
                pipeline.bufferSize = max(pipeline.bufferSize, StreamFormat.recordHeaderSize + options.chunkSize + Batch.controlRecordSpace)
                let p = try PipelinedStreamOutput(header: header, to: [sink], options: pipeline)
                p.copiesLivePages = !memoryOptions.stableDuringPreCopy
                pipelined = p
                output = p
            } else {
                let s = try StreamOutput(header: header, to: sink)
                s.copiesLivePages = !memoryOptions.stableDuringPreCopy
                output = s
            }
        } catch {
            var failure = error
            failure.outcomes = drivers.map {
                DeviceOutcome(device: $0.name, role: .source, finalState: $0.knownState.map { .inState($0) } ?? .unknown(nil), recovery: .none)
            }
            throw failure
        }
        do {
            let report = try session.run(into: output, policy: policy, roundByteBudget: roundByteBudget, leaving: final, afterRound: afterRound, beforeStop: { () throws(VFIOError) in
                if let targetDescriptors { try requireCompatible(header.devices, targetDescriptors) }
            })
            return SaveResult(report: report, header: header, pipeline: pipelined?.metrics)
        } catch {
            pipelined?.cancel(error)
            throw error
        }
    }

    /// Saves into several channels at once: each sink gets a stream of its own (channel i of
    /// n, one migration id), devices spread over them and a large device split across them;
    /// `load(_:from:)` with the same channels (in any order) puts it back together.
    @discardableResult
    public static func save(
        _ devices: [VFIODevice], to sinks: [any ByteSink], options: SaveOptions = SaveOptions(),
        policy: any ConvergencePolicy = PendingBytesPolicy(), leaving final: SourceFinalState = .stopped,
        pipeline: PipelineOptions = PipelineOptions()
    ) throws(VFIOError) -> SaveResult {
        guard !sinks.isEmpty else { throw VFIOError(.invalidArgument, "a save needs at least one channel") }
        var drivers: [MigrationDriver] = []
        for device in devices { drivers.append(try MigrationDriver(device: device)) }
        var header = try header(for: drivers, devices: devices, chunkSize: options.chunkSize)
        header.migrationID = .random()
        header.refreshVersion()
        var pipeline = pipeline
        pipeline.node = pipeline.node ?? devices.first?.identity.numaNode
        pipeline.bufferSize = max(pipeline.bufferSize, StreamFormat.recordHeaderSize + options.chunkSize + Batch.controlRecordSpace)
        let session = try SaveSession(drivers: drivers, options: options)
        let output = try PipelinedStreamOutput(header: header, to: sinks, options: pipeline)
        do {
            let report = try session.run(into: output, policy: policy, leaving: final)
            return SaveResult(report: report, header: output.header, pipeline: output.metrics)
        } catch {
            output.cancel(error)
            throw error
        }
    }

    /// Loads the channels of one stream (as several `save(_:to:)` sinks wrote them, in any
    /// order) into `devices`, reading every channel on its own thread.
    @discardableResult
    public static func load(
        _ devices: [VFIODevice], from sources: [any ByteSource], leaving final: TargetFinalState = .stopped,
        memory: GuestMemory? = nil, limits: StreamLimits = .default
    ) throws(VFIOError) -> LoadResult {
        let input = try ParallelStreamInput(sources: sources, limits: limits)
        let loader = try memory.map { (m) throws(VFIOError) in try GuestMemoryLoader(memory: m) }
        if let loader {
            guard !input.header.regions.isEmpty else {
                throw VFIOError(.streamIncompatible, "target guest memory was given but the stream carries none")
            }
            try loader.accept(regions: input.header.regions, source: sources[0].name)
        } else {
            try refuseMemoryWithoutTarget(input.header, source: sources[0].name)
        }
        guard input.header.devices.count == devices.count else {
            throw VFIOError(
                .streamIncompatible, "the stream carries \(input.header.devices.count) device(s) but \(devices.count) target device(s) were given")
        }
        var targets: [DeviceDescriptor] = []
        for device in devices { targets.append(try device.descriptor()) }
        try requireCompatible(input.header.devices, targets)
        var drivers: [MigrationDriver] = []
        for device in devices { drivers.append(try MigrationDriver(device: device)) }
        let session = try LoadSession(drivers: drivers)
        try session.begin()
        do throws(VFIOError) {
            try input.load(into: session, node: devices.first?.identity.numaNode, memory: loader)
            try session.finish()
            if final == .running { try session.resume() }
        } catch {
            var failure = session.phase == .aborted ? error : session.failed(error)
            failure.loadReport?.memory = loader?.report
            throw failure
        }
        var report = session.report
        report.memory = loader?.report
        return LoadResult(report: report, header: input.header)
    }

    /// Saves into a stream file at `path` ("-" for standard output). The file appears only
    /// when the save completed; a failed save removes what it wrote and says so.
    @discardableResult
    public static func save(
        _ devices: [VFIODevice], to path: String, options: SaveOptions = SaveOptions(),
        policy: any ConvergencePolicy = PendingBytesPolicy(), leaving final: SourceFinalState = .stopped,
        checkingTargets targets: [VFIODevice]? = nil, pipeline: PipelineOptions? = PipelineOptions(),
        memory: GuestMemory? = nil, memoryOptions: MemoryOptions = MemoryOptions(), recordChecksums: RecordChecksums = .on,
        roundByteBudget: Int = .max, afterRound: (SaveReport.Round) -> Void = { _ in }
    ) throws(VFIOError) -> SaveResult {
        let file = try FileChannel.creating(path)
        let result: SaveResult
        do {
            result = try save(
                devices, to: file, options: options, policy: policy, leaving: final, checkingTargets: targets, pipeline: pipeline,
                memory: memory, memoryOptions: memoryOptions, recordChecksums: recordChecksums, roundByteBudget: roundByteBudget,
                afterRound: afterRound)
        } catch {
            var failure = error
            if let note = file.discard() { failure.message += " (\(note))" }
            throw failure
        }
        do {
            try file.commit()
            return result
        } catch {
            // The save itself finished: stopped sources whose stream never landed go back
            // to RUNNING, as after any failure before a target has their state.
            var failure = error
            if let note = file.discard() { failure.message += " (\(note))" }
            if final == .stopped { failure.outcomes += returnToRunning(devices) }
            throw failure
        }
    }

    /// Recovers every source to RUNNING (through the legal path, reset as the last resort)
    /// after a failure that came once they had stopped; each device's outcome as a value.
    public static func returnToRunning(_ sources: [VFIODevice]) -> [DeviceOutcome] {
        sources.map { (source) -> DeviceOutcome in
            do throws(VFIOError) {
                return try MigrationDriver(device: source).recover(preferring: .running, role: .source)
            } catch {
                return DeviceOutcome(
                    device: source.name, role: .source, finalState: .unknown(error.errno),
                    recovery: .failed(message: error.description, errno: error.errno))
            }
        }
    }

    /// Loads the stream from `source` into `devices` (in stream order), checking every
    /// device's compatibility before any enters RESUMING. The devices are left stopped unless
    /// `final` says running (a VMM resumes them after its own last state).
    ///
    /// With `memory` (mapped writable), the stream's pages are loaded into it, straight from
    /// the input; a stream whose memory regions differ from it is refused before any device
    /// enters RESUMING and before any page is written. `limits` may accept streams without
    /// record checksums (an authenticated transport).
    @discardableResult
    public static func load(
        _ devices: [VFIODevice], from source: any ByteSource, leaving final: TargetFinalState = .stopped,
        memory: GuestMemory? = nil, limits: StreamLimits = .default
    ) throws(VFIOError) -> LoadResult {
        let loader = try memory.map { (m) throws(VFIOError) in try GuestMemoryLoader(memory: m) }
        let input = try StreamInput(from: source, limits: limits, memory: loader)
        if loader == nil { try refuseMemoryWithoutTarget(input.header, source: source.name) }
        guard input.deviceCount == devices.count else {
            throw VFIOError(
                .streamIncompatible,
                "the stream carries \(input.deviceCount) device(s) but \(devices.count) target device(s) were given",
                device: source.name)
        }
        var targets: [DeviceDescriptor] = []
        for device in devices { targets.append(try device.descriptor()) }
        try requireCompatible(input.header.devices, targets)
        var drivers: [MigrationDriver] = []
        for device in devices { drivers.append(try MigrationDriver(device: device)) }
        let session = try LoadSession(drivers: drivers)
        do {
            var report = try session.run(from: input, leaving: final)
            report.memory = loader?.report
            return LoadResult(report: report, header: input.header)
        } catch {
            var failure = error
            failure.loadReport?.memory = loader?.report
            throw failure
        }
    }

    /// Loads the stream file at `path` ("-" for standard input).
    @discardableResult
    public static func load(
        _ devices: [VFIODevice], from path: String, leaving final: TargetFinalState = .stopped,
        memory: GuestMemory? = nil, limits: StreamLimits = .default
    ) throws(VFIOError) -> LoadResult {
        try load(devices, from: try FileChannel.reading(path), leaving: final, memory: memory, limits: limits)
    }

    /// A stream that carries guest memory needs target memory: refused before any device
    /// enters RESUMING, not at its first pages record.
    static func refuseMemoryWithoutTarget(_ header: StreamHeader, source: String) throws(VFIOError) {
        guard header.regions.isEmpty else {
            throw VFIOError(.streamIncompatible, "the stream carries \(header.regions.count) guest memory region(s) but no target memory was given", device: source)
        }
    }

    /// One way a target device differs from what the stream's device `device` needs.
    public struct DeviceMismatch: Sendable, Hashable {
        public var device: Int
        public var mismatch: CompatibilityMismatch
    }

    /// Every mismatch between what a stream's devices need and what `targets` offer.
    public static func compatibility(of sources: [DeviceDescriptor], with targets: [DeviceDescriptor]) -> [DeviceMismatch] {
        var found: [DeviceMismatch] = []
        for (i, (source, target)) in zip(sources, targets).enumerated() {
            for m in VFIOStream.compatibility(of: source, with: target) { found.append(DeviceMismatch(device: i, mismatch: m)) }
        }
        return found
    }

    /// Throws `.streamIncompatible` listing every mismatch.
    public static func requireCompatible(_ sources: [DeviceDescriptor], _ targets: [DeviceDescriptor]) throws(VFIOError) {
        let mismatches = compatibility(of: sources, with: targets)
        guard mismatches.isEmpty else {
            let lines = mismatches.map { "device \($0.device) (\(targets[$0.device].name)): \($0.mismatch)" }
            throw VFIOError(.streamIncompatible, "incompatible target: " + lines.joined(separator: "; "))
        }
    }

    /// Reads and checks a whole stream (every checksum, the structure, the totals) without
    /// touching a device. Throws at the first problem, naming its byte offset.
    /// `limits` may accept a stream without record checksums: its structure, lengths and
    /// order are checked, its data cannot be (the summary's header says which it was).
    public static func verify(_ source: any ByteSource, limits: StreamLimits = .default) throws(VFIOError) -> StreamSummary {
        try StreamInput(from: source, limits: limits).validateToEnd()
    }

    public static func verify(_ path: String, limits: StreamLimits = .default) throws(VFIOError) -> StreamSummary {
        try verify(try FileChannel.reading(path), limits: limits)
    }
}

public enum VersionInfo {
    public static let version = "0.2.0"
}
