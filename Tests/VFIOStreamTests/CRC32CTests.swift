import Testing
@testable import VFIOStream

@Suite("CRC32C")
struct CRC32CTests {
    @Test("check value and published iSCSI vectors")
    func knownVectors() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        // RFC 3720 appendix B.4 test vectors.
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum((0..<32).map { UInt8($0) }) == 0x46DD_794E)
        #expect(CRC32C.checksum((0..<32).map { UInt8(31 - $0) }) == 0x113F_DB5C)
        #expect(CRC32C.checksum([UInt8]()) == 0)
    }

    @Test("software path gives the check value")
    func softwareCheckValue() {
        let bytes = Array("123456789".utf8)
        #expect(bytes.withUnsafeBytes { CRC32C.updateSoftware(0, $0) } == 0xE306_9283)
    }

    @Test("hardware equals software for many lengths and alignments")
    func hardwareMatchesSoftware() throws {
        try #require(CRC32C.isHardwareAccelerated, "this x86-64 machine should have SSE4.2")
        var generator = SystemRandomNumberGenerator()
        // Long enough for the three-way 8 KiB blocks (3 x 8192) plus tails.
        let pool = (0..<(3 * 8192 * 2 + 4096)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        var lengths = Array(0...300) + [767, 768, 769, 1024, 4095, 4096, 24575, 24576, 24577, 49152, 53247]
        lengths += (0..<40).map { _ in Int.random(in: 0...(pool.count - 16), using: &generator) }
        pool.withUnsafeBytes { raw in
            for length in lengths {
                for alignment in 0..<9 where alignment + length <= raw.count {
                    let slice = UnsafeRawBufferPointer(rebasing: raw[alignment..<(alignment + length)])
                    let seed = UInt32.random(in: 0...UInt32.max, using: &generator)
                    let software = CRC32C.updateSoftware(seed, slice)
                    let hardware = CRC32C.updateHardware(seed, slice)
                    #expect(software == hardware, "length \(length), alignment \(alignment)")
                }
            }
        }
    }

    @Test("continuing over pieces equals one pass; combine joins two CRCs")
    func piecesAndCombine() {
        let bytes = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let whole = CRC32C.checksum(bytes)
        for cut in [0, 1, 7, 8, 255, 4096, 9_999, 10_000] {
            let first = CRC32C.checksum(bytes[0..<cut])
            let second = CRC32C.checksum(bytes[cut...])
            let continued = bytes[cut...].withUnsafeBytes { CRC32C.update(first, $0) }
            #expect(continued == whole, "cut at \(cut)")
            #expect(CRC32C.combine(first, second, lengthOfB: UInt64(bytes.count - cut)) == whole, "cut at \(cut)")
        }
    }

    @Test("a single flipped bit changes the CRC")
    func detectsFlips() {
        let bytes = (0..<256).map { UInt8($0) }
        let reference = CRC32C.checksum(bytes)
        for bit in 0..<(bytes.count * 8) {
            var copy = bytes
            copy[bit / 8] ^= 1 << (bit % 8)
            #expect(CRC32C.checksum(copy) != reference)
        }
    }
}
