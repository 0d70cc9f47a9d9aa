// Header field 7: which of several parallel streams of one migration this one is.

/// This stream is channel `index` of `count` parallel streams of one migration. Every
/// channel has its own header (same descriptors, regions and migration id), its own sequence
/// numbers, checksums and end-of-stream; one device's data may be split across channels.
/// Absent from a header means a single stream (channel 0 of 1).
public struct StreamChannel: Sendable, Hashable, Codable, CustomStringConvertible {
    public var index: UInt16
    public var count: UInt16

    /// The field is valid when `count >= 1` and `index < count`; StreamEncoder and the
    /// decoder check it (an invalid one is refused, never crashes).
    public init(index: UInt16, count: UInt16) {
        self.index = index
        self.count = count
    }

    public static let single = StreamChannel(index: 0, count: 1)

    /// More than one channel: per-channel chunk offsets need not be contiguous.
    public var isParallel: Bool { count > 1 }
    /// The channel that carries preCopyProgress and deviceDigest records.
    public var isPrimary: Bool { index == 0 }

    var problem: String? {
        if count == 0 { return "channel count is 0" }
        if index >= count { return "channel index \(index) is not below the channel count \(count)" }
        return nil
    }

    public var description: String { "channel \(index) of \(count)" }
}

/// Size of the channel field value: index u16, count u16.
let channelFieldSize = 4
