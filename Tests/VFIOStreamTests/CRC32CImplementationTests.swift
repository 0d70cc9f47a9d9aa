// Every CRC32C implementation this machine runs, against the table path (itself checked by
// published vectors and by a bit-at-a-time reference here), on random data, lengths and
// start offsets: the folding paths have heads, tails, lane merges and crc32 streams whose
// joins are where a wrong constant or an off-by-one would show.
import Testing
@testable import VFIOStream

/// `count` reproducible random bytes.
func randomBytes(_ count: Int, _ rng: inout SplitMix64) -> [UInt8] {
    let words = (0..<((count + 7) / 8)).map { _ in rng.next().littleEndian }
    return words.withUnsafeBytes { Array($0.prefix(count)) }
}

/// CRC32C one bit at a time, straight from the definition: the reference for the table path.
func bitwiseCRC32C(_ crc: UInt32, _ bytes: some Sequence<UInt8>) -> UInt32 {
    var register = ~crc
    for byte in bytes {
        register ^= UInt32(byte)
        for _ in 0..<8 { register = register & 1 == 1 ? (register >> 1) ^ 0x82F6_3B78 : register >> 1 }
    }
    return ~register
}

@Suite("CRC32C implementations")
struct CRC32CImplementationTests {
    /// The paths to compare with the table: every available one but the table itself.
    static let fast = CRC32C.available.filter { $0 != .table }

    @Test("the table path equals the bit-at-a-time definition")
    func tableMatchesDefinition() {
        var rng = SplitMix64(state: 0x7AB1E)
        for length in [0, 1, 3, 8, 100, 1000, 4097] {
            let bytes = randomBytes(length, &rng)
            let seed = UInt32(truncatingIfNeeded: rng.next())
            let table = bytes.withUnsafeBytes { CRC32C.updateSoftware(seed, $0) }
            #expect(table == bitwiseCRC32C(seed, bytes), "length \(length)")
        }
    }

    @Test("dispatch: the table is always there, the fastest available path is active")
    func dispatch() {
        #expect(CRC32C.available.first == .table)
        #expect(CRC32C.available == CRC32C.available.sorted { $0.rawValue < $1.rawValue })
        #expect(CRC32C.active == CRC32C.available.last)
        #if arch(x86_64)
        // Every x86-64 machine this project runs on has SSE4.2 and PCLMULQDQ.
        #expect(CRC32C.available.contains(.sse42) && CRC32C.available.contains(.pclmul))
        #else
        #expect(CRC32C.available == [.table])
        #endif
    }

    @Test("an unavailable implementation is refused, not silently replaced")
    func unavailableRefused() throws {
        let bytes: [UInt8] = [1, 2, 3]
        for implementation in CRC32C.Implementation.allCases where !CRC32C.available.contains(implementation) {
            #expect(throws: CRC32C.UsageError.unavailable(implementation)) {
                try bytes.withUnsafeBytes { try CRC32C.update(0, $0, using: implementation) }
            }
        }
        for implementation in CRC32C.available {
            #expect(try bytes.withUnsafeBytes { try CRC32C.update(0, $0, using: implementation) } == CRC32C.checksum(bytes))
        }
    }

    @Test("check value of \"123456789\" on every implementation", arguments: CRC32C.available)
    func checkValue(_ implementation: CRC32C.Implementation) throws {
        let bytes = Array("123456789".utf8)
        #expect(try bytes.withUnsafeBytes { try CRC32C.update(0, $0, using: implementation) } == 0xE306_9283)
    }

    @Test("equals the table path for random lengths and start offsets", arguments: fast)
    func matchesTable(_ implementation: CRC32C.Implementation) throws {
        var rng = SplitMix64(state: 0xC0FFEE ^ UInt64(implementation.rawValue))
        let maxLength = 70_000
        let pool = randomBytes(maxLength + 64, &rng)
        // The required edges, every path's block and threshold edges, then random lengths.
        var lengths = [0, 1, 7, 8, 15, 16, 63, 64, 255, 256, 4095, 4096, 4097, 65536]
        lengths += [127, 128, 129, 319, 320, 321, 511, 512, 513, 2047, 2048, 16383, 16384, 16385, 16384 + 63, 69_999, 70_000]
        lengths += (0..<150).map { _ in Int.random(in: 0...maxLength, using: &rng) }
        try pool.withUnsafeBytes { raw in
            for length in lengths {
                let offset = Int.random(in: 0...63, using: &rng)
                let slice = UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + length)])
                let seed = UInt32(truncatingIfNeeded: rng.next())
                let expected = CRC32C.updateSoftware(seed, slice)
                let got = try CRC32C.update(seed, slice, using: implementation)
                #expect(got == expected, "\(implementation): length \(length), offset \(offset), seed \(seed)")
            }
        }
    }

    @Test("every start offset 0...63 at the lengths around the AVX-512 and stream thresholds", arguments: fast)
    func everyOffset(_ implementation: CRC32C.Implementation) throws {
        var rng = SplitMix64(state: 0x0FF5E7)
        let pool = randomBytes(20_000, &rng)
        try pool.withUnsafeBytes { raw in
            for length in [256, 300, 319, 320, 383, 384, 1000, 16_384, 16_447, 19_000] {
                for offset in 0...63 {
                    let slice = UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + length)])
                    let got = try CRC32C.update(0, slice, using: implementation)
                    #expect(got == CRC32C.updateSoftware(0, slice), "\(implementation): length \(length), offset \(offset)")
                }
            }
        }
    }

    @Test("long inputs on both sides of the AVX-512 path's 16 MiB stream limit", arguments: fast)
    func longInputs(_ implementation: CRC32C.Implementation) throws {
        var rng = SplitMix64(state: 0x16_0000)
        let pool = randomBytes((16 << 20) + 80, &rng)
        try pool.withUnsafeBytes { raw in
            for (offset, length) in [(0, (16 << 20) - 1), (5, 16 << 20), (17, (16 << 20) + 63)] {
                let slice = UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + length)])
                let got = try CRC32C.update(0, slice, using: implementation)
                #expect(got == CRC32C.updateSoftware(0, slice), "\(implementation): length \(length), offset \(offset)")
            }
        }
    }

    @Test("running updates split at random points equal one pass", arguments: CRC32C.available)
    func runningUpdates(_ implementation: CRC32C.Implementation) throws {
        var rng = SplitMix64(state: 0x5B117 ^ UInt64(implementation.rawValue))
        let bytes = randomBytes(200_000, &rng)
        let whole = bytes.withUnsafeBytes { CRC32C.updateSoftware(0, $0) }
        for _ in 0..<8 {
            var cuts = (0..<Int.random(in: 1...12, using: &rng)).map { _ in Int.random(in: 0...bytes.count, using: &rng) }
            cuts = ([0] + cuts + [bytes.count]).sorted()
            var crc: UInt32 = 0
            try bytes.withUnsafeBytes { raw in
                for (start, end) in zip(cuts, cuts.dropFirst()) {
                    crc = try CRC32C.update(crc, UnsafeRawBufferPointer(rebasing: raw[start..<end]), using: implementation)
                }
            }
            #expect(crc == whole, "\(implementation): cuts \(cuts)")
        }
    }

    @Test("combine joins the CRCs of random pieces")
    func combineRandom() {
        var rng = SplitMix64(state: 0xC0B1E)
        for _ in 0..<40 {
            let a = randomBytes(Int.random(in: 0...5000, using: &rng), &rng)
            let b = randomBytes(Int.random(in: 0...70_000, using: &rng), &rng)
            let joined = CRC32C.combine(CRC32C.checksum(a), CRC32C.checksum(b), lengthOfB: UInt64(b.count))
            #expect(joined == CRC32C.checksum(a + b), "|A| \(a.count), |B| \(b.count)")
        }
    }
}
