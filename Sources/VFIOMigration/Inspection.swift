// What `inspect` shows: the header, every device's descriptor, per device and phase the chunk
// count and bytes, and whether every checksum held (or where the first problem is).
import VFIOCore
import VFIOStream

public struct StreamInspection: Sendable, Encodable {
    public struct Phase: Sendable, Codable, Equatable {
        public var chunks: UInt64 = 0
        public var bytes: UInt64 = 0
    }
    public struct Device: Sendable, Encodable {
        public var index: Int
        public var descriptor: DeviceDescriptor
        public var preCopy = Phase()
        public var stopCopy = Phase()
        public var lastPreCopyProgress: PreCopyInfo?
        public var ended = false
    }
    public var source: String
    public var header: StreamHeader
    public var devices: [Device]
    public var streamBytes: UInt64 = 0
    public var records: UInt64 = 0
    /// True when the stream ended properly and every checksum and rule held.
    public var valid = false
    /// The first problem, naming its byte offset.
    public var problem: String?
}

extension Migration {
    /// Reads the whole stream, counting as it goes; a problem stops the walk and is reported
    /// in the result (the header must at least be readable, else this throws).
    public static func inspect(_ source: any ByteSource) throws(VFIOError) -> StreamInspection {
        let input = try StreamInput(from: source)
        var result = StreamInspection(
            source: source.name, header: input.header,
            devices: input.header.devices.enumerated().map { StreamInspection.Device(index: $0.offset, descriptor: $0.element) })
        do {
            walk: while true {
                switch try input.next() {
                case .state(let chunk, _):
                    if chunk.phase == .stopCopy {
                        result.devices[chunk.device].stopCopy.chunks += 1
                        result.devices[chunk.device].stopCopy.bytes += UInt64(chunk.payload.count)
                    } else {
                        result.devices[chunk.device].preCopy.chunks += 1
                        result.devices[chunk.device].preCopy.bytes += UInt64(chunk.payload.count)
                    }
                case .progress(let device, let info):
                    result.devices[device].lastPreCopyProgress = info
                case .endOfDevice(let device, _):
                    result.devices[device].ended = true
                case .endOfStream:
                    break walk
                }
            }
            result.valid = true
        } catch {
            result.problem = error.description
        }
        if let summary = input.summary {
            result.streamBytes = summary.streamLength
            result.records = summary.recordCount
        }
        return result
    }

    public static func inspect(_ path: String) throws(VFIOError) -> StreamInspection {
        try inspect(try FileChannel.reading(path))
    }
}
