// Swift face of the C CRC32C: the checksum every stream record and the header carry, and the
// zero-page scans of page streaming.
import CCRC32C
import VFIOBuffers

/// CRC32C (Castagnoli). Values are the finished CRC; a running CRC starts at 0.
public enum CRC32C {
    /// The ways to compute it, slowest first. The fastest one this CPU and OS support is
    /// chosen once, on first use, and used by every function without `using:`.
    public enum Implementation: Int32, CaseIterable, Sendable, CustomStringConvertible {
        /// Slicing-by-8 tables: any CPU.
        case table = 0
        /// The SSE4.2 crc32 instruction, three interleaved streams.
        case sse42 = 1
        /// Carry-less multiply (PCLMULQDQ) folding of 128-bit lanes, with crc32 streams beside it.
        case pclmul = 2
        /// AVX-512 VPCLMULQDQ folding of 512-bit registers, with crc32 streams beside it.
        case vpclmul = 3

        public var description: String {
            switch self {
            case .table: "table"
            case .sse42: "sse42"
            case .pclmul: "pclmul"
            case .vpclmul: "vpclmul"
            }
        }
    }

    /// What a caller asked for that cannot be done; nothing was read or written.
    public enum UsageError: Error, Sendable, Equatable, CustomStringConvertible {
        /// The implementation does not run on this CPU and OS (see `available`).
        case unavailable(Implementation)
        /// A page size must be positive.
        case invalidPageSize(Int)
        /// The pages' byte count is not a whole number of pages.
        case partialPage(byteCount: Int, pageSize: Int)
        /// The zero-page bitmap has fewer words than one bit per page needs.
        case bitmapTooSmall(words: Int, pages: Int)

        public var description: String {
            switch self {
            case .unavailable(let implementation):
                "CRC32C implementation \(implementation) is not available on this CPU (available: \(CRC32C.available))"
            case .invalidPageSize(let size): "CRC32C page scan: page size \(size) is not positive"
            case .partialPage(let count, let size):
                "CRC32C page scan: \(count) bytes are not a whole number of \(size)-byte pages"
            case .bitmapTooSmall(let words, let pages):
                "CRC32C page scan: a zero-page bitmap of \(words) words is too small for \(pages) pages (needs \((pages + 63) / 64))"
            }
        }
    }

    /// The implementations this CPU and OS can run, slowest first; `.table` is always there.
    public static let available: [Implementation] = Implementation.allCases.filter { ccrc32c_available($0.rawValue) != 0 }

    /// The implementation in use.
    public static let active: Implementation = Implementation(rawValue: ccrc32c_active())!

    /// True when a hardware path (SSE4.2 or better) is in use.
    public static var isHardwareAccelerated: Bool { active != .table }

    /// Continues `crc` over `bytes` on the fastest available path.
    public static func update(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = bytes.baseAddress else { return crc }
        return ccrc32c_update(crc, base, bytes.count)
    }

    /// Continues `crc` over `bytes` on the given path (tests and measurement). Inputs shorter
    /// than a path's block (a few hundred bytes for the folding paths) run the next simpler
    /// path's code.
    public static func update(
        _ crc: UInt32, _ bytes: UnsafeRawBufferPointer, using implementation: Implementation
    ) throws(UsageError) -> UInt32 {
        try require(implementation)
        guard let base = bytes.baseAddress else { return crc }
        return ccrc32c_update_using(implementation.rawValue, crc, base, bytes.count)
    }

    /// CRC of a whole byte sequence.
    public static func checksum(_ bytes: some Sequence<UInt8>) -> UInt32 {
        // SAFETY: the pointer is used only inside the closure, for exactly `count` bytes.
        if let crc = bytes.withContiguousStorageIfAvailable({ update(0, UnsafeRawBufferPointer($0)) }) {
            return crc
        }
        let copy = Array(bytes)
        // SAFETY: as above, over the copied array.
        return copy.withUnsafeBytes { update(0, $0) }
    }

    /// The portable table path, regardless of CPU (tests and measurement).
    public static func updateSoftware(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = bytes.baseAddress else { return crc }
        return ccrc32c_update_software(crc, base, bytes.count)
    }

    /// The SSE4.2 path; a programmer error when the CPU lacks SSE4.2.
    public static func updateHardware(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        precondition(available.contains(.sse42), "CRC32C hardware path requested on a CPU without SSE4.2")
        guard let base = bytes.baseAddress else { return crc }
        return ccrc32c_update_hardware(crc, base, bytes.count)
    }

    /// crc(A || B) from crc(A), crc(B) and the length of B.
    public static func combine(_ crcA: UInt32, _ crcB: UInt32, lengthOfB: UInt64) -> UInt32 {
        ccrc32c_combine(crcA, crcB, lengthOfB)
    }

    private static func require(_ implementation: Implementation) throws(UsageError) {
        guard available.contains(implementation) else { throw .unavailable(implementation) }
    }
}

extension CRC32C {
    /// Continues `crc` over `buffer[range]` (no copy).
    public static func update(_ crc: UInt32, _ buffer: IOBuffer, _ range: Range<Int>) -> UInt32 {
        // SAFETY: the raw view is used only inside this call, over a range IOBuffer bounds-checked.
        buffer.withUnsafeBytes(in: range) { update(crc, $0) }
    }
}

// MARK: Page streaming

extension CRC32C {
    /// Continues `crc` over those pages of `pages` (consecutive `pageSize`-byte pages) that are
    /// not all zero, in order, and sets bit i of `zeroBitmap` (LSB-first words) for each
    /// all-zero page i. Bits are only set, never cleared: pass a zeroed bitmap of at least
    /// ceil(page count / 64) words. On the `.vpclmul` path, with a page size that is a multiple
    /// of 256, each byte is read once: the zero scan and the CRC are one pass.
    public static func updateNonzeroPages(
        _ crc: UInt32, _ pages: UnsafeRawBufferPointer, pageSize: Int, zeroBitmap: inout [UInt64],
        using implementation: Implementation? = nil
    ) throws(UsageError) -> UInt32 {
        let count = try pageCount(pages.count, pageSize: pageSize, bitmapWords: zeroBitmap.count)
        if let implementation { try require(implementation) }
        guard let base = pages.baseAddress, count > 0 else { return crc }
        // SAFETY: the C function writes bit i for i < count only, inside the words checked above,
        // and keeps no pointer after returning.
        return zeroBitmap.withUnsafeMutableBufferPointer { words in
            if let implementation {
                ccrc32c_update_nonzero_pages_using(implementation.rawValue, crc, base, pageSize, count, words.baseAddress)
            } else {
                ccrc32c_update_nonzero_pages(crc, base, pageSize, count, words.baseAddress)
            }
        }
    }

    /// Sets bit i of `zeroBitmap` (as for `updateNonzeroPages`) for each all-zero page i of
    /// `pages` and returns how many there are. A page that is not zero usually costs a look at
    /// its first 64 bytes.
    public static func findZeroPages(
        _ pages: UnsafeRawBufferPointer, pageSize: Int, zeroBitmap: inout [UInt64],
        using implementation: Implementation? = nil
    ) throws(UsageError) -> Int {
        let count = try pageCount(pages.count, pageSize: pageSize, bitmapWords: zeroBitmap.count)
        if let implementation { try require(implementation) }
        guard let base = pages.baseAddress, count > 0 else { return 0 }
        // SAFETY: as in updateNonzeroPages.
        return zeroBitmap.withUnsafeMutableBufferPointer { words in
            if let implementation {
                ccrc32c_find_zero_pages_using(implementation.rawValue, base, pageSize, count, words.baseAddress)
            } else {
                ccrc32c_find_zero_pages(base, pageSize, count, words.baseAddress)
            }
        }
    }

    /// `updateNonzeroPages` over `buffer[range]` (no copy).
    public static func updateNonzeroPages(
        _ crc: UInt32, _ buffer: IOBuffer, _ range: Range<Int>, pageSize: Int, zeroBitmap: inout [UInt64],
        using implementation: Implementation? = nil
    ) throws(UsageError) -> UInt32 {
        // SAFETY: the raw view is used only inside this call, over a range IOBuffer bounds-checked.
        try buffer.withUnsafeBytes(in: range) { (pages) throws(UsageError) in
            try updateNonzeroPages(crc, pages, pageSize: pageSize, zeroBitmap: &zeroBitmap, using: implementation)
        }
    }

    /// `findZeroPages` over `buffer[range]` (no copy).
    public static func findZeroPages(
        _ buffer: IOBuffer, _ range: Range<Int>, pageSize: Int, zeroBitmap: inout [UInt64],
        using implementation: Implementation? = nil
    ) throws(UsageError) -> Int {
        // SAFETY: the raw view is used only inside this call, over a range IOBuffer bounds-checked.
        try buffer.withUnsafeBytes(in: range) { (pages) throws(UsageError) in
            try findZeroPages(pages, pageSize: pageSize, zeroBitmap: &zeroBitmap, using: implementation)
        }
    }

    private static func pageCount(_ byteCount: Int, pageSize: Int, bitmapWords: Int) throws(UsageError) -> Int {
        guard pageSize > 0 else { throw .invalidPageSize(pageSize) }
        guard byteCount % pageSize == 0 else { throw .partialPage(byteCount: byteCount, pageSize: pageSize) }
        let pages = byteCount / pageSize
        guard bitmapWords >= (pages + 63) / 64 else { throw .bitmapTooSmall(words: bitmapWords, pages: pages) }
        return pages
    }
}
