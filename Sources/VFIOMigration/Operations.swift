// The embeddable operations: save devices into a stream, load a stream into devices, check a
// stream, check a target's compatibility. The CLI is a thin layer over these.
import Foundation
import VFIOCore
import VFIOStream

public enum Migration {
    /// Saves `devices` (in stream order) into a stream at `path` ("-" for stdout). When
    /// `targets` are known, their compatibility is checked after pre-copy and before any source
    /// stops; a mismatch returns the sources to RUNNING and throws `.streamIncompatible`.
    @discardableResult
    public static func save(
        _ devices: [OpenedDevice], to path: String, options: SaveOptions = SaveOptions(),
        checkingTargets targets: [OpenedDevice]? = nil
    ) throws(VFIOError) -> (report: SaveReport, header: StreamHeader) {
        let drivers = try devices.map { (d) throws(VFIOError) in try d.driver() }
        var descriptors: [DeviceDescriptor] = []
        for (device, driver) in zip(devices, drivers) {
            descriptors.append(try device.descriptor(flags: driver.flags, expectedStateSize: try driver.device.stopCopySizeEstimate()))
        }
        if let targets {
            guard targets.count == devices.count else {
                throw VFIOError(.invalidArgument, "\(devices.count) source device(s) but \(targets.count) target device(s)")
            }
        }
        let targetDescriptors = try targets.map { (t) throws(VFIOError) in try t.map { (d) throws(VFIOError) in try d.descriptor() } }
        let header = StreamHeader(
            creationTimeNanoseconds: Int64(Date().timeIntervalSince1970 * 1e9), maxPayload: UInt32(options.chunkSize),
            host: HostInfo.current, writer: "vfio-migrate \(VersionInfo.version)", devices: descriptors)
        var options = options
        if let targetDescriptors {
            let previous = options.beforeStop
            let sourceDescriptors = descriptors
            options.beforeStop = { () throws(VFIOError) in
                try previous?()
                try requireCompatible(sourceDescriptors, targetDescriptors)
            }
        }
        let writer: StreamFileWriter
        do {
            writer = try StreamFileWriter(path: path, header: header)
        } catch {
            var failure = error
            failure.message += "; source devices untouched: " + drivers.map { "\($0.name) \($0.knownState.map { "\($0)" } ?? "?")" }.joined(separator: ", ")
            throw failure
        }
        let report = try SaveSession(drivers: drivers, sink: writer, options: options).run()
        return (report, header)
    }

    /// Loads the stream at `path` ("-" for stdin) into `devices` (in stream order), checking
    /// every device's compatibility before any enters RESUMING.
    @discardableResult
    public static func load(
        _ devices: [OpenedDevice], from path: String, options: LoadOptions = LoadOptions()
    ) throws(VFIOError) -> (report: LoadReport, header: StreamHeader) {
        let reader = try StreamFileReader(path: path)
        guard reader.deviceCount == devices.count else {
            throw VFIOError(
                .streamIncompatible,
                "the stream carries \(reader.deviceCount) device(s) but \(devices.count) target device(s) were given",
                device: path)
        }
        let targets = try devices.map { (d) throws(VFIOError) in try d.descriptor() }
        try requireCompatible(reader.header.devices, targets)
        let drivers = try devices.map { (d) throws(VFIOError) in try d.driver() }
        let report = try LoadSession(drivers: drivers, source: reader, options: options).run()
        return (report, reader.header)
    }

    /// Every mismatch between what a stream's devices need and what `targets` offer.
    public static func compatibility(of sources: [DeviceDescriptor], with targets: [DeviceDescriptor]) -> [(device: Int, mismatch: CompatibilityMismatch)] {
        var found: [(Int, CompatibilityMismatch)] = []
        for (i, (source, target)) in zip(sources, targets).enumerated() {
            for m in VFIOStream.compatibility(of: source, with: target) { found.append((i, m)) }
        }
        return found
    }

    static func requireCompatible(_ sources: [DeviceDescriptor], _ targets: [DeviceDescriptor]) throws(VFIOError) {
        let mismatches = compatibility(of: sources, with: targets)
        guard mismatches.isEmpty else {
            let lines = mismatches.map { "device \($0.device) (\(targets[$0.device].name)): \($0.mismatch)" }
            throw VFIOError(.streamIncompatible, "incompatible target: " + lines.joined(separator: "; "))
        }
    }

    /// Reads and checks a whole stream (every checksum, the structure, the totals) without
    /// touching a device. Throws at the first problem, naming its byte offset.
    public static func verify(_ path: String) throws(VFIOError) -> StreamSummary {
        try StreamFileReader(path: path).validateToEnd()
    }
}

public enum VersionInfo {
    public static let version = "0.1.0"
}
