// The pull-based decoder: the caller reads exactly the bytes the decoder asks for (from an
// fd, a socket, memory) and hands them over; the decoder checks, validates and counts.

/// Decodes and validates a stream handed to it piece by piece, in this order:
///
///     var decoder = StreamDecoder(limits: .default)
///     // 1. the first `StreamFormat.headerPrefixSize` (16) bytes -> total header length
///     let headerLength = try decoder.decodeHeaderPrefix(prefix)
///     // 2. the whole header (those 16 bytes again, then the rest)
///     let header = try decoder.decodeHeader(headerBytes)
///     while !decoder.isComplete {
///         // 3. the next `StreamFormat.recordHeaderSize` (32) bytes; the payload length is
///         //    bounded here, before the caller reads (or allocates for) the payload
///         let recordHeader = try decoder.decodeRecordHeader(from: buffer, at: 0)
///         // 4. exactly `recordHeader.payloadLength` bytes; CRC and order are checked here
///         switch try decoder.decodePayload(in: buffer, range: 32..<32 + n) { ... }
///     }
///     // 5. at end of input, with the number of bytes that did arrive for the piece being read
///     try decoder.endOfInput(available: 0)
///
/// If the input ends early, `endOfInput(available:)` throws the error naming what was cut
/// short. After any error the decoder stays failed and repeats it. Nothing is allocated per
/// record: state lives in arrays sized once, from the header's device count.
public struct StreamDecoder: Sendable {
    public let limits: StreamLimits
    /// The header, once decoded.
    public private(set) var header: StreamHeader?
    /// Length of the header in bytes, once known.
    public private(set) var headerLength: Int = 0
    /// Absolute offset of the next byte the decoder expects.
    public private(set) var position: UInt64 = 0

    private var stage: Stage = .headerPrefix
    private var recordStart: UInt64 = 0
    private var nextSequence: UInt64 = 0
    private var skippedRecords: UInt64 = 0
    private var totalStateBytes: UInt64 = 0
    private var devices: [DeviceSummary] = []
    private var preCopyAllowed: [Bool] = []

    private enum Stage: Sendable {
        case headerPrefix
        case header(length: Int)
        case recordHeader
        case payload(RecordHeader)
        case complete
        case failed(StreamError)
    }

    /// What the decoder needs next, and how many bytes.
    public enum Expectation: Sendable, Equatable {
        case headerPrefix(Int)
        case header(Int)
        case recordHeader(Int)
        case payload(Int)
        /// End-of-stream was accepted; only end of input may follow.
        case endOfInput
        /// A previous call failed.
        case failed
    }

    public init(limits: StreamLimits = .default) {
        self.limits = limits
    }

    public var expectation: Expectation {
        switch stage {
        case .headerPrefix: .headerPrefix(StreamFormat.headerPrefixSize)
        case .header(let length): .header(length)
        case .recordHeader: .recordHeader(StreamFormat.recordHeaderSize)
        case .payload(let header): .payload(Int(header.payloadLength))
        case .complete: .endOfInput
        case .failed: .failed
        }
    }

    /// True once the end-of-stream record was accepted.
    public var isComplete: Bool {
        if case .complete = stage { return true }
        return false
    }

    // MARK: Steps

    /// Step 1: checks magic, major version and header length bounds; returns the header length.
    public mutating func decodeHeaderPrefix(_ prefix: UnsafeRawBufferPointer) throws(StreamError) -> Int {
        try checkNotFailed()
        guard case .headerPrefix = stage else { preconditionFailure("decodeHeaderPrefix called in stage \(stage)") }
        do throws(StreamError) {
            let length = try HeaderCodec.headerLength(prefix: prefix, limits: limits)
            stage = .header(length: length)
            return length
        } catch {
            stage = .failed(error)
            throw error
        }
    }

    /// Step 2: the whole header, from its first byte; bytes after the header are ignored.
    /// May be called without step 1 when the bytes are already in memory.
    public mutating func decodeHeader(_ bytes: UnsafeRawBufferPointer) throws(StreamError) -> StreamHeader {
        try checkNotFailed()
        switch stage {
        case .headerPrefix, .header: break
        default: preconditionFailure("decodeHeader called in stage \(stage)")
        }
        let decoded: StreamHeader, length: Int
        do throws(StreamError) {
            (decoded, length) = try HeaderCodec.decode(bytes, limits: limits)
        } catch {
            stage = .failed(error)
            throw error
        }
        header = decoded
        headerLength = length
        position = UInt64(length)
        devices = decoded.devices.indices.map {
            DeviceSummary(device: $0, preCopyBytes: 0, stopCopyBytes: 0, chunkCount: 0, progressRecords: 0, lastProgress: nil, ended: false)
        }
        preCopyAllowed = decoded.devices.map { $0.migrationFlags.contains(.preCopy) }
        stage = .recordHeader
        return decoded
    }

    /// Step 3: the 32-byte record header. Only the payload bound is checked here (so a bad
    /// length is refused before anything is read or allocated); everything else is checked
    /// in step 4, after the CRC, so corruption is reported as corruption.
    public mutating func decodeRecordHeader(_ bytes: UnsafeRawBufferPointer) throws(StreamError) -> RecordHeader {
        try checkNotFailed()
        guard case .recordHeader = stage else { preconditionFailure("decodeRecordHeader called in stage \(stage)") }
        recordStart = position
        do throws(StreamError) {
            return try recordHeaderStep(bytes)
        } catch {
            stage = .failed(error)
            throw error
        }
    }

    private mutating func recordHeaderStep(_ bytes: UnsafeRawBufferPointer) throws(StreamError) -> RecordHeader {
        guard bytes.count >= StreamFormat.recordHeaderSize else {
            throw fail(.truncated(needed: StreamFormat.recordHeaderSize, available: bytes.count))
        }
        let record = RecordHeader.load(from: bytes)
        let limit = min(Int(header!.maxPayload), limits.maxPayload)
        guard Int(record.payloadLength) <= limit else {
            throw fail(.payloadTooLarge(length: record.payloadLength, limit: limit))
        }
        position += UInt64(StreamFormat.recordHeaderSize)
        stage = .payload(record)
        return record
    }

    /// Step 4: exactly `payloadLength` bytes of payload. Verifies the CRC, then the record's
    /// fields and its place in the stream; returns the typed record.
    public mutating func decodePayload(_ payload: UnsafeRawBufferPointer) throws(StreamError) -> Record {
        try checkNotFailed()
        guard case .payload(let record) = stage else { preconditionFailure("decodePayload called in stage \(stage)") }
        precondition(payload.count == Int(record.payloadLength), "payload of \(payload.count) bytes for a record of \(record.payloadLength)")
        do throws(StreamError) {
            return try payloadStep(record, payload)
        } catch {
            stage = .failed(error)
            throw error
        }
    }

    private mutating func payloadStep(_ record: RecordHeader, _ payload: UnsafeRawBufferPointer) throws(StreamError) -> Record {
        let computed = record.computeChecksum(payload: payload)
        guard computed == record.checksum else {
            throw fail(.checksumMismatch(stored: record.checksum, computed: computed))
        }
        let decoded = try validate(record, payload: payload)
        nextSequence += 1
        position += UInt64(record.payloadLength)
        if case .endOfStream = decoded {
            stage = .complete
        } else {
            stage = .recordHeader
        }
        return decoded
    }

    /// Step 5: input ended after `available` bytes of the piece the decoder expected.
    /// Returns normally only after a complete stream with nothing following.
    public func endOfInput(available: Int = 0) throws(StreamError) {
        try checkNotFailed()
        let needed: Int
        let at = position
        switch stage {
        case .complete:
            if available == 0 { return }
            throw StreamError(offset: position, kind: .trailingData)
        case .headerPrefix:
            needed = StreamFormat.headerPrefixSize
        case .header(let length):
            needed = length
        case .recordHeader:
            if available == 0 { throw StreamError(offset: position, kind: .missingEndOfStream) }
            needed = StreamFormat.recordHeaderSize
        case .payload(let record):
            // Name the whole record: its header arrived, its payload did not.
            throw StreamError(
                offset: recordStart, kind: .truncated(needed: record.recordLength, available: StreamFormat.recordHeaderSize + available))
        case .failed:
            preconditionFailure("unreachable: checkNotFailed threw")
        }
        throw StreamError(offset: at, kind: .truncated(needed: needed, available: available))
    }

    // MARK: Totals

    /// What the decoder has seen so far (nil before the header).
    public var summary: StreamSummary? {
        guard let header else { return nil }
        return StreamSummary(
            header: header, headerLength: headerLength, streamLength: position, recordCount: nextSequence,
            skippedRecords: skippedRecords, totalStateBytes: totalStateBytes, complete: isComplete, devices: devices)
    }

    // MARK: Validation

    private mutating func validate(_ record: RecordHeader, payload: UnsafeRawBufferPointer) throws(StreamError) -> Record {
        guard record.type.rawValue != 0 else { throw fail(.zeroRecordType) }
        guard record.flags.isSubset(of: .known) else {
            throw fail(.unknownRecordFlags(record.flags.subtracting(.known).rawValue))
        }
        guard record.sequence == nextSequence else {
            throw fail(.sequenceMismatch(expected: nextSequence, found: record.sequence))
        }
        try expect("reserved", record.reserved, 0)
        var reader = LittleEndianReader(payload)

        switch record.type {
        case .deviceState:
            let device = try deviceIndex(record)
            guard let phase = StatePhase(rawValue: record.phase) else { throw fail(.invalidPhase(record.phase)) }
            guard !devices[device].ended else { throw fail(.recordAfterEndOfDevice(device: device)) }
            guard record.payloadLength > 0 else { throw fail(.emptyChunk(device: device)) }
            if phase == .preCopy { try checkPreCopyAllowed(device) }
            try checkOffset(record, device)
            let length = UInt64(record.payloadLength)
            guard record.offset <= UInt64.max - length else { throw fail(.offsetOverflow(device: device)) }
            if phase == .preCopy {
                devices[device].preCopyBytes += length
            } else {
                devices[device].stopCopyBytes += length
            }
            devices[device].chunkCount += 1
            totalStateBytes &+= length
            return .deviceState(DeviceStateChunk(device: device, phase: phase, offset: record.offset, length: Int(length)))

        case .preCopyProgress:
            let device = try deviceIndex(record)
            try expect("phase", record.phase, 0)
            try expectPayload(record, PayloadSize.preCopyProgress)
            guard !devices[device].ended else { throw fail(.recordAfterEndOfDevice(device: device)) }
            try checkPreCopyAllowed(device)
            try checkOffset(record, device)
            let progress = PreCopyProgress(
                device: device, offset: record.offset, initialBytes: reader.read(UInt64.self), dirtyBytes: reader.read(UInt64.self))
            devices[device].progressRecords += 1
            devices[device].lastProgress = progress
            return .preCopyProgress(progress)

        case .endOfDevice:
            let device = try deviceIndex(record)
            try expect("phase", record.phase, 0)
            try expectPayload(record, PayloadSize.endOfDevice)
            guard !devices[device].ended else { throw fail(.duplicateEndOfDevice(device: device)) }
            try checkOffset(record, device)
            let declared = DeviceTotals(
                device: device, preCopyBytes: reader.read(UInt64.self), stopCopyBytes: reader.read(UInt64.self),
                chunkCount: reader.read(UInt64.self))
            let counted = devices[device].totals
            guard declared == counted else { throw fail(.deviceTotalsMismatch(device: device, declared: declared, counted: counted)) }
            devices[device].ended = true
            return .endOfDevice(declared)

        case .endOfStream:
            try expect("device", record.device, StreamFormat.noDevice)
            try expect("phase", record.phase, 0)
            try expect("offset", record.offset, 0)
            try expectPayload(record, PayloadSize.endOfStream)
            if let open = devices.first(where: { !$0.ended }) { throw fail(.missingEndOfDevice(device: open.device)) }
            let deviceCount = Int(reader.read(UInt32.self))
            let reservedWord = reader.read(UInt32.self)
            let declared = StreamTotals(deviceCount: deviceCount, totalStateBytes: reader.read(UInt64.self), recordCount: reader.read(UInt64.self))
            try expect("endOfStream.reserved", reservedWord, 0)
            let counted = StreamTotals(deviceCount: devices.count, totalStateBytes: totalStateBytes, recordCount: nextSequence)
            guard declared == counted else { throw fail(.streamTotalsMismatch(declared: declared, counted: counted)) }
            return .endOfStream(declared)

        default:
            // Unknown types and dirtyPages (reserved, not supported in v1.0) alike.
            guard record.flags.contains(.skippable) else { throw fail(.unsupportedRecordType(record.type.rawValue)) }
            skippedRecords += 1
            return .skipped(type: record.type, length: Int(record.payloadLength))
        }
    }

    private func deviceIndex(_ record: RecordHeader) throws(StreamError) -> Int {
        guard Int(record.device) < devices.count else {
            throw fail(.deviceIndexOutOfRange(record.device, deviceCount: devices.count))
        }
        return Int(record.device)
    }

    private func checkPreCopyAllowed(_ device: Int) throws(StreamError) {
        guard preCopyAllowed[device] else { throw fail(.preCopyNotAdvertised(device: device)) }
        guard devices[device].stopCopyBytes == 0 else { throw fail(.phaseRegression(device: device)) }
    }

    private func checkOffset(_ record: RecordHeader, _ device: Int) throws(StreamError) {
        let expected = devices[device].totals.totalBytes
        guard record.offset == expected else {
            throw fail(.offsetMismatch(device: device, expected: expected, found: record.offset))
        }
    }

    private func expectPayload(_ record: RecordHeader, _ size: Int) throws(StreamError) {
        guard Int(record.payloadLength) == size else {
            throw fail(.invalidPayloadLength(type: record.type.rawValue, expected: size, found: Int(record.payloadLength)))
        }
    }

    private func expect<T: FixedWidthInteger>(_ field: String, _ value: T, _ required: T) throws(StreamError) {
        guard value == required else {
            throw fail(.unexpectedFieldValue(field: field, expected: UInt64(required), found: UInt64(value)))
        }
    }

    // MARK: Failure bookkeeping

    private func fail(_ kind: StreamError.Kind) -> StreamError {
        StreamError(offset: recordStart, kind: kind)
    }

    private func checkNotFailed() throws(StreamError) {
        if case .failed(let error) = stage { throw error }
    }
}

/// Per-device counters; part of the summary `inspect` prints.
public struct DeviceSummary: Sendable, Hashable, Codable {
    public var device: Int
    public var preCopyBytes: UInt64
    public var stopCopyBytes: UInt64
    public var chunkCount: UInt64
    public var progressRecords: UInt64
    public var lastProgress: PreCopyProgress?
    public var ended: Bool

    public var totals: DeviceTotals {
        DeviceTotals(device: device, preCopyBytes: preCopyBytes, stopCopyBytes: stopCopyBytes, chunkCount: chunkCount)
    }
}

/// What a stream holds, for `inspect` and `verify` (Codable for --json).
public struct StreamSummary: Sendable, Hashable, Codable {
    public var header: StreamHeader
    public var headerLength: Int
    /// Bytes consumed so far (the whole stream, once complete).
    public var streamLength: UInt64
    /// Records accepted, skipped ones included (the end-of-stream record too, once seen).
    public var recordCount: UInt64
    public var skippedRecords: UInt64
    public var totalStateBytes: UInt64
    public var complete: Bool
    public var devices: [DeviceSummary]
}
