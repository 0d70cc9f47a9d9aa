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
///         //    (a pages record may instead go through decodePageTable and finishPages)
///         switch try decoder.decodePayload(in: buffer, range: 32..<32 + n) { ... }
///     }
///     // 5. at end of input, with the number of bytes that did arrive for the piece being read
///     try decoder.endOfInput(available: 0)
///
/// If the input ends early, `endOfInput(available:)` throws the error naming what was cut
/// short. After any error the decoder stays failed and repeats it. Device state records
/// allocate nothing: state lives in arrays sized once, from the header.
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
    private var tracks: [DeviceTrack] = []
    private var rules = Rules()
    private var regions: [MemoryRegionDescriptor] = []
    private var regionSummaries: [RegionSummary] = []
    private var pageOrder = PageOrder()
    private var shift = CRCShiftCache()

    private enum Stage: Sendable {
        case headerPrefix
        case header(length: Int)
        case recordHeader
        case payload(RecordHeader)
        /// A pages record whose first 8 payload bytes were checked.
        case pageTable(RecordHeader, tableLength: Int)
        /// A pages record whose table was checked; its data are the caller's to place.
        case pageData(RecordHeader, PendingPages)
        case complete
        case failed(StreamError)
    }

    /// What the stream's header makes of the record rules.
    private struct Rules: Sendable {
        var checksums = true
        /// One of several channels: offsets per channel, data CRCs left to the reassembler.
        var parallel = false
        var primary = true
        var channel: UInt16 = 0
        var requiresDigests = false
        /// The running data CRC per device can be checked here.
        var tracksDataCRC: Bool { checksums && !parallel }
    }

    /// Per-device state the summary does not show.
    private struct DeviceTrack: Sendable {
        var preCopyAllowed: Bool
        var descriptorCRC: UInt32
        /// Single stream: bytes so far. Parallel channel: end of this channel's last chunk.
        var dataEnd: UInt64 = 0
        /// CRC32C of the data so far (single stream with checksums).
        var dataCRC: UInt32 = 0
        /// Set by the device's digest record.
        var digestOffset: UInt64?
    }

    private struct PendingPages: Sendable {
        var region: Int
        var phase: StatePhase
        var dataLength: Int
        var dataPages: UInt64
        var zeroPages: UInt64
        /// CRC of the record header (checksum as 0) and the table.
        var prefixCRC: UInt32
    }

    /// What the decoder needs next, and how many bytes.
    public enum Expectation: Sendable, Equatable {
        case headerPrefix(Int)
        case header(Int)
        case recordHeader(Int)
        case payload(Int)
        /// A pages record after decodePageTableLength: its whole table (first 8 bytes included).
        case pageTable(Int)
        /// A pages record after decodePageTable: its data bytes, then finishPages.
        case pageData(Int)
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
        case .pageTable(_, let tableLength): .pageTable(tableLength)
        case .pageData(_, let pending): .pageData(pending.dataLength)
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
        return try failing { (decoder) throws(StreamError) in
            let length = try HeaderCodec.headerLength(prefix: prefix, limits: decoder.limits)
            decoder.stage = .header(length: length)
            return length
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
        let limits = limits
        let decoded = try failing { (_) throws(StreamError) in try HeaderCodec.decode(bytes, limits: limits) }
        let found = decoded.header
        header = found
        headerLength = decoded.length
        position = UInt64(decoded.length)
        devices = found.devices.indices.map {
            DeviceSummary(
                device: $0, preCopyBytes: 0, stopCopyBytes: 0, chunkCount: 0, progressRecords: 0, lastProgress: nil, ended: false,
                digest: nil)
        }
        tracks = found.devices.indices.map {
            DeviceTrack(preCopyAllowed: found.devices[$0].migrationFlags.contains(.preCopy), descriptorCRC: decoded.descriptorCRCs[$0])
        }
        rules = Rules(
            checksums: found.hasRecordChecksums, parallel: found.isParallel, primary: found.isPrimaryChannel,
            channel: found.channel?.index ?? 0, requiresDigests: found.requiresDeviceDigests)
        regions = found.regions
        regionSummaries = found.regions.indices.map { RegionSummary(region: $0) }
        stage = .recordHeader
        return found
    }

    /// Step 3: the 32-byte record header. Only the payload bound is checked here (so a bad
    /// length is refused before anything is read or allocated); everything else is checked
    /// in step 4, after the CRC, so corruption is reported as corruption.
    public mutating func decodeRecordHeader(_ bytes: UnsafeRawBufferPointer) throws(StreamError) -> RecordHeader {
        try checkNotFailed()
        guard case .recordHeader = stage else { preconditionFailure("decodeRecordHeader called in stage \(stage)") }
        recordStart = position
        return try failing { (decoder) throws(StreamError) in try decoder.recordHeaderStep(bytes) }
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
        return try failing { (decoder) throws(StreamError) in try decoder.payloadStep(record, payload) }
    }

    private mutating func payloadStep(_ record: RecordHeader, _ payload: UnsafeRawBufferPointer) throws(StreamError) -> Record {
        var payloadCRC: UInt32 = 0
        if rules.checksums {
            let computed: UInt32
            if record.type == .deviceState && rules.tracksDataCRC {
                // One pass over the data gives both the record CRC and the device's data CRC.
                payloadCRC = CRC32C.update(0, payload)
                computed = shift.combine(record.headerChecksum(), payloadCRC, lengthOfB: UInt64(payload.count))
            } else {
                computed = record.computeChecksum(payload: payload)
            }
            guard computed == record.checksum else {
                throw fail(.checksumMismatch(stored: record.checksum, computed: computed))
            }
        }
        let decoded = try validate(record, payload: payload, payloadCRC: payloadCRC)
        finishRecord(record)
        if case .endOfStream = decoded { stage = .complete }
        return decoded
    }

    private mutating func finishRecord(_ record: RecordHeader) {
        nextSequence += 1
        position += UInt64(record.payloadLength)
        stage = .recordHeader
    }

    /// Step 5: input ended after `available` bytes of the piece the decoder expected: of the
    /// header prefix or header, of a record header, or, once a record header was decoded, of
    /// that record's payload (table and data of a pages record included).
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
        case .payload(let record), .pageTable(let record, _), .pageData(let record, _):
            // Name the whole record: its header arrived, `available` bytes of its payload did.
            throw StreamError(
                offset: recordStart, kind: .truncated(needed: record.recordLength, available: StreamFormat.recordHeaderSize + available))
        case .failed:
            preconditionFailure("unreachable: checkNotFailed threw")
        }
        throw StreamError(offset: at, kind: .truncated(needed: needed, available: available))
    }

    // MARK: Pages in pieces (zero-copy receive)

    /// Step 4a for a pages record, instead of decodePayload: the first 8 bytes of its payload
    /// (the whole payload when it is shorter; such a record is refused). Checks the record
    /// header's fields, its place in the stream and the region and run count against the
    /// header and payloadLength; returns the table's length (8 + 16 * runCount, these 8
    /// bytes included), which the caller reads next.
    ///
    /// The split path checks the table *before* the CRC, because the data must be placed
    /// before they can be checked: a corrupted table is reported by the rule it breaks, and
    /// the CRC at finishPages.
    public mutating func decodePageTableLength(_ prefix: UnsafeRawBufferPointer) throws(StreamError) -> Int {
        try checkNotFailed()
        guard case .payload(let record) = stage, record.type == .pages else {
            preconditionFailure("decodePageTableLength called in stage \(stage)")
        }
        precondition(prefix.count >= min(PageTable.prefixSize, Int(record.payloadLength)), "page table prefix of \(prefix.count) bytes")
        return try failing { (decoder) throws(StreamError) in try decoder.pageTablePrefixStep(record, prefix) }
    }

    /// Step 4b: the whole table from the payload's first byte (bytes after the table are
    /// ignored); may be called without step 4a. Validates every run against the region and
    /// the record's length and returns the table: the caller then reads each non-ZERO run's
    /// data straight into the region's memory (`PageTable.placements`), computes the CRC32C
    /// of the data bytes in order, and calls finishPages.
    public mutating func decodePageTable(_ table: UnsafeRawBufferPointer) throws(StreamError) -> PageTable {
        try checkNotFailed()
        let record: RecordHeader
        switch stage {
        case .payload(let found) where found.type == .pages: record = found
        case .pageTable(let found, _): record = found
        default: preconditionFailure("decodePageTable called in stage \(stage)")
        }
        return try failing { (decoder) throws(StreamError) in
            if case .payload = decoder.stage {
                precondition(table.count >= min(PageTable.prefixSize, Int(record.payloadLength)), "page table of \(table.count) bytes")
                _ = try decoder.pageTablePrefixStep(record, table)
            }
            guard case .pageTable(_, let tableLength) = decoder.stage else { preconditionFailure("unreachable") }
            precondition(table.count >= tableLength, "page table of \(table.count) bytes, \(tableLength) needed")
            // SAFETY: `tableLength <= table.count` (checked above).
            let tableBytes = UnsafeRawBufferPointer(rebasing: table[0..<tableLength])
            let decoded = try decoder.pageTable(record, tableBytes)
            let prefixCRC = decoder.rules.checksums ? CRC32C.update(record.headerChecksum(), tableBytes) : 0
            decoder.stage = .pageData(
                record,
                PendingPages(
                    region: decoded.region, phase: decoded.phase, dataLength: decoded.dataLength, dataPages: decoded.dataPageCount,
                    zeroPages: decoded.zeroPageCount, prefixCRC: prefixCRC))
            return decoded
        }
    }

    /// The checks of step 4a; moves to the table stage.
    private mutating func pageTablePrefixStep(_ record: RecordHeader, _ prefix: UnsafeRawBufferPointer) throws(StreamError) -> Int {
        try checkCommon(record)
        try checkPagesHeader(record)
        let tableLength = try tableLength(record, prefix)
        stage = .pageTable(record, tableLength: tableLength)
        return tableLength
    }

    /// Step 4c: the CRC32C of the record's data bytes (those after the table, in order; 0
    /// when there are none or the stream has NO_RECORD_CHECKSUMS). Verifies the record's CRC
    /// and counts the record. The data may already be in the target's memory when this
    /// throws: the engine then fails the whole load, as it does for any refused record.
    public mutating func finishPages(dataCRC: UInt32) throws(StreamError) {
        try checkNotFailed()
        guard case .pageData(let record, let pending) = stage else { preconditionFailure("finishPages called in stage \(stage)") }
        if rules.checksums {
            let computed = CRCShift.combine(pending.prefixCRC, dataCRC, lengthOfB: UInt64(pending.dataLength))
            guard computed == record.checksum else {
                return try failing { (decoder) throws(StreamError) in throw decoder.fail(.checksumMismatch(stored: record.checksum, computed: computed)) }
            }
        }
        countPages(record, region: pending.region, phase: pending.phase, dataPages: pending.dataPages, zeroPages: pending.zeroPages)
        finishRecord(record)
    }

    // MARK: Totals

    /// What the decoder has seen so far (nil before the header).
    public var summary: StreamSummary? {
        guard let header else { return nil }
        return StreamSummary(
            header: header, headerLength: headerLength, streamLength: position, recordCount: nextSequence,
            skippedRecords: skippedRecords, totalStateBytes: totalStateBytes, complete: isComplete, devices: devices,
            regions: regionSummaries, lastRound: pageOrder.lastRound)
    }

    // MARK: Validation

    /// Checks every record gets after its CRC, before its type's own.
    private func checkCommon(_ record: RecordHeader) throws(StreamError) {
        guard record.type.rawValue != 0 else { throw fail(.zeroRecordType) }
        guard record.flags.isSubset(of: .known) else {
            throw fail(.unknownRecordFlags(record.flags.subtracting(.known).rawValue))
        }
        guard record.sequence == nextSequence else {
            throw fail(.sequenceMismatch(expected: nextSequence, found: record.sequence))
        }
        try expect("reserved", record.reserved, 0)
    }

    private mutating func validate(_ record: RecordHeader, payload: UnsafeRawBufferPointer, payloadCRC: UInt32) throws(StreamError) -> Record {
        try checkCommon(record)
        var reader = LittleEndianReader(payload)

        switch record.type {
        case .deviceState:
            let device = try deviceIndex(record)
            guard let phase = StatePhase(rawValue: record.phase) else { throw fail(.invalidPhase(record.phase)) }
            guard !devices[device].ended else { throw fail(.recordAfterEndOfDevice(device: device)) }
            guard tracks[device].digestOffset == nil else { throw fail(.recordAfterDeviceDigest(device: device)) }
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
            tracks[device].dataEnd = record.offset + length
            if rules.tracksDataCRC {
                tracks[device].dataCRC = shift.combine(tracks[device].dataCRC, payloadCRC, lengthOfB: length)
            }
            totalStateBytes &+= length
            return .deviceState(DeviceStateChunk(device: device, phase: phase, offset: record.offset, length: Int(length)))

        case .preCopyProgress:
            let device = try deviceIndex(record)
            try expect("phase", record.phase, 0)
            try expectPayload(record, PayloadSize.preCopyProgress)
            guard !devices[device].ended else { throw fail(.recordAfterEndOfDevice(device: device)) }
            try checkPrimaryChannel(record)
            guard tracks[device].digestOffset == nil else { throw fail(.recordAfterDeviceDigest(device: device)) }
            try checkPreCopyAllowed(device)
            try checkOffset(record, device)
            let progress = PreCopyProgress(
                device: device, offset: record.offset, initialBytes: reader.read(UInt64.self), dirtyBytes: reader.read(UInt64.self))
            devices[device].progressRecords += 1
            devices[device].lastProgress = progress
            return .preCopyProgress(progress)

        case .pages:
            try checkPagesHeader(record)
            let tableLength = try tableLength(record, payload)
            // SAFETY: `tableLength <= payloadLength == payload.count` (checked by tableLength).
            let table = try pageTable(record, UnsafeRawBufferPointer(rebasing: payload[0..<tableLength]))
            countPages(record, region: table.region, phase: table.phase, dataPages: table.dataPageCount, zeroPages: table.zeroPageCount)
            return .pages(table)

        case .deviceDigest:
            let device = try deviceIndex(record)
            try expect("phase", record.phase, 0)
            try expectPayload(record, PayloadSize.deviceDigest)
            guard !devices[device].ended else { throw fail(.recordAfterEndOfDevice(device: device)) }
            try checkPrimaryChannel(record)
            guard tracks[device].digestOffset == nil else { throw fail(.duplicateDeviceDigest(device: device)) }
            try checkOffset(record, device)
            let descriptorCRC = reader.read(UInt32.self)
            let dataCRC = reader.read(UInt32.self)
            guard descriptorCRC == tracks[device].descriptorCRC else {
                throw fail(.deviceDigestMismatch(device: device, part: .descriptor, declared: descriptorCRC, computed: tracks[device].descriptorCRC))
            }
            if rules.tracksDataCRC {
                guard dataCRC == tracks[device].dataCRC else {
                    throw fail(.deviceDigestMismatch(device: device, part: .data, declared: dataCRC, computed: tracks[device].dataCRC))
                }
            }
            let digest = DeviceDigest(
                device: device, offset: record.offset, descriptorCRC: descriptorCRC, dataCRC: dataCRC, dataVerified: rules.tracksDataCRC)
            tracks[device].digestOffset = record.offset
            devices[device].digest = digest
            return .deviceDigest(digest)

        case .endOfDevice:
            let device = try deviceIndex(record)
            try expect("phase", record.phase, 0)
            try expectPayload(record, PayloadSize.endOfDevice)
            guard !devices[device].ended else { throw fail(.duplicateEndOfDevice(device: device)) }
            try checkOffset(record, device)
            if let digestOffset = tracks[device].digestOffset, record.offset != digestOffset {
                throw fail(.offsetMismatch(device: device, expected: digestOffset, found: record.offset))
            }
            let declared = DeviceTotals(
                device: device, preCopyBytes: reader.read(UInt64.self), stopCopyBytes: reader.read(UInt64.self),
                chunkCount: reader.read(UInt64.self))
            let counted = devices[device].totals
            guard declared == counted else { throw fail(.deviceTotalsMismatch(device: device, declared: declared, counted: counted)) }
            if rules.requiresDigests && tracks[device].digestOffset == nil { throw fail(.missingDeviceDigest(device: device)) }
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
        guard tracks[device].preCopyAllowed else { throw fail(.preCopyNotAdvertised(device: device)) }
        guard devices[device].stopCopyBytes == 0 else { throw fail(.phaseRegression(device: device)) }
    }

    private func checkPrimaryChannel(_ record: RecordHeader) throws(StreamError) {
        guard rules.primary else { throw fail(.notPrimaryChannel(recordType: record.type.rawValue, channel: rules.channel)) }
    }

    /// Single stream: the offset is the device's next byte. Parallel channel: at least the
    /// end of this channel's previous chunk (the reassembler checks the union).
    private func checkOffset(_ record: RecordHeader, _ device: Int) throws(StreamError) {
        let end = tracks[device].dataEnd
        if rules.parallel {
            guard record.offset >= end else {
                throw fail(.offsetBelowChannelEnd(device: device, channelEnd: end, found: record.offset))
            }
        } else {
            guard record.offset == end else {
                throw fail(.offsetMismatch(device: device, expected: end, found: record.offset))
            }
        }
    }

    // MARK: Pages

    /// The record-header rules of a pages record: whole-stream device, phase, round order.
    private func checkPagesHeader(_ record: RecordHeader) throws(StreamError) {
        try expect("device", record.device, StreamFormat.noDevice)
        guard let phase = StatePhase(rawValue: record.phase) else { throw fail(.invalidPhase(record.phase)) }
        switch pageOrder.problem(phase: phase, round: record.offset) {
        case .roundRegression(let previous): throw fail(.pageRoundRegression(previous: previous, found: record.offset))
        case .phaseRegression: throw fail(.pagePhaseRegression)
        case nil: break
        }
    }

    /// From the payload's first 8 bytes (fewer when the payload is shorter).
    private func tableLength(_ record: RecordHeader, _ prefix: UnsafeRawBufferPointer) throws(StreamError) -> Int {
        var region: UInt32 = 0, runCount: UInt32 = 0
        if prefix.count >= PageTable.prefixSize {
            var reader = LittleEndianReader(prefix)
            region = reader.read(UInt32.self)
            runCount = reader.read(UInt32.self)
        }
        do throws(PageTableProblem) {
            return try PageTableRules.checkPrefix(region: region, runCount: runCount, payloadLength: record.payloadLength, regions: regions)
        } catch {
            throw fail(.invalidPageTable(error))
        }
    }

    /// The table (exactly `tableLength` bytes, already checked by tableLength).
    private func pageTable(_ record: RecordHeader, _ table: UnsafeRawBufferPointer) throws(StreamError) -> PageTable {
        var reader = LittleEndianReader(table)
        let region = Int(reader.read(UInt32.self))
        let runCount = Int(reader.read(UInt32.self))
        let descriptor = regions[region]
        var checker = PageTableRules.RunChecker(region: descriptor, carried: UInt64(Int(record.payloadLength) - table.count))
        var runs: [PageRun] = []
        runs.reserveCapacity(runCount)
        do throws(PageTableProblem) {
            for _ in 0..<runCount {
                let firstPage = reader.read(UInt64.self), pageCount = reader.read(UInt32.self), flags = reader.read(UInt32.self)
                try checker.check(firstPage: firstPage, pageCount: pageCount, flags: flags)
                runs.append(PageRun(firstPage: firstPage, pageCount: pageCount, isZero: flags & PageRunFlags.zero != 0))
            }
            try checker.finish()
        } catch {
            throw fail(.invalidPageTable(error))
        }
        return PageTable(
            region: region, phase: StatePhase(rawValue: record.phase)!, round: record.offset, pageSize: Int(descriptor.pageSize),
            runs: runs, tableLength: table.count, dataLength: Int(checker.dataBytes), dataPageCount: checker.dataPages,
            zeroPageCount: checker.zeroPages)
    }

    private mutating func countPages(_ record: RecordHeader, region: Int, phase: StatePhase, dataPages: UInt64, zeroPages: UInt64) {
        pageOrder.record(phase: phase, round: record.offset)
        regionSummaries[region].count(phase: phase, dataPages: dataPages, zeroPages: zeroPages)
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

    /// Runs one step; an error leaves the decoder failed, repeating it from then on.
    private mutating func failing<R>(_ body: (inout StreamDecoder) throws(StreamError) -> R) throws(StreamError) -> R {
        do throws(StreamError) {
            return try body(&self)
        } catch {
            stage = .failed(error)
            throw error
        }
    }

    private func fail(_ kind: StreamError.Kind) -> StreamError {
        StreamError(offset: recordStart, kind: kind)
    }

    private func checkNotFailed() throws(StreamError) {
        if case .failed(let error) = stage { throw error }
    }
}
