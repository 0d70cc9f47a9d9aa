// VFIO_DEVICE_FEATURE indexes and directions as values, so no caller passes a bare number.
import CVFIO

/// A VFIO_DEVICE_FEATURE index.
public struct DeviceFeature: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let migration = DeviceFeature(rawValue: UInt32(CVFIO_DEVICE_FEATURE_MIGRATION))
    public static let migrationDeviceState = DeviceFeature(rawValue: UInt32(CVFIO_DEVICE_FEATURE_MIG_DEVICE_STATE))
    public static let dmaLoggingStart = DeviceFeature(rawValue: UInt32(CVFIO_DEVICE_FEATURE_DMA_LOGGING_START))
    public static let dmaLoggingStop = DeviceFeature(rawValue: UInt32(CVFIO_DEVICE_FEATURE_DMA_LOGGING_STOP))
    public static let dmaLoggingReport = DeviceFeature(rawValue: UInt32(CVFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT))
    public static let migrationDataSize = DeviceFeature(rawValue: UInt32(CVFIO_DEVICE_FEATURE_MIG_DATA_SIZE))
    public static let preCopyInfoV2 = DeviceFeature(rawValue: UInt32(CVFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2))

    /// The uAPI's name ("MIG_DATA_SIZE"), or "feature N".
    public var description: String {
        switch self {
        case .migration: "MIGRATION"
        case .migrationDeviceState: "MIG_DEVICE_STATE"
        case .dmaLoggingStart: "DMA_LOGGING_START"
        case .dmaLoggingStop: "DMA_LOGGING_STOP"
        case .dmaLoggingReport: "DMA_LOGGING_REPORT"
        case .migrationDataSize: "MIG_DATA_SIZE"
        case .preCopyInfoV2: "MIG_PRECOPY_INFOv2"
        default: "feature \(rawValue)"
        }
    }

    /// "VFIO_DEVICE_FEATURE[MIG_DEVICE_STATE|SET]": how errors name one call.
    func operationName(_ direction: UInt32) -> String {
        var parts: [String] = []
        if direction & UInt32(CVFIO_DEVICE_FEATURE_PROBE) != 0 { parts.append("PROBE") }
        if direction & UInt32(CVFIO_DEVICE_FEATURE_GET) != 0 { parts.append("GET") }
        if direction & UInt32(CVFIO_DEVICE_FEATURE_SET) != 0 { parts.append("SET") }
        return "VFIO_DEVICE_FEATURE[\(self)|\(parts.joined(separator: "|"))]"
    }
}

/// The direction a PROBE asks about.
public struct FeatureAccess: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let get = FeatureAccess(rawValue: UInt32(CVFIO_DEVICE_FEATURE_GET))
    public static let set = FeatureAccess(rawValue: UInt32(CVFIO_DEVICE_FEATURE_SET))
}

/// How a DMA mapping may be used by the device.
public struct DMAAccess: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// The device may read the memory.
    public static let read = DMAAccess(rawValue: UInt32(CVFIO_DMA_MAP_FLAG_READ))
    /// The device may write the memory.
    public static let write = DMAAccess(rawValue: UInt32(CVFIO_DMA_MAP_FLAG_WRITE))
    public static let readWrite: DMAAccess = [.read, .write]
}

/// An IOVA range given as start and length (DMA logging, dirty bitmaps).
public struct DMARange: Hashable, Sendable, Codable, CustomStringConvertible {
    public var iova: UInt64
    public var length: UInt64
    public init(iova: UInt64, length: UInt64) {
        self.iova = iova
        self.length = length
    }
    public var end: UInt64 { iova &+ length }
    public var description: String { "0x\(String(iova, radix: 16))+0x\(String(length, radix: 16))" }
}
