// One pages record read the zero-copy way, for the single-stream reader and each channel of a
// parallel one: the table into the reader's buffer (checked against the regions before any
// page is touched), each data run straight into target memory, ZERO runs zero-filled, then
// the record's CRC. Without target memory (verify, inspect) the data passes through the buffer
// for its CRC only.
import VFIOBuffers
import VFIOCore
import VFIOStream

enum PagesRecordReader {
    static func read(
        _ record: RecordHeader, decoder: inout StreamDecoder, source: any ByteSource, buffer: IOBuffer,
        memory: GuestMemoryLoader?, checksums: Bool
    ) throws {
        let headerSize = StreamFormat.recordHeaderSize
        let length = Int(record.payloadLength)
        let prefix = min(PageTable.prefixSize, length)
        let got = try source.readFully(into: buffer, headerSize..<headerSize + prefix)
        if got < prefix { try decoder.endOfInput(available: got) }
        let tableLength = try decoder.decodePageTableLength(in: buffer, range: headerSize..<headerSize + prefix)
        let rest = try source.readFully(into: buffer, headerSize + prefix..<headerSize + tableLength)
        if prefix + rest < tableLength { try decoder.endOfInput(available: prefix + rest) }
        let table = try decoder.decodePageTable(in: buffer, range: headerSize..<headerSize + tableLength)
        let received: (crc: UInt32, dataBytes: Int)
        if let memory {
            received = try memory.receive(table, from: source, checksums: checksums)
        } else {
            received = try passThrough(table.dataLength, source: source, buffer: buffer, checksums: checksums)
        }
        if received.dataBytes < table.dataLength { try decoder.endOfInput(available: tableLength + received.dataBytes) }
        try decoder.finishPages(dataCRC: received.crc)
    }

    /// Reads a record's page data through the buffer, for its CRC only.
    private static func passThrough(_ length: Int, source: any ByteSource, buffer: IOBuffer, checksums: Bool) throws(VFIOError) -> (crc: UInt32, dataBytes: Int) {
        var crc: UInt32 = 0
        var done = 0
        while done < length {
            let piece = min(length - done, buffer.capacity)
            let got = try source.readFully(into: buffer, 0..<piece)
            if checksums { crc = CRC32C.update(crc, buffer, 0..<got) }
            done += got
            if got < piece { break }
        }
        return (crc, done)
    }
}
