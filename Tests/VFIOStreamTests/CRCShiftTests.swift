// The codec's own CRC joining (CRCShift) against CRC32C.combine and against CRCs of the
// joined bytes.
import Testing
@testable import VFIOStream

@Suite("CRC joining")
struct CRCShiftTests {
    @Test("combine equals CRC32C.combine and the CRC of the concatenation, cached or not")
    func combine() {
        var rng = SplitMix64(state: 77)
        let pool = (0..<70_000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        var cache = CRCShiftCache()
        var lengths = [0, 1, 7, 8, 31, 32, 4095, 4096, 4097, 65536, 69_999]
        lengths += (0..<20).map { _ in Int.random(in: 0..<70_000, using: &rng) }
        for length in lengths {
            let cut = Int.random(in: 0...(pool.count - length), using: &rng)
            let a = Array(pool[0..<cut]), b = Array(pool[cut..<(cut + length)])
            let crcA = CRC32C.checksum(a), crcB = CRC32C.checksum(b)
            let joined = CRC32C.checksum(a + b)
            #expect(CRCShift.combine(crcA, crcB, lengthOfB: UInt64(length)) == joined, "length \(length)")
            #expect(CRC32C.combine(crcA, crcB, lengthOfB: UInt64(length)) == joined, "length \(length)")
            // Twice through the cache: the second use of a length takes the cached operator.
            #expect(cache.combine(crcA, crcB, lengthOfB: UInt64(length)) == joined)
            #expect(cache.combine(crcA, crcB, lengthOfB: UInt64(length)) == joined)
        }
        // Lengths no buffer here could hold, against the C implementation.
        for length: UInt64 in [1 << 32, (1 << 40) + 12345, .max] {
            let a = UInt32.random(in: 0...UInt32.max, using: &rng), b = UInt32.random(in: 0...UInt32.max, using: &rng)
            #expect(CRCShift.combine(a, b, lengthOfB: length) == CRC32C.combine(a, b, lengthOfB: length), "length \(length)")
        }
    }

    @Test("a record CRC derived from its payload CRC equals the CRC over header and payload")
    func recordCRC() {
        let payload = Samples.page(3)
        let record = RecordHeader(type: .deviceState, device: 0, phase: 2, payloadLength: 4096, sequence: 9, offset: 77)
        // SAFETY: the array outlives the call.
        let direct = payload.withUnsafeBytes { record.computeChecksum(payload: $0) }
        #expect(CRCShift.combine(record.headerChecksum(), CRC32C.checksum(payload), lengthOfB: 4096) == direct)
    }
}
