// Conveniences over StreamDecoder: IOBuffer and array entry points, and a reader for a
// stream that is already in memory (inspect, verify, tests, the fuzzer).
import VFIOBuffers

extension StreamDecoder {
    /// Step 3 from `buffer[start ..< start + 32]`.
    public mutating func decodeRecordHeader(from buffer: IOBuffer, at start: Int) throws(StreamError) -> RecordHeader {
        // SAFETY: IOBuffer checks the range; the bytes are only read inside the closure.
        try buffer.withUnsafeBytes(in: start..<(start + StreamFormat.recordHeaderSize)) { (raw) throws(StreamError) in
            try decodeRecordHeader(raw)
        }
    }

    /// Step 4 with the payload at `buffer[range]`.
    public mutating func decodePayload(in buffer: IOBuffer, range: Range<Int>) throws(StreamError) -> Record {
        // SAFETY: IOBuffer checks the range; the bytes are only read inside the closure.
        try buffer.withUnsafeBytes(in: range) { (raw) throws(StreamError) in try decodePayload(raw) }
    }

    public mutating func decodeHeaderPrefix(_ bytes: [UInt8]) throws(StreamError) -> Int {
        try withRawBytes(bytes) { (raw) throws(StreamError) in try decodeHeaderPrefix(raw) }
    }

    public mutating func decodeHeader(_ bytes: [UInt8]) throws(StreamError) -> StreamHeader {
        try withRawBytes(bytes) { (raw) throws(StreamError) in try decodeHeader(raw) }
    }

    public mutating func decodeRecordHeader(_ bytes: [UInt8]) throws(StreamError) -> RecordHeader {
        try withRawBytes(bytes) { (raw) throws(StreamError) in try decodeRecordHeader(raw) }
    }

    public mutating func decodePayload(_ bytes: [UInt8]) throws(StreamError) -> Record {
        try withRawBytes(bytes) { (raw) throws(StreamError) in try decodePayload(raw) }
    }

    /// Step 4a with the payload's first bytes at `buffer[range]`.
    public mutating func decodePageTableLength(in buffer: IOBuffer, range: Range<Int>) throws(StreamError) -> Int {
        // SAFETY: IOBuffer checks the range; the bytes are only read inside the closure.
        try buffer.withUnsafeBytes(in: range) { (raw) throws(StreamError) in try decodePageTableLength(raw) }
    }

    /// Step 4b with the table at `buffer[range]`.
    public mutating func decodePageTable(in buffer: IOBuffer, range: Range<Int>) throws(StreamError) -> PageTable {
        // SAFETY: IOBuffer checks the range; the bytes are only read inside the closure.
        try buffer.withUnsafeBytes(in: range) { (raw) throws(StreamError) in try decodePageTable(raw) }
    }
}

/// A record as the in-memory reader found it.
public struct ReadRecord: Sendable, Hashable {
    /// Offset of the record's first header byte in the stream.
    public var offset: UInt64
    public var header: RecordHeader
    public var record: Record
    /// Where the payload lies in the reader's bytes.
    public var payload: Range<Int>
}

/// Reads a whole stream held in memory, record by record, through a StreamDecoder.
public struct StreamReader: Sendable {
    public let bytes: [UInt8]
    public private(set) var decoder: StreamDecoder
    /// Pages records go through decodePageTableLength, decodePageTable and finishPages, as a
    /// zero-copy receiver reads them, instead of decodePayload.
    public let pagesInPieces: Bool
    private var index = 0

    public init(_ bytes: [UInt8], limits: StreamLimits = .default, pagesInPieces: Bool = false) {
        self.bytes = bytes
        self.decoder = StreamDecoder(limits: limits)
        self.pagesInPieces = pagesInPieces
    }

    /// Decodes the header; call once, first.
    public mutating func readHeader() throws(StreamError) -> StreamHeader {
        let input = bytes
        let prefixCount = min(input.count, StreamFormat.headerPrefixSize)
        let length = try decoder.decodeHeaderPrefix(Array(input[0..<prefixCount]))
        guard input.count >= length else { try decoder.endOfInput(available: input.count); preconditionFailure("endOfInput returned for a short header") }
        let header = try decoder.decodeHeader(input)
        index = length
        return header
    }

    /// The next record, or nil after the end-of-stream record when no bytes follow it.
    public mutating func next() throws(StreamError) -> ReadRecord? {
        let input = bytes
        let available = input.count - index
        if decoder.isComplete {
            try decoder.endOfInput(available: available)
            return nil
        }
        let start = index
        guard available >= StreamFormat.recordHeaderSize else {
            try decoder.endOfInput(available: available)
            preconditionFailure("endOfInput returned before the end of the stream")
        }
        let header = try withRawBytes(input) { (raw) throws(StreamError) in
            // SAFETY: `start + 32 <= raw.count` was checked above.
            try decoder.decodeRecordHeader(UnsafeRawBufferPointer(rebasing: raw[start..<(start + StreamFormat.recordHeaderSize)]))
        }
        let payloadStart = start + StreamFormat.recordHeaderSize
        let payloadLength = Int(header.payloadLength)
        let record: Record
        if pagesInPieces && header.type == .pages {
            record = try readPagesInPieces(payloadStart: payloadStart, payloadLength: payloadLength)
        } else {
            guard input.count - payloadStart >= payloadLength else {
                try decoder.endOfInput(available: input.count - payloadStart)
                preconditionFailure("endOfInput returned for a short payload")
            }
            record = try withRawBytes(input) { (raw) throws(StreamError) in
                // SAFETY: the payload lies inside `raw` (checked above).
                try decoder.decodePayload(UnsafeRawBufferPointer(rebasing: raw[payloadStart..<(payloadStart + payloadLength)]))
            }
        }
        let payload = payloadStart..<(payloadStart + payloadLength)
        index = payload.upperBound
        return ReadRecord(offset: UInt64(start), header: header, record: record, payload: payload)
    }

    /// Table first, then the data's CRC, each piece only once it has arrived.
    private mutating func readPagesInPieces(payloadStart: Int, payloadLength: Int) throws(StreamError) -> Record {
        let input = bytes
        let available = input.count - payloadStart
        func arrived(_ count: Int) throws(StreamError) {
            guard available >= count else {
                try decoder.endOfInput(available: available)
                preconditionFailure("endOfInput returned for a short payload")
            }
        }
        let prefixLength = min(PageTable.prefixSize, payloadLength)
        try arrived(prefixLength)
        return try withRawBytes(input) { (raw) throws(StreamError) in
            // SAFETY: each range below was checked against the input by `arrived` first.
            let tableLength = try decoder.decodePageTableLength(UnsafeRawBufferPointer(rebasing: raw[payloadStart..<(payloadStart + prefixLength)]))
            try arrived(tableLength)
            let table = try decoder.decodePageTable(UnsafeRawBufferPointer(rebasing: raw[payloadStart..<(payloadStart + tableLength)]))
            try arrived(payloadLength)
            // SAFETY: the data range lies inside `raw` (checked by `arrived` just above).
            let data = UnsafeRawBufferPointer(rebasing: raw[(payloadStart + tableLength)..<(payloadStart + payloadLength)])
            try decoder.finishPages(dataCRC: decoder.header!.hasRecordChecksums ? CRC32C.update(0, data) : 0)
            return .pages(table)
        }
    }

    /// Reads and validates a whole stream; returns its summary or the first error.
    public static func verify(_ bytes: [UInt8], limits: StreamLimits = .default, pagesInPieces: Bool = false) throws(StreamError) -> StreamSummary {
        var reader = StreamReader(bytes, limits: limits, pagesInPieces: pagesInPieces)
        _ = try reader.readHeader()
        while try reader.next() != nil {}
        return reader.decoder.summary!
    }
}

/// Runs `body` over the array's bytes, keeping the typed error.
func withRawBytes<R>(_ bytes: [UInt8], _ body: (UnsafeRawBufferPointer) throws(StreamError) -> R) throws(StreamError) -> R {
    // SAFETY: the pointer is used only inside `body`, while the array is alive and unchanged.
    let result: Result<R, StreamError> = bytes.withUnsafeBytes { raw in
        Result { () throws(StreamError) -> R in try body(raw) }
    }
    return try result.get()
}
