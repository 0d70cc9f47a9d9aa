// One record's worth of state in an IOBuffer, laid out as the engine lays it out (32 bytes of
// header space, then the payload), and each operation the codec benchmarks compare: framing
// (header + CRC32C, what StreamFileWriter does per chunk), CRC32C alone, a memcpy of the same
// bytes, and decoding (what StreamFileReader does per record).
import VFIOBuffers
import VFIOStream

/// A one-device stream header for benchmarks.
public enum BenchHeader {
    public static func make(flags: MigrationFlags, maxPayload: Int, expectedStateSize: UInt64? = nil) -> StreamHeader {
        StreamHeader(
            creationTimeNanoseconds: 0, maxPayload: UInt32(maxPayload), writer: "vfio-bench",
            devices: [
                DeviceDescriptor(
                    name: "bench0", deviceAPI: "vfio-pci", driverName: "mock-vfio-pci", driverVersion: "1.0",
                    migrationFlags: flags, expectedStateSize: expectedStateSize, vendorCompatibility: "mock-1")
            ])
    }
}

/// Fills `buffer[range]` with reproducible pseudo-random bytes (splitmix64), so CRC and copy
/// work on data that does not compress or repeat.
public func fillPseudoRandom(_ buffer: IOBuffer, _ range: Range<Int>, seed: UInt64) {
    var state = seed
    var bytes = [UInt8]()
    bytes.reserveCapacity(range.count)
    while bytes.count < range.count {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        for shift in stride(from: 0, to: 64, by: 8) where bytes.count < range.count {
            bytes.append(UInt8(truncatingIfNeeded: z >> UInt64(shift)))
        }
    }
    buffer.write(bytes, at: range.lowerBound)
}

public final class CodecFixture {
    public let payloadLength: Int
    /// The record: header space at 0..<32, payload at 32..<32+payloadLength.
    public let buffer: IOBuffer
    /// The same payload bytes elsewhere: the source of the memcpy baseline.
    public let source: IOBuffer
    public var payload: Range<Int> { StreamFormat.recordHeaderSize..<(StreamFormat.recordHeaderSize + payloadLength) }

    private let header: StreamHeader
    private var encoder: StreamEncoder

    // Decoding needs records with consecutive sequence numbers and offsets. Their 32-byte
    // headers are sealed once (over the same payload) and copied in front of the payload one
    // by one; after the last one the decoder starts a new stream (outside any measurement).
    private let sealedHeaders: [UInt8]
    public let decodeRecordCount: Int
    private var decoder: StreamDecoder
    private var nextRecord = 0

    /// `decodeRecords` headers are sealed up front (each costs one CRC of the payload).
    public init(payloadLength: Int, decodeRecords: Int? = nil) {
        precondition(payloadLength >= 1 && payloadLength <= StreamFormat.hardMaxPayload, "payload length out of range")
        self.payloadLength = payloadLength
        let capacity = StreamFormat.recordHeaderSize + payloadLength
        buffer = IOBuffer(capacity: capacity)
        source = IOBuffer(capacity: capacity)
        header = BenchHeader.make(flags: [.stopCopy], maxPayload: max(payloadLength, StreamFormat.minimumMaxPayload))
        // The fixture's own header and records are valid: a throw here is a bug in the fixture.
        encoder = try! StreamEncoder(header: header)
        let range = StreamFormat.recordHeaderSize..<capacity
        fillPseudoRandom(buffer, range, seed: UInt64(payloadLength))
        fillPseudoRandom(source, range, seed: UInt64(payloadLength))

        decodeRecordCount = decodeRecords ?? max(64, (256 << 20) / payloadLength)
        var sealer = try! StreamEncoder(header: header)
        var sealed = [UInt8]()
        sealed.reserveCapacity(decodeRecordCount * StreamFormat.recordHeaderSize)
        for _ in 0..<decodeRecordCount {
            _ = try! sealer.frameDeviceState(device: 0, phase: .stopCopy, payloadLength: payloadLength, in: buffer, at: 0)
            sealed.append(contentsOf: buffer.bytes(0..<StreamFormat.recordHeaderSize))
        }
        sealedHeaders = sealed
        decoder = Self.freshDecoder(header)
    }

    private static func freshDecoder(_ header: StreamHeader) -> StreamDecoder {
        var decoder = StreamDecoder(limits: .default)
        do {
            let bytes = try header.encoded()
            _ = try decoder.decodeHeaderPrefix(Array(bytes[0..<StreamFormat.headerPrefixSize]))
            _ = try decoder.decodeHeader(bytes)
        } catch {
            preconditionFailure("the benchmark's own header does not decode: \(error)")
        }
        return decoder
    }

    // MARK: The operations (no allocation in any of them)

    /// Frames the payload in place as the next device state record: what the save path does
    /// per chunk. Returns the CRC so the work cannot be optimised away.
    @inline(never)
    public func frame() -> UInt32 {
        try! encoder.frameDeviceState(device: 0, phase: .stopCopy, payloadLength: payloadLength, in: buffer, at: 0).checksum
    }

    /// CRC32C of the payload alone.
    @inline(never)
    public func crc() -> UInt32 {
        // SAFETY: the closure only reads the payload range IOBuffer checked, and keeps no pointer.
        buffer.withUnsafeBytes(in: payload) { CRC32C.update(0, $0) }
    }

    /// memcpy of the payload from `source` into the record buffer: the cheapest possible move
    /// of these bytes, and what any read(2) does at least once.
    @inline(never)
    public func copy() {
        let range = payload
        // SAFETY: both ranges were checked by IOBuffer and are equally long; the buffers are
        // distinct allocations, so they do not overlap; no pointer leaves the closures.
        source.withUnsafeBytes(in: range) { from in
            buffer.withUnsafeMutableBytes(in: range) { to in to.copyMemory(from: from) }
        }
    }

    /// Records left before the decoder must start a new stream.
    public var decodeRecordsLeft: Int { decodeRecordCount - nextRecord }

    /// Starts a new decoded stream when fewer than `count` sealed records are left. Allocates:
    /// call it outside the measured region.
    public func prepareDecode(_ count: Int) {
        precondition(count <= decodeRecordCount, "asked for more records than were sealed")
        if decodeRecordsLeft < count {
            decoder = Self.freshDecoder(header)
            nextRecord = 0
        }
    }

    /// Decodes the next record (header checks, CRC32C, order checks): what the load path does
    /// per record once the bytes are in its buffer. Returns the payload length decoded.
    @inline(never)
    public func decode() -> Int {
        precondition(nextRecord < decodeRecordCount, "prepareDecode was not called")
        let start = nextRecord * StreamFormat.recordHeaderSize
        buffer.write(sealedHeaders[start..<(start + StreamFormat.recordHeaderSize)], at: 0)
        nextRecord += 1
        do {
            let record = try decoder.decodeRecordHeader(from: buffer, at: 0)
            let end = StreamFormat.recordHeaderSize + Int(record.payloadLength)
            guard case .deviceState(let chunk) = try decoder.decodePayload(in: buffer, range: StreamFormat.recordHeaderSize..<end) else {
                preconditionFailure("the sealed record did not decode as device state")
            }
            return chunk.length
        } catch {
            preconditionFailure("a sealed record failed to decode: \(error)")
        }
    }
}
