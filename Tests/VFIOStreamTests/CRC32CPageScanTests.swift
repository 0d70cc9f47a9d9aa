// The fused page scan (CRC over the non-zero pages, bitmap of the zero ones) and the zero-page
// finder, on every implementation, against a naive reference: check each page byte by byte,
// CRC the others one after another on the table path.
import Testing
import VFIOBuffers
@testable import VFIOStream

/// What a test page holds.
enum PageKind: CaseIterable {
    case random, zero, lastByteOnly, firstByteOnly, oneRandomByte, secondHalfRandom
}

/// `kinds.count` pages of `pageSize` bytes, each filled as its kind says.
func makePages(_ kinds: [PageKind], pageSize: Int, _ rng: inout SplitMix64) -> [UInt8] {
    var pages = [UInt8](repeating: 0, count: kinds.count * pageSize)
    for (index, kind) in kinds.enumerated() {
        let base = index * pageSize
        let nonzero = { (rng: inout SplitMix64) in UInt8.random(in: 1...255, using: &rng) }
        switch kind {
        case .random:
            pages.replaceSubrange(base..<(base + pageSize), with: randomBytes(pageSize, &rng))
        case .zero: break
        case .lastByteOnly: pages[base + pageSize - 1] = nonzero(&rng)
        case .firstByteOnly: pages[base] = nonzero(&rng)
        case .oneRandomByte: pages[base + Int.random(in: 0..<pageSize, using: &rng)] = nonzero(&rng)
        case .secondHalfRandom:
            let half = base + pageSize / 2
            pages.replaceSubrange(half..<(base + pageSize), with: randomBytes(base + pageSize - half, &rng))
            pages[half] |= 1
        }
    }
    return pages
}

/// The reference: which pages are zero (looked at byte by byte) and the table-path CRC of the rest.
func naivePageScan(_ crc: UInt32, _ pages: [UInt8], pageSize: Int) -> (crc: UInt32, bitmap: [UInt64], zeros: Int) {
    let count = pages.count / pageSize
    var bitmap = [UInt64](repeating: 0, count: (count + 63) / 64)
    var crc = crc
    var zeros = 0
    for page in 0..<count {
        let bytes = pages[(page * pageSize)..<((page + 1) * pageSize)]
        if !bytes.contains(where: { $0 != 0 }) {
            bitmap[page / 64] |= 1 << UInt64(page % 64)
            zeros += 1
        } else {
            crc = bytes.withUnsafeBytes { CRC32C.updateSoftware(crc, $0) }
        }
    }
    return (crc, bitmap, zeros)
}

@Suite("CRC32C page scans")
struct CRC32CPageScanTests {
    static let pageSizes = [4096, 65536]

    /// Random mixes of every kind of page, including runs long enough to fill bitmap words.
    static func randomKinds(_ count: Int, _ rng: inout SplitMix64) -> [PageKind] {
        (0..<count).map { _ in PageKind.allCases.randomElement(using: &rng)! }
    }

    @Test("fused scan and zero finder equal the naive reference", arguments: CRC32C.available, pageSizes)
    func matchesReference(_ implementation: CRC32C.Implementation, pageSize: Int) throws {
        var rng = SplitMix64(state: 0xA9E5 ^ UInt64(pageSize) ^ UInt64(implementation.rawValue) << 32)
        let counts = pageSize == 4096 ? [1, 2, 63, 64, 65, 130] : [1, 3, 17]
        for count in counts {
            var kinds = Self.randomKinds(count, &rng)
            if count >= 3 { kinds[0] = .zero; kinds[1] = .lastByteOnly; kinds[count - 1] = .zero }
            let pages = makePages(kinds, pageSize: pageSize, &rng)
            let seed = UInt32(truncatingIfNeeded: rng.next())
            let expected = naivePageScan(seed, pages, pageSize: pageSize)

            var bitmap = [UInt64](repeating: 0, count: expected.bitmap.count)
            let crc = try pages.withUnsafeBytes {
                try CRC32C.updateNonzeroPages(seed, $0, pageSize: pageSize, zeroBitmap: &bitmap, using: implementation)
            }
            #expect(crc == expected.crc, "\(implementation), \(count) pages of \(pageSize): \(kinds)")
            #expect(bitmap == expected.bitmap, "\(implementation), \(count) pages of \(pageSize): \(kinds)")

            var found = [UInt64](repeating: 0, count: expected.bitmap.count)
            let zeros = try pages.withUnsafeBytes {
                try CRC32C.findZeroPages($0, pageSize: pageSize, zeroBitmap: &found, using: implementation)
            }
            #expect(zeros == expected.zeros && found == expected.bitmap, "\(implementation), \(count) pages of \(pageSize)")
        }
    }

    @Test("each kind of page alone and in every pairing", arguments: CRC32C.available)
    func kindsPairwise(_ implementation: CRC32C.Implementation) throws {
        var rng = SplitMix64(state: 0x9A125)
        for first in PageKind.allCases {
            for second in PageKind.allCases {
                let kinds = [first, second, first]
                let pages = makePages(kinds, pageSize: 4096, &rng)
                let expected = naivePageScan(0, pages, pageSize: 4096)
                var bitmap: [UInt64] = [0]
                let crc = try pages.withUnsafeBytes {
                    try CRC32C.updateNonzeroPages(0, $0, pageSize: 4096, zeroBitmap: &bitmap, using: implementation)
                }
                #expect(crc == expected.crc && bitmap == expected.bitmap, "\(implementation): \(kinds)")
            }
        }
    }

    @Test("a zero run inside a page, at every 256-byte block and across pages", arguments: CRC32C.available)
    func zeroRunsInsidePages(_ implementation: CRC32C.Implementation) throws {
        // A page whose first non-zero byte is in block b: the fused path moves its state over
        // b zero blocks with one fold per set bit of b, so every b of a 64 KiB page is tried.
        var rng = SplitMix64(state: 0x2E60)
        let pageSize = 65536
        let running = randomBytes(pageSize, &rng)  // a page before, so the state is running
        for block in 0..<(pageSize / 256) {
            var pages = running + [UInt8](repeating: 0, count: pageSize)
            pages[pageSize + block * 256 + Int.random(in: 0..<256, using: &rng)] = 0x5A
            let expected = naivePageScan(7, pages, pageSize: pageSize)
            var bitmap: [UInt64] = [0]
            let crc = try pages.withUnsafeBytes {
                try CRC32C.updateNonzeroPages(7, $0, pageSize: pageSize, zeroBitmap: &bitmap, using: implementation)
            }
            #expect(crc == expected.crc && bitmap == [0], "\(implementation): first non-zero block \(block)")
        }
    }

    @Test("page sizes that are not a multiple of 256 take the general path", arguments: CRC32C.available, [1, 64, 100, 4000, 4160])
    func oddPageSizes(_ implementation: CRC32C.Implementation, pageSize: Int) throws {
        var rng = SplitMix64(state: UInt64(pageSize))
        let kinds = Self.randomKinds(70, &rng)
        let pages = makePages(kinds, pageSize: pageSize, &rng)
        let expected = naivePageScan(0xFFFF_FFFF, pages, pageSize: pageSize)
        var bitmap = [UInt64](repeating: 0, count: 2)
        let crc = try pages.withUnsafeBytes {
            try CRC32C.updateNonzeroPages(0xFFFF_FFFF, $0, pageSize: pageSize, zeroBitmap: &bitmap, using: implementation)
        }
        #expect(crc == expected.crc && bitmap == expected.bitmap, "\(implementation), page size \(pageSize)")
        var found = [UInt64](repeating: 0, count: 2)
        let zeros = try pages.withUnsafeBytes { try CRC32C.findZeroPages($0, pageSize: pageSize, zeroBitmap: &found, using: implementation) }
        #expect(zeros == expected.zeros && found == expected.bitmap, "\(implementation), page size \(pageSize)")
    }

    @Test("all-zero pages leave the CRC as it was; no pages change nothing")
    func allZero() throws {
        let pages = [UInt8](repeating: 0, count: 5 * 4096)
        var bitmap: [UInt64] = [0]
        let crc = try pages.withUnsafeBytes { try CRC32C.updateNonzeroPages(0x1234_5678, $0, pageSize: 4096, zeroBitmap: &bitmap) }
        #expect(crc == 0x1234_5678 && bitmap == [0b11111])
        var none: [UInt64] = []
        #expect(try CRC32C.updateNonzeroPages(42, UnsafeRawBufferPointer(start: nil, count: 0), pageSize: 4096, zeroBitmap: &none) == 42)
        #expect(try CRC32C.findZeroPages(UnsafeRawBufferPointer(start: nil, count: 0), pageSize: 4096, zeroBitmap: &none) == 0)
    }

    @Test("bits are only set: bits already in the bitmap stay")
    func bitsOnlySet() throws {
        var rng = SplitMix64(state: 3)
        let pages = makePages([.random, .zero, .random], pageSize: 4096, &rng)
        var bitmap: [UInt64] = [0x8000_0000_0000_0001]
        _ = try pages.withUnsafeBytes { try CRC32C.updateNonzeroPages(0, $0, pageSize: 4096, zeroBitmap: &bitmap) }
        #expect(bitmap == [0x8000_0000_0000_0003])
    }

    @Test("IOBuffer ranges, page aligned and not, equal the raw-pointer scan", arguments: [0, 32, 4096 + 8])
    func ioBufferRanges(_ start: Int) throws {
        var rng = SplitMix64(state: UInt64(start))
        let kinds: [PageKind] = [.random, .zero, .lastByteOnly, .zero, .oneRandomByte, .random, .zero]
        let pages = makePages(kinds, pageSize: 4096, &rng)
        let buffer = IOBuffer(capacity: start + pages.count)
        buffer.write(pages, at: start)
        let range = start..<(start + pages.count)
        let expected = naivePageScan(0, pages, pageSize: 4096)

        var bitmap: [UInt64] = [0]
        #expect(try CRC32C.updateNonzeroPages(0, buffer, range, pageSize: 4096, zeroBitmap: &bitmap) == expected.crc)
        #expect(bitmap == expected.bitmap)
        var found: [UInt64] = [0]
        #expect(try CRC32C.findZeroPages(buffer, range, pageSize: 4096, zeroBitmap: &found) == 3)
        #expect(found == expected.bitmap)
    }

    @Test("misuse is refused before anything is read")
    func misuse() {
        let pages = [UInt8](repeating: 0, count: 3 * 4096)
        pages.withUnsafeBytes { raw in
            var bitmap: [UInt64] = [0]
            #expect(throws: CRC32C.UsageError.invalidPageSize(0)) {
                try CRC32C.updateNonzeroPages(0, raw, pageSize: 0, zeroBitmap: &bitmap)
            }
            #expect(throws: CRC32C.UsageError.partialPage(byteCount: 3 * 4096, pageSize: 5000)) {
                try CRC32C.findZeroPages(raw, pageSize: 5000, zeroBitmap: &bitmap)
            }
            var empty: [UInt64] = []
            #expect(throws: CRC32C.UsageError.bitmapTooSmall(words: 0, pages: 3)) {
                try CRC32C.updateNonzeroPages(0, raw, pageSize: 4096, zeroBitmap: &empty)
            }
            #expect(bitmap == [0])
        }
        let message = CRC32C.UsageError.bitmapTooSmall(words: 1, pages: 65).description
        #expect(message.contains("1 words") && message.contains("65 pages") && message.contains("needs 2"))
    }
}
