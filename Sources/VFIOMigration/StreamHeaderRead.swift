// A stream's header from any byte source: the fixed prefix, which gives the header's length
// (checked against the decoder's limit before the rest is read), then the rest. Shared by the
// one-source reader (StreamInput) and each receiving channel (ChannelReader).
import VFIOBuffers
import VFIOCore
import VFIOStream

enum StreamHeaderRead {
    /// Reads and decodes the header into `decoder`; returns it with its length in bytes.
    static func read(from source: any ByteSource, into decoder: inout StreamDecoder) throws(VFIOError) -> (header: StreamHeader, length: Int) {
        let prefixSize = StreamFormat.headerPrefixSize
        let prefix = IOBuffer(capacity: prefixSize)
        let got = try source.readFully(into: prefix, 0..<prefixSize)
        do {
            if got < prefixSize { try decoder.endOfInput(available: got) }
            let length = try decoder.decodeHeaderPrefix(prefix.bytes(0..<prefixSize))
            let whole = IOBuffer(capacity: length)
            whole.write(prefix.bytes(0..<prefixSize), at: 0)
            let rest = try source.readFully(into: whole, prefixSize..<length)
            if prefixSize + rest < length { try decoder.endOfInput(available: prefixSize + rest) }
            return (try decoder.decodeHeader(whole.bytes(0..<length)), length)
        } catch {
            throw StreamInput.classify(error, source.name)
        }
    }
}
