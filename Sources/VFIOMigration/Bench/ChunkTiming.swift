// Per-chunk work measured on one chunk buffer laid out as the data path lays it out (32 bytes
// of record header space, then the payload): framing it in place (header + CRC32C), reading
// the same bytes from a file the page cache holds into the same place (pread), and copying
// them there from another buffer (memcpy). Each is timed over many chunks in a row; the
// caller interleaves them.
import Foundation
import VFIOBuffers
import VFIOCore
import VFIOStream
import VFIOSyscalls

public final class ChunkTiming {
    public let chunkSize: Int
    private let buffer: IOBuffer
    private let other: IOBuffer
    private let file: StreamFD
    private let path: String
    private let header: StreamHeader
    private var encoder: StreamEncoder
    private var framed = 0

    /// A scratch file of one chunk in `directory` (removed on deinit), written once so every
    /// read after that is served from the page cache.
    public init(chunkSize: Int, directory: String) throws(VFIOError) {
        precondition(chunkSize >= 4096 && chunkSize <= StreamFormat.hardMaxPayload, "a chunk is 4 KiB to 64 MiB")
        self.chunkSize = chunkSize
        buffer = IOBuffer(capacity: StreamFormat.recordHeaderSize + chunkSize)
        other = IOBuffer(capacity: StreamFormat.recordHeaderSize + chunkSize)
        BenchBytes.fill(other, 0..<other.capacity, seed: UInt64(chunkSize))
        BenchBytes.fill(buffer, 0..<buffer.capacity, seed: UInt64(chunkSize))
        path = directory + "/vfio-bench-chunk-\(ProcessInfo.processInfo.processIdentifier)-\(chunkSize)"
        do {
            let writer = try StreamFD.create(path)
            try writer.writeAll(other, StreamFormat.recordHeaderSize..<other.capacity)
            file = try StreamFD.openForReading(path)
        } catch {
            throw ConnectionChannel.failure(error, "cannot make the page-cache file", path)
        }
        header = BenchHeaders.oneDevice(maxPayload: chunkSize)
        encoder = try BenchHeaders.encoder(header)
        _ = try read(count: 4) // into the page cache, and the pages of the buffer touched
    }

    deinit { unlink(path) }

    private var payload: Range<Int> { StreamFormat.recordHeaderSize..<StreamFormat.recordHeaderSize + chunkSize }

    /// `count` chunks framed in place, one after another: seconds per chunk.
    public func frame(count: Int) throws(VFIOError) -> Double {
        if framed > 1 << 20 {
            encoder = try BenchHeaders.encoder(header)
            framed = 0
        }
        let clock = ContinuousClock()
        let start = clock.now
        for _ in 0..<count {
            do {
                _ = try encoder.frameDeviceState(device: 0, phase: .stopCopy, payloadLength: chunkSize, in: buffer, at: 0)
            } catch {
                throw VFIOError(.invalidArgument, "framing a benchmark chunk: \(error)")
            }
        }
        framed += count
        return (clock.now - start).seconds / Double(count)
    }

    /// `count` preads of the chunk from the page cache into the payload's place: seconds per chunk.
    public func read(count: Int) throws(VFIOError) -> Double {
        let clock = ContinuousClock()
        let start = clock.now
        for _ in 0..<count {
            let n: Int
            do { n = try file.read(into: buffer, payload, atOffset: 0) } catch { throw ConnectionChannel.failure(error, "page-cache read failed", path) }
            guard n == chunkSize else { throw VFIOError(.ioFailure, "short page-cache read: \(n) of \(chunkSize) bytes", device: path) }
        }
        return (clock.now - start).seconds / Double(count)
    }

    /// `count` memcpys of the chunk into the payload's place: seconds per chunk.
    public func copy(count: Int) -> Double {
        let clock = ContinuousClock()
        let start = clock.now
        for _ in 0..<count { BenchIO.copy(other, payload, to: buffer, at: payload.lowerBound) }
        return (clock.now - start).seconds / Double(count)
    }
}

/// Guest-memory pages sent as pages records: per batch of pages, the fused scan (CRC32C of the
/// pages that are not zero, a bitmap of the zero ones) and the record's header and run table;
/// against a memcpy of the same pages, what a sender that checksums nothing does at least.
public final class PageStreamTiming {
    public let regionBytes: Int
    public let batchPages: Int
    public let pageSize = 4096
    private let region: IOBuffer
    private let copyTarget: IOBuffer
    private let control: IOBuffer
    private let header: StreamHeader
    private var encoder: StreamEncoder
    private var bitmap: [UInt64]
    private let memory: GuestMemory
    private let memoryHeader: StreamHeader
    /// Share of the region's pages that are zero (every `zeroEvery`th page).
    public let zeroEvery = 4

    public init(regionBytes: Int = 64 << 20, batchPages: Int = 256) throws(VFIOError) {
        precondition(regionBytes % (batchPages * 4096) == 0, "the region is whole batches")
        self.regionBytes = regionBytes
        self.batchPages = batchPages
        region = IOBuffer(capacity: regionBytes)
        BenchBytes.fill(region, 0..<regionBytes, seed: 12)
        let zero = [UInt8](repeating: 0, count: pageSize)
        for page in stride(from: 0, to: regionBytes / pageSize, by: zeroEvery) { region.write(zero, at: page * pageSize) }
        copyTarget = IOBuffer(capacity: batchPages * pageSize)
        let batchBytes = batchPages * pageSize
        header = StreamHeader(
            creationTimeNanoseconds: 0, maxPayload: UInt32(2 * batchBytes), writer: "vfio-migrate bench",
            devices: [BenchHeaders.descriptor],
            regions: [MemoryRegionDescriptor(start: 0, length: UInt64(regionBytes), pageSize: UInt32(pageSize))])
        encoder = try BenchHeaders.encoder(header)
        memoryHeader = StreamHeader(
            creationTimeNanoseconds: 0, maxPayload: 1 << 20, writer: "vfio-migrate bench", devices: [],
            regions: [MemoryRegionDescriptor(start: 0, length: UInt64(regionBytes), pageSize: UInt32(pageSize))])
        memory = try GuestMemory([GuestMemoryRegion(iova: 0, length: UInt64(regionBytes), buffer: region, writable: false, name: "bench")])
        control = IOBuffer(capacity: StreamFormat.recordHeaderSize + 8 + 16 * batchPages)
        bitmap = Array(repeating: 0, count: (batchPages + 63) / 64)
    }

    /// The whole region scanned and framed batch by batch: seconds.
    public func scanAndFrame() throws(VFIOError) -> Double {
        encoder = try BenchHeaders.encoder(header)
        let clock = ContinuousClock()
        let start = clock.now
        let batchBytes = batchPages * pageSize
        for batch in 0..<regionBytes / batchBytes {
            let range = batch * batchBytes..<(batch + 1) * batchBytes
            let crc: UInt32
            do {
                crc = try CRC32C.updateNonzeroPages(0, region, range, pageSize: pageSize, zeroBitmap: &bitmap)
            } catch {
                throw VFIOError(.invalidArgument, "page scan: \(error)")
            }
            let runs = Self.runs(bitmap, pages: batchPages, firstPage: UInt64(batch * batchPages))
            do {
                try encoder.framePages(region: 0, phase: .preCopy, round: 0, runs: runs, dataCRC: crc, into: control, at: 0)
            } catch {
                throw VFIOError(.invalidArgument, "framing a pages record: \(error)")
            }
        }
        return (clock.now - start).seconds
    }

    /// The engine's pages records of the whole region (StreamOutput.writePages, as a memory
    /// save writes them) into /dev/null: in place as in stop-copy, or through the live-page
    /// copy as in pre-copy. Seconds.
    public func engine(liveCopy: Bool) throws(VFIOError) -> Double {
        let output = try StreamOutput(header: memoryHeader, to: try FileChannel.creating("/dev/null"))
        output.copiesLivePages = liveCopy
        let runs = [DirtyRun(firstPage: 0, pageCount: regionBytes / pageSize)]
        let clock = ContinuousClock()
        let start = clock.now
        try output.writePages(region: 0, runs: runs, phase: liveCopy ? .preCopy : .stopCopy, round: 1, of: memory)
        return (clock.now - start).seconds
    }

    /// The whole region copied batch by batch into one send buffer: seconds.
    public func copy() -> Double {
        let clock = ContinuousClock()
        let start = clock.now
        let batchBytes = batchPages * pageSize
        for batch in 0..<regionBytes / batchBytes {
            BenchIO.copy(region, batch * batchBytes..<(batch + 1) * batchBytes, to: copyTarget, at: 0)
        }
        return (clock.now - start).seconds
    }

    /// Runs of zero and data pages from a zero-page bitmap (bit set: the page is zero).
    static func runs(_ bitmap: [UInt64], pages: Int, firstPage: UInt64) -> [PageRun] {
        var runs: [PageRun] = []
        var page = 0
        while page < pages {
            let zero = bitmap[page >> 6] >> UInt64(page & 63) & 1 == 1
            var end = page + 1
            while end < pages && (bitmap[end >> 6] >> UInt64(end & 63) & 1 == 1) == zero { end += 1 }
            runs.append(PageRun(firstPage: firstPage + UInt64(page), pageCount: UInt32(end - page), isZero: zero))
            page = end
        }
        return runs
    }
}

/// The stream headers of the codec measurements.
enum BenchHeaders {
    static let descriptor = DeviceDescriptor(
        name: "bench0", deviceAPI: "vfio-pci", driverName: "vfio-migrate-bench", driverVersion: "1",
        migrationFlags: [.stopCopy], vendorCompatibility: "bench")

    static func oneDevice(maxPayload: Int) -> StreamHeader {
        StreamHeader(creationTimeNanoseconds: 0, maxPayload: UInt32(maxPayload), writer: "vfio-migrate bench", devices: [descriptor])
    }

    static func encoder(_ header: StreamHeader) throws(VFIOError) -> StreamEncoder {
        do { return try StreamEncoder(header: header) } catch { throw VFIOError(.invalidArgument, "benchmark stream header: \(error)") }
    }
}

/// Reproducible bytes that neither compress nor repeat (splitmix64).
public enum BenchBytes {
    public static func fill(_ buffer: IOBuffer, _ range: Range<Int>, seed: UInt64) {
        var state = seed
        var bytes = [UInt8]()
        let step = 1 << 20
        bytes.reserveCapacity(min(range.count, step))
        var at = range.lowerBound
        while at < range.upperBound {
            bytes.removeAll(keepingCapacity: true)
            let n = min(step, range.upperBound - at)
            while bytes.count < n {
                state &+= 0x9E37_79B9_7F4A_7C15
                var z = state
                z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
                z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
                z ^= z >> 31
                for shift in stride(from: 0, to: 64, by: 8) where bytes.count < n { bytes.append(UInt8(truncatingIfNeeded: z >> UInt64(shift))) }
            }
            buffer.write(bytes, at: at)
            at += n
        }
    }
}
