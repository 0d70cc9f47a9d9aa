// The load side of the stream format over a file, pipe or socket. It reads exactly what the
// decoder asks for: a record header, then (once its size was checked against the limit) the
// payload straight into one reused buffer. Nothing is allocated per record, and a hostile
// length is refused before any memory is set aside for it.
import VFIOBuffers
import VFIOCore
import VFIOStream
import VFIOSyscalls

public final class StreamFileReader: LoadSource {
    public let header: StreamHeader
    public let path: String
    private var decoder: StreamDecoder
    private let input: StreamOutput
    private let buffer: IOBuffer
    private var finished = false

    /// Opens `path` ("-" for standard input) and reads and checks the header.
    public init(path: String, limits: StreamLimits = .default) throws(VFIOError) {
        self.path = path
        do {
            input = StreamOutput(path == "-" ? StreamFD.standard(0) : try StreamFD.open(path, forWriting: false))
        } catch {
            throw VFIOError(error.errno.rawValue == 2 ? .notFound : .ioFailure, "cannot open the stream: \(error)", device: path)
        }
        var decoder = StreamDecoder(limits: limits)
        let prefix = IOBuffer(capacity: StreamFormat.headerPrefixSize)
        let got = try Self.read(input, prefix, 0..<StreamFormat.headerPrefixSize, path)
        do {
            if got < StreamFormat.headerPrefixSize { try decoder.endOfInput(available: got) }
            let length = try decoder.decodeHeaderPrefix(prefix.bytes(0..<StreamFormat.headerPrefixSize))
            let whole = IOBuffer(capacity: length)
            whole.write(prefix.bytes(0..<StreamFormat.headerPrefixSize), at: 0)
            let rest = try Self.read(input, whole, StreamFormat.headerPrefixSize..<length, path)
            if StreamFormat.headerPrefixSize + rest < length {
                try decoder.endOfInput(available: StreamFormat.headerPrefixSize + rest)
            }
            header = try decoder.decodeHeader(whole.bytes(0..<length))
        } catch {
            throw Self.classify(error, path)
        }
        self.decoder = decoder
        buffer = IOBuffer(capacity: StreamFormat.recordHeaderSize + Int(header.maxPayload))
    }

    public var deviceCount: Int { header.devices.count }

    /// What has been read and checked so far (the whole stream once `next` returned `.endOfStream`).
    public var summary: StreamSummary? { decoder.summary }

    private static func read(_ input: StreamOutput, _ buffer: IOBuffer, _ range: Range<Int>, _ path: String) throws(VFIOError) -> Int {
        do {
            return try input.fd.readFully(into: buffer, range)
        } catch {
            throw VFIOError(VFIOError.code(for: error.errno), "failed to read the stream", device: path, operation: error.operation, errno: error.errno)
        }
    }

    /// Read failures pass through; decoder failures become stream errors with their offset.
    static func classify(_ error: any Error, _ path: String) -> VFIOError {
        if let error = error as? VFIOError { return error }
        guard let error = error as? StreamError else { preconditionFailure("unexpected error \(error)") }
        return streamError(error, path)
    }

    static func streamError(_ error: StreamError, _ path: String) -> VFIOError {
        let code: VFIOError.Code
        switch error.kind {
        case .badMagic, .unsupportedMajor, .unsupportedMinor, .inconsistentVersion, .unsupportedHeaderFlags,
             .unsupportedRecordType, .unknownRecordFlags, .unknownField, .unknownFieldFlags:
            code = .streamIncompatible
        default:
            code = .streamCorrupt
        }
        return VFIOError(code, "bad stream: \(error)", device: path)
    }

    public func next() throws(VFIOError) -> LoadEvent {
        precondition(!finished, "next() after the end of the stream")
        while true {
            let headerSize = StreamFormat.recordHeaderSize
            let got = try Self.read(input, buffer, 0..<headerSize, path)
            do {
                if got < headerSize { try decoder.endOfInput(available: got) }
                let record = try decoder.decodeRecordHeader(from: buffer, at: 0)
                let end = headerSize + Int(record.payloadLength)
                let payload = try Self.read(input, buffer, headerSize..<end, path)
                if payload < Int(record.payloadLength) { try decoder.endOfInput(available: headerSize + payload) }
                switch try decoder.decodePayload(in: buffer, range: headerSize..<end) {
                case .deviceState(let chunk):
                    return .deviceState(
                        device: chunk.device, phase: chunk.phase == .stopCopy ? .stopCopy : .preCopy,
                        offset: chunk.offset, buffer: buffer, payload: headerSize..<end)
                case .preCopyProgress(let p):
                    return .preCopyProgress(device: p.device, info: PreCopyInfo(initialBytes: p.initialBytes, dirtyBytes: p.dirtyBytes))
                case .endOfDevice(let totals):
                    return .endOfDevice(device: totals.device, totalBytes: totals.totalBytes)
                case .endOfStream:
                    // Nothing may follow the end of the stream.
                    let trailing = try Self.read(input, buffer, 0..<1, path)
                    try decoder.endOfInput(available: trailing)
                    finished = true
                    return .endOfStream
                case .skipped:
                    continue // a record a newer minor marked skippable
                }
            } catch {
                throw Self.classify(error, path)
            }
        }
    }

    /// Reads and checks the rest of the stream without loading it anywhere (verify, inspect).
    public func validateToEnd() throws(VFIOError) -> StreamSummary {
        while !finished {
            if case .endOfStream = try next() { break }
        }
        guard let summary = decoder.summary else { preconditionFailure("complete stream without a summary") }
        return summary
    }
}
