// Section 1: the codec per chunk. Framing (header + CRC32C in place, what the stream writer
// does per chunk), CRC32C alone and decoding, against the two cheapest ways the same bytes
// can arrive: a bare read(2) from the page cache and a memcpy.
import BenchSupport

enum CodecOp: String, CaseIterable {
    case bareRead = "bare read (pread, page cache)"
    case memcpy = "memcpy"
    case crc = "CRC32C"
    case frame = "frame (header + CRC32C)"
    case decode = "decode (header + CRC32C + checks)"
}

struct CodecResult {
    var label: String
    var chunkSize: Int
    /// Median seconds per chunk.
    var median: [CodecOp: Double]
    /// Median over repetitions of frame time / bare read time measured in that repetition.
    var frameOverRead: Double
}

/// Every checksum is folded in here, so none of the measured work is unused.
nonisolated(unsafe) var consumed: UInt32 = 0

func measureCodec(label: String, chunkSize: Int, repetitions: Int) -> CodecResult {
    let fixture = CodecFixture(payloadLength: chunkSize)
    let file = PageCacheFile(copying: fixture.source, fixture.payload)
    let batch = max(16, (64 << 20) / chunkSize) // about 64 MiB of work per timed batch
    let start = fixture.payload.lowerBound
    var samples: [CodecOp: [Double]] = [:]
    var frameOverRead: [Double] = []
    var checksum: UInt32 = 0

    // One untimed batch of each first: caches, page tables and branch predictors warm up.
    for _ in 0..<batch {
        file.read(into: fixture.buffer, at: start)
        fixture.copy()
        checksum ^= fixture.crc() ^ fixture.frame()
    }
    for repetition in 0..<repetitions {
        var this: [CodecOp: Double] = [:]
        for op in order(CodecOp.allCases, repetition: repetition) {
            switch op {
            case .bareRead: this[op] = timePerRun(batch) { file.read(into: fixture.buffer, at: start) }
            case .memcpy: this[op] = timePerRun(batch) { fixture.copy() }
            case .crc: this[op] = timePerRun(batch) { checksum ^= fixture.crc() }
            case .frame: this[op] = timePerRun(batch) { checksum ^= fixture.frame() }
            case .decode:
                fixture.prepareDecode(batch) // may start a new stream: allocates, so untimed
                this[op] = timePerRun(batch) { checksum ^= UInt32(truncatingIfNeeded: fixture.decode()) }
            }
        }
        for (op, value) in this { samples[op, default: []].append(value) }
        frameOverRead.append(this[.frame]! / this[.bareRead]!)
    }
    consumed ^= checksum

    let result = CodecResult(
        label: label, chunkSize: chunkSize, median: samples.mapValues(median), frameOverRead: median(frameOverRead))
    print("Codec, \(label) chunks (\(batch) chunks per timed batch, \(repetitions) repetitions)")
    print("  operation                             median µs   best µs    GB/s  × bare read  × memcpy")
    for op in CodecOp.allCases {
        let t = result.median[op]!
        let best = samples[op]!.min()!
        print(
            "  \(op.rawValue.rightPad(36))\(format(t * 1e6, 1).leftPad(11))\(format(best * 1e6, 1).leftPad(10))"
                + "\(format(Double(chunkSize) / t / 1e9, 1).leftPad(8))"
                + "\(format(t / result.median[.bareRead]!).leftPad(13))\(format(t / result.median[.memcpy]!).leftPad(10))")
    }
    print("  framing + CRC32C / bare read: \(format(result.frameOverRead)) (median of the per-repetition ratios)")
    print("")
    return result
}
