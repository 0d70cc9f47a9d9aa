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
    public var path: String
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
    public static func inspect(_ path: String) throws(VFIOError) -> StreamInspection {
        let reader = try StreamFileReader(path: path)
        var result = StreamInspection(
            path: path, header: reader.header,
            devices: reader.header.devices.enumerated().map { StreamInspection.Device(index: $0.offset, descriptor: $0.element) })
        do {
            walk: while true {
                switch try reader.next() {
                case .deviceState(let device, let phase, _, _, let payload):
                    if phase == .stopCopy {
                        result.devices[device].stopCopy.chunks += 1
                        result.devices[device].stopCopy.bytes += UInt64(payload.count)
                    } else {
                        result.devices[device].preCopy.chunks += 1
                        result.devices[device].preCopy.bytes += UInt64(payload.count)
                    }
                case .preCopyProgress(let device, let info):
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
        if let summary = reader.summary {
            result.streamBytes = summary.streamLength
            result.records = summary.recordCount
        }
        return result
    }
}
