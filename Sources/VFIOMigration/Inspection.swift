// What `inspect` shows: the header, every device's descriptor, per device and phase the chunk
// count and bytes, and whether every checksum held (or where the first problem is).
//
// The result is bounded whatever the stream holds: a 1 MiB header can describe tens of
// thousands of devices or attributes, and printing all of them (JSON especially) costs a
// hundred times the header. So at most `limits.devices` devices and `limits.attributes`
// attributes per device are described, every string is cut to `limits.stringBytes` bytes,
// and the result says how much was left out. Counting covers every device.
import VFIOCore
import VFIOKernel
import VFIOStream

/// How much of a stream's header `inspect` describes.
public struct InspectionLimits: Sendable, Hashable {
    public var devices: Int
    public var attributes: Int
    public var stringBytes: Int
    /// Guest memory regions described one by one; the rest are summed in `omitted`.
    public var regions: Int

    /// Negative counts are taken as 0, string limits below 16 bytes as 16.
    public init(devices: Int = 64, attributes: Int = 32, stringBytes: Int = 256, regions: Int = 64) {
        self.devices = max(0, devices)
        self.attributes = max(0, attributes)
        self.stringBytes = max(16, stringBytes)
        self.regions = max(0, regions)
    }
}

public struct StreamInspection: Sendable, Encodable {
    public struct Phase: Sendable, Codable, Equatable {
        public var chunks: UInt64 = 0
        public var bytes: UInt64 = 0

        mutating func add(_ other: Phase) {
            chunks += other.chunks
            bytes += other.bytes
        }
    }

    /// The stream header without its device list (that is `devices`).
    public struct Header: Sendable, Encodable {
        public var version: FormatVersion
        public var flags: UInt32
        public var creationTimeNanoseconds: Int64
        public var maxPayload: UInt32
        public var host: HostIdentity
        public var writer: String
        public var deviceCount: Int
    }

    public struct Device: Sendable, Encodable {
        public var index: Int
        /// Strings cut to the limit (with a note of what was cut), attributes up to the limit.
        public var descriptor: DeviceDescriptor
        public var omittedAttributes = 0
        /// Bytes left out of this descriptor's strings.
        public var omittedStringBytes = 0
        public var preCopy = Phase()
        public var stopCopy = Phase()
        public var lastPreCopyProgress: PreCopyInfo?
        public var ended = false
    }

    /// What the devices beyond the limit hold, summed.
    /// A guest memory region of the header and the pages the stream carried for it.
    public struct Region: Sendable, Encodable {
        public var index: Int
        public var start: UInt64
        public var length: UInt64
        public var pageSize: UInt32
        public var preCopy = PageCounts()
        public var stopCopy = PageCounts()
    }

    public struct Omitted: Sendable, Encodable {
        public var devices = 0
        public var regions = 0
        /// Pages of the regions not described, both phases.
        public var regionPages = PageCounts()
        public var preCopy = Phase()
        public var stopCopy = Phase()
        public var ended = 0
    }

    public var source: String
    public var header: Header
    public var devices: [Device]
    public var regions: [Region] = []
    public var omitted = Omitted()
    public var limits: Limits
    public var streamBytes: UInt64 = 0
    public var records: UInt64 = 0
    /// True when the stream ended properly and every checksum and rule held.
    public var valid = false
    /// The first problem, naming its byte offset.
    public var problem: String?

    public struct Limits: Sendable, Encodable {
        public var devices: Int
        public var attributes: Int
        public var stringBytes: Int
        public var regions: Int
    }
}

extension Migration {
    /// Reads the whole stream, counting as it goes; a problem stops the walk and is reported
    /// in the result (the header must at least be readable, else this throws).
    public static func inspect(_ source: any ByteSource, limits: InspectionLimits = InspectionLimits()) throws(VFIOError) -> StreamInspection {
        // Read-only: a stream without record checksums is walked too (its header says so).
        let input = try StreamInput(from: source, limits: .readOnly)
        // Pages are read and checked (record by record, into the reused buffer), not loaded.
        input.verifiesPagesWithoutMemory = true
        let h = input.header
        let cut = { (text: String) in DisplayText.truncated(text, limit: limits.stringBytes) }
        let header = StreamInspection.Header(
            version: h.version, flags: h.flags, creationTimeNanoseconds: h.creationTimeNanoseconds, maxPayload: h.maxPayload,
            host: HostIdentity(hostName: cut(h.host.hostName).text, machineID: cut(h.host.machineID).text,
                               kernelRelease: cut(h.host.kernelRelease).text),
            writer: cut(h.writer).text, deviceCount: h.devices.count)
        var result = StreamInspection(
            source: source.name, header: header,
            devices: h.devices.prefix(limits.devices).enumerated().map { bounded($0.offset, $0.element, limits) },
            limits: .init(devices: limits.devices, attributes: limits.attributes, stringBytes: limits.stringBytes, regions: limits.regions))
        result.omitted.devices = h.devices.count - result.devices.count
        // Counted for every device; only the described ones keep their own counters.
        var preCopy = Array(repeating: StreamInspection.Phase(), count: h.devices.count)
        var stopCopy = preCopy
        var ended = Array(repeating: false, count: h.devices.count)
        do {
            walk: while true {
                switch try input.next() {
                case .state(let chunk, _):
                    let phase = StreamInspection.Phase(chunks: 1, bytes: UInt64(chunk.payload.count))
                    if chunk.phase == .stopCopy { stopCopy[chunk.device].add(phase) } else { preCopy[chunk.device].add(phase) }
                case .progress(let device, let info):
                    if device < result.devices.count { result.devices[device].lastPreCopyProgress = info }
                case .endOfDevice(let device, _):
                    ended[device] = true
                case .endOfStream:
                    break walk
                }
            }
            result.valid = true
        } catch {
            result.problem = DisplayText.truncated(error.description, limit: 4 * limits.stringBytes).text
        }
        for i in h.devices.indices {
            if i < result.devices.count {
                result.devices[i].preCopy = preCopy[i]
                result.devices[i].stopCopy = stopCopy[i]
                result.devices[i].ended = ended[i]
            } else {
                result.omitted.preCopy.add(preCopy[i])
                result.omitted.stopCopy.add(stopCopy[i])
                if ended[i] { result.omitted.ended += 1 }
            }
        }
        let counted = input.summary?.regions ?? []
        for (i, region) in h.regions.enumerated() {
            let pages = i < counted.count ? counted[i] : RegionSummary(region: i)
            if i < limits.regions {
                result.regions.append(StreamInspection.Region(
                    index: i, start: region.start, length: region.length, pageSize: region.pageSize,
                    preCopy: pages.preCopy, stopCopy: pages.stopCopy))
            } else {
                result.omitted.regions += 1
                result.omitted.regionPages.absorb(pages.preCopy)
                result.omitted.regionPages.absorb(pages.stopCopy)
            }
        }
        if let summary = input.summary {
            result.streamBytes = summary.streamLength
            result.records = summary.recordCount
        }
        return result
    }

    public static func inspect(_ path: String, limits: InspectionLimits = InspectionLimits()) throws(VFIOError) -> StreamInspection {
        try inspect(try FileChannel.reading(path), limits: limits)
    }

    /// A descriptor with its strings and attribute list cut to the limits.
    static func bounded(_ index: Int, _ d: DeviceDescriptor, _ limits: InspectionLimits) -> StreamInspection.Device {
        var omittedBytes = 0
        func cut(_ text: String) -> String {
            let part = DisplayText.truncated(text, limit: limits.stringBytes)
            omittedBytes += part.omittedBytes
            return part.text
        }
        var copy = d
        copy.name = cut(d.name)
        copy.deviceAPI = cut(d.deviceAPI)
        copy.driverName = cut(d.driverName)
        copy.driverVersion = cut(d.driverVersion)
        copy.vendorCompatibility = cut(d.vendorCompatibility)
        var omittedAttributes = 0
        if let mdev = d.mdev {
            omittedAttributes = max(0, mdev.attributes.count - limits.attributes)
            copy.mdev = MdevDefinition(
                type: cut(mdev.type),
                attributes: mdev.attributes.prefix(limits.attributes).map { MdevAttribute(name: cut($0.name), value: cut($0.value)) })
        }
        return StreamInspection.Device(
            index: index, descriptor: copy, omittedAttributes: omittedAttributes, omittedStringBytes: omittedBytes)
    }
}

extension PageCounts {
    fileprivate mutating func absorb(_ other: PageCounts) {
        records += other.records
        dataPages += other.dataPages
        zeroPages += other.zeroPages
    }
}
