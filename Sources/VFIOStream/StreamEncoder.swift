// The encoder: numbers records, tracks each device's data stream position, totals and data
// CRC, and seals each record (header + CRC) in place. The engine reads a device's data fd
// straight into an IOBuffer behind 32 bytes of header space and calls frameDeviceState, so
// state bytes are never copied and nothing is allocated per chunk.
import VFIOBuffers

/// Writes one stream (or one channel of a parallel migration). Every method checks the
/// call against the format first and throws `StreamUsageError` for a forbidden one (state
/// after a device's end, a chunk that does not fit, ...), leaving the encoder as it was, so
/// an embedder's mistake never crashes it and never reaches the stream.
///
///     var encoder = try StreamEncoder(header: header)
///     sink.write(encoder.encodeHeader())
///     // per chunk: read n bytes into buffer[32 ..< 32 + n], then
///     let record = try encoder.frameDeviceState(device: 0, phase: .stopCopy, payloadLength: n, in: buffer, at: 0)
///     sink.write(buffer[0 ..< record.recordLength])
///     ...
///     try encoder.frameDeviceDigest(device: 0, in: buffer, at: 0)  // per device (minor >= 1)
///     try encoder.frameEndOfDevice(device: 0, in: buffer, at: 0)   // per device
///     try encoder.frameEndOfStream(in: buffer, at: 0)              // once, last
public struct StreamEncoder: Sendable {
    public let header: StreamHeader
    /// Sequence number the next record gets.
    public private(set) var nextSequence: UInt64 = 0
    public private(set) var isComplete = false
    private let headerBytes: [UInt8]
    private let descriptorCRCs: [UInt32]
    private var totals: [DeviceTotals]
    private var tracks: [Track]
    private var totalStateBytes: UInt64 = 0
    // Internal, not private: the pages methods live in StreamEncoder+Pages.swift.
    var pageOrder = PageOrder()
    private var shift = CRCShiftCache()
    let checksums: Bool
    private let parallel: Bool
    private let primary: Bool
    private let requiresDigests: Bool

    private struct Track: Sendable {
        var ended = false
        /// Single stream: bytes so far. Parallel channel: end of this channel's last chunk.
        var dataEnd: UInt64 = 0
        /// CRC32C of the device's data so far (single stream with checksums).
        var dataCRC: UInt32 = 0
        /// The offset the device's digest declared, once written.
        var digestOffset: UInt64?
    }

    /// `header.devices` fixes the device indices; `header.maxPayload` bounds every record.
    /// Throws when the header cannot be written (`StreamHeader.encoded()`).
    public init(header: StreamHeader) throws(StreamUsageError) {
        let encoded = try header.encodedWithDescriptorCRCs()
        self.header = header
        self.headerBytes = encoded.bytes
        self.descriptorCRCs = encoded.descriptorCRCs
        self.totals = header.devices.indices.map { DeviceTotals(device: $0, preCopyBytes: 0, stopCopyBytes: 0, chunkCount: 0) }
        self.tracks = Array(repeating: Track(), count: header.devices.count)
        self.checksums = header.hasRecordChecksums
        self.parallel = header.isParallel
        self.primary = header.isPrimaryChannel
        self.requiresDigests = header.requiresDeviceDigests
    }

    /// The stream header's bytes (write them first).
    public func encodeHeader() -> [UInt8] { headerBytes }

    /// Totals so far for `device` (this channel's, on one of several).
    public func totals(of device: Int) -> DeviceTotals { totals[device] }

    // MARK: Into an IOBuffer (the data path)

    /// Seals `payloadLength` state bytes already in `buffer[start + 32 ..< start + 32 + payloadLength]`
    /// as a device state record whose header goes to `buffer[start ..< start + 32]`.
    /// The record occupies `start ..< start + result.recordLength`. `buffer.count` is not touched.
    /// `payloadCRC`: the CRC32C of those bytes when the caller has it (computed off the
    /// critical path, say); the record CRC is then derived without reading the bytes again.
    /// `dataOffset`: the chunk's position in the device's data stream; required on one of
    /// several channels, computed (and checked if given) in a single stream.
    /// Returns the header as written (with its checksum).
    @discardableResult
    public mutating func frameDeviceState(
        device: Int, phase: StatePhase, payloadLength: Int, payloadCRC: UInt32? = nil, dataOffset: UInt64? = nil,
        in buffer: IOBuffer, at start: Int
    ) throws(StreamUsageError) -> RecordHeader {
        let record = try planDeviceState(device: device, phase: phase, payloadLength: payloadLength, dataOffset: dataOffset)
        try Self.checkFits(start: start, length: record.recordLength, capacity: buffer.capacity)
        // SAFETY: the range was checked against the capacity above; the view stays in the closure.
        return buffer.withUnsafeMutableBytes(in: start..<(start + record.recordLength)) { region in
            commitDeviceState(record, payloadCRC: payloadCRC, region: region)
        }
    }

    /// Writes a complete pre-copy progress record (header and 16-byte payload) at `start`.
    /// `dataOffset`: the device's data stream position when the values were read; required
    /// on channel 0 of several, computed in a single stream.
    @discardableResult
    public mutating func framePreCopyProgress(
        device: Int, initialBytes: UInt64, dirtyBytes: UInt64, dataOffset: UInt64? = nil, in buffer: IOBuffer, at start: Int
    ) throws(StreamUsageError) -> RecordHeader {
        let record = try planPreCopyProgress(device: device, dataOffset: dataOffset)
        return try seal(record, .words(initialBytes, dirtyBytes, 0, count: 2), in: buffer, at: start)
    }

    /// Writes the device's digest record (after its last state record, before its end).
    /// In a single stream the encoder supplies both CRCs. On channel 0 of several the caller
    /// supplies the device's `totalLength` over all channels and `dataCRC`, the CRC32C of the
    /// whole data stream in offset order (not needed without record checksums).
    @discardableResult
    public mutating func frameDeviceDigest(
        device: Int, dataCRC: UInt32? = nil, totalLength: UInt64? = nil, in buffer: IOBuffer, at start: Int
    ) throws(StreamUsageError) -> RecordHeader {
        let (record, payload) = try planDeviceDigest(device: device, dataCRC: dataCRC, totalLength: totalLength)
        return try seal(record, payload, in: buffer, at: start)
    }

    /// Writes a complete end-of-device record at `start`. `totalLength`: the device's data
    /// length over all channels, required on one of several; computed in a single stream.
    @discardableResult
    public mutating func frameEndOfDevice(
        device: Int, totalLength: UInt64? = nil, in buffer: IOBuffer, at start: Int
    ) throws(StreamUsageError) -> RecordHeader {
        let record = try planEndOfDevice(device: device, totalLength: totalLength)
        return try seal(record, endOfDeviceWords(device), in: buffer, at: start)
    }

    /// Writes the end-of-stream record at `start`; every device must have ended.
    @discardableResult
    public mutating func frameEndOfStream(in buffer: IOBuffer, at start: Int) throws(StreamUsageError) -> RecordHeader {
        let record = try planEndOfStream()
        return try seal(record, endOfStreamWords, in: buffer, at: start)
    }

    // MARK: Appending to an array (tests, small tools)

    @discardableResult
    public mutating func appendDeviceState(
        device: Int, phase: StatePhase, payload: some Collection<UInt8>, dataOffset: UInt64? = nil, to bytes: inout [UInt8]
    ) throws(StreamUsageError) -> RecordHeader {
        let record = try planDeviceState(device: device, phase: phase, payloadLength: payload.count, dataOffset: dataOffset)
        let start = bytes.count
        bytes.append(contentsOf: repeatElement(0, count: StreamFormat.recordHeaderSize))
        bytes.append(contentsOf: payload)
        // SAFETY: the slice is exactly the record just appended; the view stays in the closure.
        return bytes[start...].withUnsafeMutableBytes { region in
            commitDeviceState(record, payloadCRC: nil, region: UnsafeMutableRawBufferPointer(region))
        }
    }

    @discardableResult
    public mutating func appendPreCopyProgress(
        device: Int, initialBytes: UInt64, dirtyBytes: UInt64, dataOffset: UInt64? = nil, to bytes: inout [UInt8]
    ) throws(StreamUsageError) -> RecordHeader {
        let record = try planPreCopyProgress(device: device, dataOffset: dataOffset)
        return append(record, .words(initialBytes, dirtyBytes, 0, count: 2), to: &bytes)
    }

    @discardableResult
    public mutating func appendDeviceDigest(
        device: Int, dataCRC: UInt32? = nil, totalLength: UInt64? = nil, to bytes: inout [UInt8]
    ) throws(StreamUsageError) -> RecordHeader {
        let (record, payload) = try planDeviceDigest(device: device, dataCRC: dataCRC, totalLength: totalLength)
        return append(record, payload, to: &bytes)
    }

    @discardableResult
    public mutating func appendEndOfDevice(device: Int, totalLength: UInt64? = nil, to bytes: inout [UInt8]) throws(StreamUsageError) -> RecordHeader {
        let record = try planEndOfDevice(device: device, totalLength: totalLength)
        return append(record, endOfDeviceWords(device), to: &bytes)
    }

    @discardableResult
    public mutating func appendEndOfStream(to bytes: inout [UInt8]) throws(StreamUsageError) -> RecordHeader {
        let record = try planEndOfStream()
        return append(record, endOfStreamWords, to: &bytes)
    }

    /// Appends any record as given, numbered with the next sequence number and sealed with a
    /// correct CRC (0 under NO_RECORD_CHECKSUMS), but otherwise unchecked: for records of
    /// later minors (skippable extensions) and for tests that need a well-sealed but invalid
    /// record. The encoder's own bookkeeping does not see it.
    @discardableResult
    public mutating func appendUncheckedRecord(_ template: RecordHeader, payload: [UInt8], to bytes: inout [UInt8]) -> RecordHeader {
        var record = template
        record.sequence = takeSequence()
        record.payloadLength = UInt32(payload.count)
        let start = bytes.count
        bytes.append(contentsOf: repeatElement(0, count: StreamFormat.recordHeaderSize))
        bytes.append(contentsOf: payload)
        return seal(record, in: &bytes, at: start)
    }

    // MARK: Checks (no state changes) and commits

    private func checkOpen(_ device: Int) throws(StreamUsageError) {
        guard !isComplete else { throw StreamUsageError(.streamComplete) }
        guard device >= 0 && device < totals.count else { throw StreamUsageError(.deviceOutOfRange(device: device, deviceCount: totals.count)) }
        guard !tracks[device].ended else { throw StreamUsageError(.deviceEnded(device: device)) }
    }

    private func checkPreCopy(_ device: Int) throws(StreamUsageError) {
        guard header.devices[device].migrationFlags.contains(.preCopy) else { throw StreamUsageError(.preCopyNotAdvertised(device: device)) }
        guard totals[device].stopCopyBytes == 0 else { throw StreamUsageError(.preCopyAfterStopCopy(device: device)) }
    }

    /// The offset a device record carries: the next byte in a single stream, the caller's
    /// (at least this channel's end) on one of several.
    private func position(_ device: Int, given: UInt64?, what: String) throws(StreamUsageError) -> UInt64 {
        let end = tracks[device].dataEnd
        guard let given else {
            if parallel { throw StreamUsageError(.parameter(what: what, reason: "required on one of several channels")) }
            return end
        }
        guard parallel ? given >= end : given == end else {
            throw StreamUsageError(.dataOffset(device: device, expected: end, given: given))
        }
        return given
    }

    private func planDeviceState(device: Int, phase: StatePhase, payloadLength: Int, dataOffset: UInt64?) throws(StreamUsageError) -> RecordHeader {
        try checkOpen(device)
        guard tracks[device].digestOffset == nil else { throw StreamUsageError(.deviceDigestWritten(device: device)) }
        guard payloadLength > 0 && payloadLength <= Int(header.maxPayload) else {
            throw StreamUsageError(.chunkLength(payloadLength, maxPayload: header.maxPayload))
        }
        if phase == .preCopy { try checkPreCopy(device) }
        let offset = try position(device, given: dataOffset, what: "dataOffset")
        guard offset <= UInt64.max - UInt64(payloadLength) else { throw StreamUsageError(.offsetOverflow(device: device)) }
        return RecordHeader(
            type: .deviceState, device: UInt16(device), phase: phase.rawValue, payloadLength: UInt32(payloadLength),
            sequence: nextSequence, offset: offset)
    }

    /// Seals the record in `region` (header + payload already in place) and counts it.
    private mutating func commitDeviceState(_ record: RecordHeader, payloadCRC given: UInt32?, region: UnsafeMutableRawBufferPointer) -> RecordHeader {
        let device = Int(record.device)
        let length = UInt64(record.payloadLength)
        var sealed = record
        sealed.sequence = takeSequence()
        if checksums {
            // SAFETY: `region` is the record; its payload follows the 32-byte header.
            let payloadCRC = given ?? CRC32C.update(0, UnsafeRawBufferPointer(rebasing: region[StreamFormat.recordHeaderSize...]))
            sealed.checksum = shift.combine(sealed.headerChecksum(), payloadCRC, lengthOfB: length)
            if !parallel { tracks[device].dataCRC = shift.combine(tracks[device].dataCRC, payloadCRC, lengthOfB: length) }
        }
        sealed.store(into: region)
        if record.phase == StatePhase.preCopy.rawValue {
            totals[device].preCopyBytes += length
        } else {
            totals[device].stopCopyBytes += length
        }
        totals[device].chunkCount += 1
        tracks[device].dataEnd = record.offset + length
        totalStateBytes &+= length
        return sealed
    }

    private func planPreCopyProgress(device: Int, dataOffset: UInt64?) throws(StreamUsageError) -> RecordHeader {
        try checkOpen(device)
        guard primary else { throw StreamUsageError(.notPrimaryChannel(record: .preCopyProgress)) }
        guard tracks[device].digestOffset == nil else { throw StreamUsageError(.deviceDigestWritten(device: device)) }
        try checkPreCopy(device)
        let offset = try position(device, given: dataOffset, what: "dataOffset")
        return RecordHeader(
            type: .preCopyProgress, device: UInt16(device), payloadLength: UInt32(PayloadSize.preCopyProgress),
            sequence: nextSequence, offset: offset)
    }

    private func planDeviceDigest(device: Int, dataCRC: UInt32?, totalLength: UInt64?) throws(StreamUsageError) -> (RecordHeader, FixedPayload) {
        try checkOpen(device)
        guard primary else { throw StreamUsageError(.notPrimaryChannel(record: .deviceDigest)) }
        guard tracks[device].digestOffset == nil else { throw StreamUsageError(.duplicateDeviceDigest(device: device)) }
        let offset = try position(device, given: totalLength, what: "totalLength")
        let data: UInt32
        if !checksums {
            data = 0  // nothing on the data path computes CRCs in such a stream
        } else if parallel {
            guard let dataCRC else { throw StreamUsageError(.parameter(what: "dataCRC", reason: "required on channel 0 of several")) }
            data = dataCRC
        } else {
            guard dataCRC == nil else { throw StreamUsageError(.parameter(what: "dataCRC", reason: "computed by the encoder in a single stream")) }
            data = tracks[device].dataCRC
        }
        let record = RecordHeader(
            type: .deviceDigest, flags: .skippable, device: UInt16(device), payloadLength: UInt32(PayloadSize.deviceDigest),
            sequence: nextSequence, offset: offset)
        return (record, .digest(descriptorCRC: descriptorCRCs[device], dataCRC: data))
    }

    private func planEndOfDevice(device: Int, totalLength: UInt64?) throws(StreamUsageError) -> RecordHeader {
        try checkOpen(device)
        let offset = try position(device, given: totalLength, what: "totalLength")
        if let digestOffset = tracks[device].digestOffset, digestOffset != offset {
            throw StreamUsageError(.dataOffset(device: device, expected: digestOffset, given: offset))
        }
        if requiresDigests && tracks[device].digestOffset == nil { throw StreamUsageError(.missingDeviceDigest(device: device)) }
        return RecordHeader(
            type: .endOfDevice, device: UInt16(device), payloadLength: UInt32(PayloadSize.endOfDevice),
            sequence: nextSequence, offset: offset)
    }

    private func planEndOfStream() throws(StreamUsageError) -> RecordHeader {
        guard !isComplete else { throw StreamUsageError(.streamComplete) }
        let open = tracks.indices.filter { !tracks[$0].ended }
        guard open.isEmpty else { throw StreamUsageError(.devicesOpen(open)) }
        return RecordHeader(
            type: .endOfStream, device: StreamFormat.noDevice, payloadLength: UInt32(PayloadSize.endOfStream),
            sequence: nextSequence, offset: 0)
    }

    private func endOfDeviceWords(_ device: Int) -> FixedPayload {
        .words(totals[device].preCopyBytes, totals[device].stopCopyBytes, totals[device].chunkCount, count: 3)
    }

    /// deviceCount u32 + reserved u32 share the first word; recordCount is this record's sequence.
    private var endOfStreamWords: FixedPayload { .words(UInt64(totals.count), totalStateBytes, nextSequence, count: 3) }

    mutating func takeSequence() -> UInt64 {
        defer { nextSequence += 1 }
        return nextSequence
    }

    /// Bookkeeping for a fixed-payload record that is about to be written.
    private mutating func commitFixed(_ record: RecordHeader) -> RecordHeader {
        var sealed = record
        sealed.sequence = takeSequence()
        switch record.type {
        case .endOfDevice: tracks[Int(record.device)].ended = true
        case .endOfStream: isComplete = true
        case .deviceDigest: tracks[Int(record.device)].digestOffset = record.offset
        default: break
        }
        return sealed
    }

    // MARK: Sealing

    static func checkFits(start: Int, length: Int, capacity: Int) throws(StreamUsageError) {
        guard start >= 0 && start <= capacity && length <= capacity - start else {
            throw StreamUsageError(.bufferTooSmall(needed: max(start, 0) + length, capacity: capacity))
        }
    }

    /// The payload of a fixed-size record: up to three u64 words, or a digest's two CRCs.
    enum FixedPayload {
        case words(UInt64, UInt64, UInt64, count: Int)
        case digest(descriptorCRC: UInt32, dataCRC: UInt32)

        func write(into record: UnsafeMutableRawBufferPointer) {
            var writer = LittleEndianWriter(record, index: StreamFormat.recordHeaderSize)
            switch self {
            case let .words(first, second, third, count):
                writer.write(first)
                writer.write(second)
                if count == 3 { writer.write(third) }
            case let .digest(descriptorCRC, dataCRC):
                writer.write(descriptorCRC)
                writer.write(dataCRC)
            }
        }
    }

    private mutating func seal(_ record: RecordHeader, _ payload: FixedPayload, in buffer: IOBuffer, at start: Int) throws(StreamUsageError) -> RecordHeader {
        try Self.checkFits(start: start, length: record.recordLength, capacity: buffer.capacity)
        let sealed = commitFixed(record)
        // SAFETY: the range was checked against the capacity above; the view stays in the closure.
        return buffer.withUnsafeMutableBytes(in: start..<(start + sealed.recordLength)) { region in
            payload.write(into: region)
            return seal(sealed, region: region)
        }
    }

    private mutating func append(_ record: RecordHeader, _ payload: FixedPayload, to bytes: inout [UInt8]) -> RecordHeader {
        let sealed = commitFixed(record)
        let start = bytes.count
        bytes.append(contentsOf: repeatElement(0, count: sealed.recordLength))
        // SAFETY: the slice is exactly the record just appended; the view stays in the closure.
        bytes[start...].withUnsafeMutableBytes { payload.write(into: UnsafeMutableRawBufferPointer($0)) }
        return seal(sealed, in: &bytes, at: start)
    }

    func seal(_ record: RecordHeader, in bytes: inout [UInt8], at start: Int) -> RecordHeader {
        // SAFETY: the slice covers exactly the record's bytes, which the caller appended.
        bytes[start..<(start + record.recordLength)].withUnsafeMutableBytes { region in
            seal(record, region: UnsafeMutableRawBufferPointer(region))
        }
    }

    /// Writes the header with its CRC (one pass over header + payload, or 0 without record
    /// checksums) into `region`, exactly header + payload, payload already in place.
    private func seal(_ record: RecordHeader, region: UnsafeMutableRawBufferPointer) -> RecordHeader {
        precondition(region.count == record.recordLength, "codec bug: region is not exactly one record")
        var sealed = record
        sealed.checksum = 0
        sealed.store(into: region)
        if checksums {
            // SAFETY: `region` is the record's own header+payload range inside the caller's buffer.
            sealed.checksum = CRC32C.update(0, UnsafeRawBufferPointer(region))
            var writer = LittleEndianWriter(region, index: 12)
            writer.write(sealed.checksum)
        }
        return sealed
    }
}
