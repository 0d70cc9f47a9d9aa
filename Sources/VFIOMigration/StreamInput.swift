// The load side of the stream format over any byte source. It reads exactly what the decoder
// asks for: a record header, then (once its size was checked against the limit) the payload
// straight into one reused buffer. Nothing is allocated per record, and a hostile length is
// refused before any memory is set aside for it.
import VFIOBuffers
import VFIOCore
import VFIOStream

public final class StreamInput: LoadSource {
    public let header: StreamHeader
    public let source: any ByteSource
    private var decoder: StreamDecoder
    private let buffer: IOBuffer
    private var finished = false
    /// Where pages records go: target memory, or nowhere (nil: refused unless verifying).
    public let memory: GuestMemoryLoader?
    /// Without `memory`: read pages records through the buffer and check them instead of
    /// refusing them (what verify and inspect want; a load without memory must refuse).
    public var verifiesPagesWithoutMemory = false

    /// Reads and checks the header from `source`. With `memory`, pages records are loaded
    /// into it, and a stream whose regions differ from the target's is refused here, before
    /// any page is written; a stream with regions but no `memory` is refused at its first
    /// pages record.
    public init(from source: any ByteSource, limits: StreamLimits = .default, memory: GuestMemoryLoader? = nil) throws(VFIOError) {
        self.source = source
        var decoder = StreamDecoder(limits: limits)
        header = try StreamHeaderRead.read(from: source, into: &decoder).header
        self.decoder = decoder
        buffer = IOBuffer(capacity: StreamFormat.recordHeaderSize + Int(header.maxPayload))
        self.memory = memory
        if let memory {
            guard !header.regions.isEmpty else {
                throw VFIOError(.streamIncompatible, "target guest memory was given but the stream carries none", device: source.name)
            }
            try memory.accept(regions: header.regions, source: source.name)
        }
    }

    /// Opens `path` ("-" for standard input) and reads the header.
    public convenience init(path: String, limits: StreamLimits = .default) throws(VFIOError) {
        try self.init(from: try FileChannel.reading(path), limits: limits)
    }

    public var deviceCount: Int { header.devices.count }

    /// What has been read and checked so far (the whole stream once `next` returned `.endOfStream`).
    public var summary: StreamSummary? { decoder.summary }

    /// Read failures pass through; decoder failures become stream errors with their offset.
    static func classify(_ error: any Error, _ name: String) -> VFIOError {
        if let error = error as? VFIOError { return error }
        guard let error = error as? StreamError else { preconditionFailure("unexpected error \(error)") }
        return streamError(error, name)
    }

    static func streamError(_ error: StreamError, _ name: String) -> VFIOError {
        let code: VFIOError.Code
        switch error.kind {
        case .badMagic, .unsupportedMajor, .unsupportedMinor, .inconsistentVersion, .unsupportedHeaderFlags, .readerMinorTooLow,
             .recordChecksumsNotAccepted,
             .unsupportedRecordType, .unknownRecordFlags, .unknownField, .unknownFieldFlags:
            code = .streamIncompatible
        default:
            code = .streamCorrupt
        }
        return VFIOError(code, "bad stream: \(error)", device: name)
    }

    public func next() throws(VFIOError) -> LoadEvent {
        guard !finished else { throw .invalidUse("next() after the end of the stream \(source.name)") }
        while true {
            let headerSize = StreamFormat.recordHeaderSize
            let got = try source.readFully(into: buffer, 0..<headerSize)
            do {
                if got < headerSize { try decoder.endOfInput(available: got) }
                let record = try decoder.decodeRecordHeader(from: buffer, at: 0)
                if record.type == .pages {
                    try pages(record)
                    continue
                }
                let end = headerSize + Int(record.payloadLength)
                let payload = try source.readFully(into: buffer, headerSize..<end)
                if payload < Int(record.payloadLength) { try decoder.endOfInput(available: payload) }
                switch try decoder.decodePayload(in: buffer, range: headerSize..<end) {
                case .deviceState(let chunk):
                    return .state(StateChunk(device: chunk.device, phase: chunk.phase, offset: chunk.offset, payload: headerSize..<end), buffer)
                case .preCopyProgress(let p):
                    return .progress(device: p.device, info: PreCopyInfo(initialBytes: p.initialBytes, dirtyBytes: p.dirtyBytes))
                case .endOfDevice(let totals):
                    return .endOfDevice(device: totals.device, totalBytes: totals.totalBytes)
                case .endOfStream:
                    // Nothing may follow the end of the stream.
                    let trailing = try source.read(into: buffer, 0..<1)
                    try decoder.endOfInput(available: trailing)
                    finished = true
                    return .endOfStream
                case .skipped, .deviceDigest:
                    continue // a record a newer minor marked skippable; a digest the decoder checked
                case .pages:
                    preconditionFailure("pages records are read by pages(_:)")
                }
            } catch {
                throw Self.classify(error, source.name)
            }
        }
    }

    /// One pages record, zero-copy (see `PagesRecordReader`).
    private func pages(_ record: RecordHeader) throws {
        guard memory != nil || verifiesPagesWithoutMemory else {
            throw VFIOError(.streamIncompatible, "stream carries guest memory pages but no target memory was given", device: source.name)
        }
        try PagesRecordReader.read(record, decoder: &decoder, source: source, buffer: buffer, memory: memory, checksums: header.hasRecordChecksums)
    }

    /// Reads and checks the rest of the stream without loading it anywhere (verify, inspect).
    public func validateToEnd() throws(VFIOError) -> StreamSummary {
        verifiesPagesWithoutMemory = true
        while !finished {
            if case .endOfStream = try next() { break }
        }
        guard let summary = decoder.summary else { preconditionFailure("complete stream without a summary") }
        return summary
    }
}
