// The encoder: numbers records, tracks each device's data stream position and totals, and
// seals each record (header + CRC) in place. The engine reads a device's data fd straight
// into an IOBuffer behind 32 bytes of header space and calls frameDeviceState, so state
// bytes are never copied and nothing is allocated per chunk.
import VFIOBuffers

/// Writes one stream. Misuse (a record the format forbids at that point, such as state
/// after a device's end) is a programmer error and crashes: the engine decides the order,
/// so a wrong order is a bug in it, not a condition to handle.
///
///     var encoder = StreamEncoder(header: header)
///     sink.write(encoder.encodeHeader())
///     // per chunk: read n bytes into buffer[32 ..< 32 + n], then
///     let record = encoder.frameDeviceState(device: 0, phase: .stopCopy, payloadLength: n, in: buffer, at: 0)
///     sink.write(buffer[0 ..< record.recordLength])
///     ...
///     encoder.frameEndOfDevice(device: 0, in: buffer, at: 0)   // per device
///     encoder.frameEndOfStream(in: buffer, at: 0)              // once, last
public struct StreamEncoder: Sendable {
    public let header: StreamHeader
    /// Sequence number the next record gets.
    public private(set) var nextSequence: UInt64 = 0
    public private(set) var isComplete = false
    private var totals: [DeviceTotals]
    private var ended: [Bool]
    private var totalStateBytes: UInt64 = 0

    /// `header.devices` fixes the device indices; `header.maxPayload` bounds every chunk.
    public init(header: StreamHeader) {
        precondition(header.devices.count <= StreamFormat.maxDevices, "too many devices")
        precondition(
            Int(header.maxPayload) >= StreamFormat.minimumMaxPayload && Int(header.maxPayload) <= StreamFormat.hardMaxPayload,
            "maxPayload \(header.maxPayload) outside the format's bounds")
        self.header = header
        self.totals = header.devices.indices.map { DeviceTotals(device: $0, preCopyBytes: 0, stopCopyBytes: 0, chunkCount: 0) }
        self.ended = Array(repeating: false, count: header.devices.count)
    }

    /// The stream header's bytes (write them first).
    public func encodeHeader() -> [UInt8] { header.encoded() }

    /// Totals so far for `device`.
    public func totals(of device: Int) -> DeviceTotals { totals[device] }

    // MARK: Into an IOBuffer (the data path)

    /// Seals `payloadLength` state bytes already in `buffer[start + 32 ..< start + 32 + payloadLength]`
    /// as a device state record whose header goes to `buffer[start ..< start + 32]`.
    /// The record occupies `start ..< start + result.recordLength`. `buffer.count` is not touched.
    /// Returns the header as written (with its checksum).
    @discardableResult
    public mutating func frameDeviceState(
        device: Int, phase: StatePhase, payloadLength: Int, in buffer: IOBuffer, at start: Int
    ) -> RecordHeader {
        let record = nextDeviceState(device: device, phase: phase, payloadLength: payloadLength)
        return seal(record, payload: .inPlace, in: buffer, at: start)
    }

    /// Writes a complete pre-copy progress record (header and 16-byte payload) at `start`.
    @discardableResult
    public mutating func framePreCopyProgress(
        device: Int, initialBytes: UInt64, dirtyBytes: UInt64, in buffer: IOBuffer, at start: Int
    ) -> RecordHeader {
        let record = nextPreCopyProgress(device: device)
        return seal(record, payload: .words(initialBytes, dirtyBytes, 0, count: 2), in: buffer, at: start)
    }

    /// Writes a complete end-of-device record at `start`.
    @discardableResult
    public mutating func frameEndOfDevice(device: Int, in buffer: IOBuffer, at start: Int) -> RecordHeader {
        let (record, done) = nextEndOfDevice(device: device)
        return seal(record, payload: .words(done.preCopyBytes, done.stopCopyBytes, done.chunkCount, count: 3), in: buffer, at: start)
    }

    /// Writes the end-of-stream record at `start`; every device must have ended.
    @discardableResult
    public mutating func frameEndOfStream(in buffer: IOBuffer, at start: Int) -> RecordHeader {
        let (record, words) = nextEndOfStream()
        return seal(record, payload: words, in: buffer, at: start)
    }

    // MARK: Appending to an array (tests, small tools)

    @discardableResult
    public mutating func appendDeviceState(
        device: Int, phase: StatePhase, payload: some Collection<UInt8>, to bytes: inout [UInt8]
    ) -> RecordHeader {
        let record = nextDeviceState(device: device, phase: phase, payloadLength: payload.count)
        let start = bytes.count
        bytes.append(contentsOf: repeatElement(0, count: StreamFormat.recordHeaderSize))
        bytes.append(contentsOf: payload)
        return Self.seal(record, payload: .inPlace, in: &bytes, at: start)
    }

    @discardableResult
    public mutating func appendPreCopyProgress(
        device: Int, initialBytes: UInt64, dirtyBytes: UInt64, to bytes: inout [UInt8]
    ) -> RecordHeader {
        let record = nextPreCopyProgress(device: device)
        return Self.append(record, payload: .words(initialBytes, dirtyBytes, 0, count: 2), to: &bytes)
    }

    @discardableResult
    public mutating func appendEndOfDevice(device: Int, to bytes: inout [UInt8]) -> RecordHeader {
        let (record, done) = nextEndOfDevice(device: device)
        return Self.append(record, payload: .words(done.preCopyBytes, done.stopCopyBytes, done.chunkCount, count: 3), to: &bytes)
    }

    @discardableResult
    public mutating func appendEndOfStream(to bytes: inout [UInt8]) -> RecordHeader {
        let (record, words) = nextEndOfStream()
        return Self.append(record, payload: words, to: &bytes)
    }

    /// Appends any record as given, numbered with the next sequence number and sealed with a
    /// correct CRC, but otherwise unchecked: for records of later minors (skippable
    /// extensions) and for tests that need a well-sealed but invalid record.
    @discardableResult
    public mutating func appendUncheckedRecord(_ template: RecordHeader, payload: [UInt8], to bytes: inout [UInt8]) -> RecordHeader {
        var record = template
        record.sequence = nextSequence
        record.payloadLength = UInt32(payload.count)
        nextSequence += 1
        let start = bytes.count
        bytes.append(contentsOf: repeatElement(0, count: StreamFormat.recordHeaderSize))
        bytes.append(contentsOf: payload)
        return Self.seal(record, payload: .inPlace, in: &bytes, at: start)
    }

    // MARK: Bookkeeping (shared by both targets)

    private mutating func nextDeviceState(device: Int, phase: StatePhase, payloadLength: Int) -> RecordHeader {
        checkOpen(device)
        precondition(
            payloadLength > 0 && payloadLength <= Int(header.maxPayload),
            "state chunk of \(payloadLength) bytes outside 1...\(header.maxPayload)")
        if phase == .preCopy { checkPreCopy(device) }
        let offset = totals[device].totalBytes
        precondition(offset <= UInt64.max - UInt64(payloadLength), "device \(device) state offset overflows")
        let record = RecordHeader(
            type: .deviceState, device: UInt16(device), phase: phase.rawValue, payloadLength: UInt32(payloadLength),
            sequence: takeSequence(), offset: offset)
        if phase == .preCopy {
            totals[device].preCopyBytes += UInt64(payloadLength)
        } else {
            totals[device].stopCopyBytes += UInt64(payloadLength)
        }
        totals[device].chunkCount += 1
        totalStateBytes += UInt64(payloadLength)
        return record
    }

    private mutating func nextPreCopyProgress(device: Int) -> RecordHeader {
        checkOpen(device)
        checkPreCopy(device)
        return RecordHeader(
            type: .preCopyProgress, device: UInt16(device), payloadLength: UInt32(PayloadSize.preCopyProgress),
            sequence: takeSequence(), offset: totals[device].totalBytes)
    }

    private mutating func nextEndOfDevice(device: Int) -> (RecordHeader, DeviceTotals) {
        checkOpen(device)
        ended[device] = true
        let record = RecordHeader(
            type: .endOfDevice, device: UInt16(device), payloadLength: UInt32(PayloadSize.endOfDevice),
            sequence: takeSequence(), offset: totals[device].totalBytes)
        return (record, totals[device])
    }

    private mutating func nextEndOfStream() -> (RecordHeader, FixedPayload) {
        precondition(!isComplete, "end of stream written twice")
        if let open = ended.firstIndex(of: false) { preconditionFailure("end of stream before device \(open) ended") }
        let recordCount = nextSequence
        let record = RecordHeader(
            type: .endOfStream, device: StreamFormat.noDevice, payloadLength: UInt32(PayloadSize.endOfStream),
            sequence: takeSequence(), offset: 0)
        isComplete = true
        // deviceCount u32 + reserved u32 share the first word.
        return (record, .words(UInt64(totals.count), totalStateBytes, recordCount, count: 3))
    }

    private mutating func takeSequence() -> UInt64 {
        defer { nextSequence += 1 }
        return nextSequence
    }

    private func checkOpen(_ device: Int) {
        precondition(!isComplete, "record after end of stream")
        precondition(device >= 0 && device < totals.count, "device index \(device) outside 0..<\(totals.count)")
        precondition(!ended[device], "record for device \(device) after its end")
    }

    private func checkPreCopy(_ device: Int) {
        precondition(header.devices[device].migrationFlags.contains(.preCopy), "pre-copy record for device \(device) without PRE_COPY")
        precondition(totals[device].stopCopyBytes == 0, "pre-copy record for device \(device) after stop-copy data")
    }

    // MARK: Sealing

    /// Payload source: already in place behind the header, or up to three u64 words to write.
    enum FixedPayload {
        case inPlace
        case words(UInt64, UInt64, UInt64, count: Int)
    }

    private func seal(_ record: RecordHeader, payload: FixedPayload, in buffer: IOBuffer, at start: Int) -> RecordHeader {
        precondition(start >= 0 && start + record.recordLength <= buffer.capacity, "record does not fit the buffer")
        // SAFETY: IOBuffer checks the range; the region does not escape the closure.
        return buffer.withUnsafeMutableBytes(in: start..<(start + record.recordLength)) { region in
            Self.seal(record, payload: payload, region: region)
        }
    }

    private static func append(_ record: RecordHeader, payload: FixedPayload, to bytes: inout [UInt8]) -> RecordHeader {
        let start = bytes.count
        bytes.append(contentsOf: repeatElement(0, count: record.recordLength))
        return seal(record, payload: payload, in: &bytes, at: start)
    }

    @discardableResult
    private static func seal(_ record: RecordHeader, payload: FixedPayload, in bytes: inout [UInt8], at start: Int) -> RecordHeader {
        // SAFETY: the slice covers exactly the record's bytes, which the caller appended.
        bytes[start..<(start + record.recordLength)].withUnsafeMutableBytes { region in
            seal(record, payload: payload, region: UnsafeMutableRawBufferPointer(region))
        }
    }

    /// Writes the fixed payload (if any) and the header with its CRC into `region`
    /// (exactly header + payload). One CRC pass over the region, no allocation.
    private static func seal(_ record: RecordHeader, payload: FixedPayload, region: UnsafeMutableRawBufferPointer) -> RecordHeader {
        precondition(region.count == record.recordLength, "region is not exactly one record")
        if case let .words(first, second, third, count) = payload {
            // SAFETY: `region` is the record; the payload begins after the 32-byte header.
            var writer = LittleEndianWriter(UnsafeMutableRawBufferPointer(rebasing: region[StreamFormat.recordHeaderSize...]))
            writer.write(first)
            writer.write(second)
            if count == 3 { writer.write(third) }
        }
        var sealed = record
        sealed.checksum = 0
        sealed.store(into: region)
        // SAFETY: `region` is the record's own header+payload range inside the caller's buffer.
        sealed.checksum = CRC32C.update(0, UnsafeRawBufferPointer(region))
        var writer = LittleEndianWriter(region, index: 12)
        writer.write(sealed.checksum)
        return sealed
    }
}
