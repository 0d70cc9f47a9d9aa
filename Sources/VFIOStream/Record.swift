// Records as the decoder hands them out: typed, validated, payload left where it was.

/// A piece of device state. The bytes are the record's payload, which stays in the
/// caller's buffer (the decoder never copies it).
public struct DeviceStateChunk: Sendable, Hashable, Codable {
    public var device: Int
    public var phase: StatePhase
    /// Position of the first byte within the device's data stream.
    public var offset: UInt64
    public var length: Int

    public init(device: Int, phase: StatePhase, offset: UInt64, length: Int) {
        self.device = device
        self.phase = phase
        self.offset = offset
        self.length = length
    }
}

/// VFIO_MIG_GET_PRECOPY_INFO as read at one point of the pre-copy phase.
public struct PreCopyProgress: Sendable, Hashable, Codable {
    public var device: Int
    /// The device's data stream position when the values were read.
    public var offset: UInt64
    public var initialBytes: UInt64
    public var dirtyBytes: UInt64

    public init(device: Int, offset: UInt64, initialBytes: UInt64, dirtyBytes: UInt64) {
        self.device = device
        self.offset = offset
        self.initialBytes = initialBytes
        self.dirtyBytes = dirtyBytes
    }
}

/// A device's totals, as declared by its end-of-device record (or as counted).
public struct DeviceTotals: Sendable, Hashable, Codable, CustomStringConvertible {
    public var device: Int
    public var preCopyBytes: UInt64
    public var stopCopyBytes: UInt64
    public var chunkCount: UInt64

    public init(device: Int, preCopyBytes: UInt64, stopCopyBytes: UInt64, chunkCount: UInt64) {
        self.device = device
        self.preCopyBytes = preCopyBytes
        self.stopCopyBytes = stopCopyBytes
        self.chunkCount = chunkCount
    }

    public var totalBytes: UInt64 { preCopyBytes &+ stopCopyBytes }
    public var description: String {
        "(preCopy \(preCopyBytes) B, stopCopy \(stopCopyBytes) B, \(chunkCount) chunks)"
    }
}

/// The stream's totals, as declared by its end-of-stream record (or as counted).
public struct StreamTotals: Sendable, Hashable, Codable, CustomStringConvertible {
    public var deviceCount: Int
    public var totalStateBytes: UInt64
    /// Records before the end-of-stream record (equals its sequence number).
    public var recordCount: UInt64

    public init(deviceCount: Int, totalStateBytes: UInt64, recordCount: UInt64) {
        self.deviceCount = deviceCount
        self.totalStateBytes = totalStateBytes
        self.recordCount = recordCount
    }

    public var description: String { "(\(deviceCount) devices, \(totalStateBytes) state bytes, \(recordCount) records)" }
}

/// A device's digest record (type 6): what ties its data to its descriptor.
public struct DeviceDigest: Sendable, Hashable, Codable {
    public var device: Int
    /// The device's total data length (over all channels).
    public var offset: UInt64
    /// CRC32C of the device's descriptor field value as it appears in the header (checked).
    public var descriptorCRC: UInt32
    /// CRC32C of the device's whole data stream in offset order.
    public var dataCRC: UInt32
    /// True when this decoder checked `dataCRC` against the data it received: a single
    /// stream with record checksums. On channel 0 of several the reassembler checks it;
    /// without record checksums it is 0 and unchecked.
    public var dataVerified: Bool

    public init(device: Int, offset: UInt64, descriptorCRC: UInt32, dataCRC: UInt32, dataVerified: Bool) {
        self.device = device
        self.offset = offset
        self.descriptorCRC = descriptorCRC
        self.dataCRC = dataCRC
        self.dataVerified = dataVerified
    }
}

/// One validated record.
public enum Record: Sendable, Hashable {
    case deviceState(DeviceStateChunk)
    case preCopyProgress(PreCopyProgress)
    /// Guest memory pages; the data follow the table in the payload.
    case pages(PageTable)
    case endOfDevice(DeviceTotals)
    case endOfStream(StreamTotals)
    case deviceDigest(DeviceDigest)
    /// A record this reader does not support but was allowed to skip.
    case skipped(type: RecordType, length: Int)
}

/// Fixed payload sizes.
enum PayloadSize {
    static let preCopyProgress = 16
    static let endOfDevice = 24
    static let endOfStream = 24
    static let deviceDigest = 8
}
