// What an embedder did wrong when driving StreamEncoder (or encoding a header): thrown,
// never a crash, because a VMM drives the encoder directly and its mistakes are its own.

/// A call the format forbids at this point, or a header that cannot be written.
public struct StreamUsageError: Error, Sendable, Equatable, CustomStringConvertible {
    public let kind: Kind

    public init(_ kind: Kind) { self.kind = kind }

    public enum Kind: Sendable, Equatable {
        /// The header cannot be written; `reason` says which field and why.
        case invalidHeader(reason: String)
        /// The header uses something a reader of `declared` must not skip.
        case readerMinorTooLow(required: UInt16, declared: UInt16)
        /// Any record after end-of-stream.
        case streamComplete
        case deviceOutOfRange(device: Int, deviceCount: Int)
        /// A record for a device after its end-of-device record.
        case deviceEnded(device: Int)
        /// State or progress for a device after its digest.
        case deviceDigestWritten(device: Int)
        case duplicateDeviceDigest(device: Int)
        /// End of a device in a stream whose version requires a digest first.
        case missingDeviceDigest(device: Int)
        /// End of stream while these devices are still open.
        case devicesOpen([Int])
        /// A state chunk of 0 bytes or above the header's maxPayload.
        case chunkLength(Int, maxPayload: UInt32)
        case preCopyNotAdvertised(device: Int)
        /// Pre-copy data or progress after the device's stop-copy data began.
        case preCopyAfterStopCopy(device: Int)
        case offsetOverflow(device: Int)
        /// A data offset that breaks the per-channel order (single stream: not the next byte;
        /// parallel channel: below the end of this channel's previous chunk).
        case dataOffset(device: Int, expected: UInt64, given: UInt64)
        /// A value the encoder computes itself in a single stream, or one only the caller can
        /// know in a parallel channel (`what` names it).
        case parameter(what: String, reason: String)
        /// preCopyProgress and deviceDigest travel on channel 0 only.
        case notPrimaryChannel(record: RecordType)
        /// A pages record the format forbids (table problems, or no regions).
        case invalidPageTable(PageTableProblem)
        /// Page rounds never go back; phase 1 pages never follow phase 2 pages.
        case pageOrder(reason: String)
        /// The record's payload would exceed the header's maxPayload.
        case payloadTooLarge(UInt64, maxPayload: UInt32)
        /// The target buffer cannot hold what is to be written there.
        case bufferTooSmall(needed: Int, capacity: Int)
        /// Array forms: the data handed over is not as long as the record says.
        case dataLength(expected: UInt64, given: Int)
    }

    public var description: String {
        switch kind {
        case let .invalidHeader(reason): return "header cannot be written: \(reason)"
        case let .readerMinorTooLow(required, declared):
            return "header content needs readerMinor \(required) but its version says \(declared)"
        case .streamComplete: return "record after the end-of-stream record"
        case let .deviceOutOfRange(device, count): return "device index \(device) outside the \(count) devices of the header"
        case let .deviceEnded(device): return "device \(device): record after its end-of-device record"
        case let .deviceDigestWritten(device): return "device \(device): state or progress after its device digest"
        case let .duplicateDeviceDigest(device): return "device \(device): second device digest"
        case let .missingDeviceDigest(device):
            return "device \(device): end of device without a device digest (format minor >= 1 requires one)"
        case let .devicesOpen(devices): return "end of stream while devices \(devices) have not ended"
        case let .chunkLength(length, maxPayload): return "state chunk of \(length) bytes outside 1...\(maxPayload)"
        case let .preCopyNotAdvertised(device): return "device \(device): pre-copy record but its descriptor lacks PRE_COPY"
        case let .preCopyAfterStopCopy(device): return "device \(device): pre-copy record after stop-copy data"
        case let .offsetOverflow(device): return "device \(device): data offset plus length overflows 64 bits"
        case let .dataOffset(device, expected, given):
            return "device \(device): data offset \(given) where \(expected) (or, on a parallel channel, at least that) was expected"
        case let .parameter(what, reason): return "\(what): \(reason)"
        case let .notPrimaryChannel(record): return "\(record) records travel on channel 0 only"
        case let .invalidPageTable(problem): return "pages record: \(problem)"
        case let .pageOrder(reason): return "pages record: \(reason)"
        case let .payloadTooLarge(length, maxPayload): return "record payload of \(length) bytes exceeds the header's maxPayload \(maxPayload)"
        case let .bufferTooSmall(needed, capacity): return "buffer of \(capacity) bytes cannot hold the \(needed) bytes to write"
        case let .dataLength(expected, given): return "\(given) data bytes given where the record needs \(expected)"
        }
    }
}
