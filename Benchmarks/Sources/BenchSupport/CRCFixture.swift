// The CRC32C measurements' data: pseudo-random bytes of one size, checksummed on a chosen
// implementation; and guest-memory-like page regions for the zero-page scans, next to their
// baselines (a plain CRC of the same bytes, a memcpy of them).
import VFIOBuffers
import VFIOStream

/// `size` pseudo-random bytes in a page-aligned buffer.
public final class CRCFixture {
    public let size: Int
    public let buffer: IOBuffer

    public init(size: Int) {
        self.size = size
        buffer = IOBuffer(capacity: size)
        fillPseudoRandom(buffer, 0..<size, seed: UInt64(size) ^ 0xC4C)
    }

    /// CRC32C of the whole buffer on `implementation`, which must be available.
    @inline(never)
    public func crc(_ implementation: CRC32C.Implementation) -> UInt32 {
        // SAFETY: the closure only reads the range IOBuffer checked, and keeps no pointer.
        buffer.withUnsafeBytes(in: 0..<size) { bytes in
            do { return try CRC32C.update(0, bytes, using: implementation) } catch {
                preconditionFailure("benchmarked an unavailable CRC32C implementation: \(error)")
            }
        }
    }
}

/// What the pages of a region hold.
public enum PageMix: String, CaseIterable, Sendable {
    /// Every page pseudo-random: what the scan costs when nothing can be skipped.
    case random = "all random"
    /// Every page zero: what a never-touched guest region costs.
    case zero = "all zero"
    /// Random and zero pages alternating.
    case half = "half zero (alternating)"
    /// Zero pages with one non-zero last byte: the worst case for finding out a page is not zero.
    case lastByte = "zero but the last byte"
}

/// A region of `pageCount` 4 KiB pages filled as `mix` says, and the operations the page
/// scan is compared with.
public final class PageFixture {
    public static let pageSize = 4096
    public let mix: PageMix
    public let pageCount: Int
    public let pages: IOBuffer
    /// The memcpy baseline's destination.
    private let copyTarget: IOBuffer
    private var bitmap: [UInt64]
    public var byteCount: Int { pageCount * Self.pageSize }

    public init(mix: PageMix, bytes: Int) {
        self.mix = mix
        pageCount = bytes / Self.pageSize
        pages = IOBuffer(capacity: bytes)
        copyTarget = IOBuffer(capacity: bytes)
        bitmap = [UInt64](repeating: 0, count: (pageCount + 63) / 64)
        for page in 0..<pageCount {
            let range = (page * Self.pageSize)..<((page + 1) * Self.pageSize)
            switch mix {
            case .random: fillPseudoRandom(pages, range, seed: UInt64(page))
            case .zero: break
            case .half: if page % 2 == 0 { fillPseudoRandom(pages, range, seed: UInt64(page)) }
            case .lastByte: pages[range.upperBound - 1] = 0x5A
            }
        }
    }

    /// Zero pages in the region, as the fixture was built.
    public var expectedZeroPages: Int {
        switch mix {
        case .random, .lastByte: 0
        case .zero: pageCount
        case .half: pageCount / 2
        }
    }

    /// The fused scan: CRC over the non-zero pages, bitmap of the zero ones.
    @inline(never)
    public func fusedScan() -> UInt32 {
        for i in bitmap.indices { bitmap[i] = 0 }
        do {
            return try CRC32C.updateNonzeroPages(0, pages, 0..<byteCount, pageSize: Self.pageSize, zeroBitmap: &bitmap)
        } catch {
            preconditionFailure("page scan refused its own fixture: \(error)")
        }
    }

    /// The zero-page finder alone (no CRC).
    @inline(never)
    public func findZeroPages() -> Int {
        for i in bitmap.indices { bitmap[i] = 0 }
        do {
            return try CRC32C.findZeroPages(pages, 0..<byteCount, pageSize: Self.pageSize, zeroBitmap: &bitmap)
        } catch {
            preconditionFailure("zero-page finder refused its own fixture: \(error)")
        }
    }

    /// A plain CRC32C of every page, zero or not: what checksumming the region costs today.
    @inline(never)
    public func plainCRC() -> UInt32 {
        CRC32C.update(0, pages, 0..<byteCount)
    }

    /// memcpy of the region: the cheapest move of these bytes (QEMU's RAM migration sends
    /// pages without any checksum).
    @inline(never)
    public func copy() {
        let range = 0..<byteCount
        // SAFETY: both ranges were checked by IOBuffer and are equally long; the buffers are
        // distinct allocations, so they do not overlap; no pointer leaves the closures.
        pages.withUnsafeBytes(in: range) { from in
            copyTarget.withUnsafeMutableBytes(in: range) { to in to.copyMemory(from: from) }
        }
    }
}

/// Pushes everything else out of the CPU caches by reading a buffer twice the size of this
/// machine's last-level cache (32 MiB here; 64 MiB is read).
public final class CacheEvictor {
    private let buffer: IOBuffer
    private var sink: UInt64 = 0

    public init(bytes: Int = 64 << 20) {
        buffer = IOBuffer(capacity: bytes)
        fillPseudoRandom(buffer, 0..<bytes, seed: 0xE71C7)
    }

    /// Reads one word of every cache line.
    @inline(never)
    public func evict() {
        // SAFETY: the loads stay inside the range IOBuffer checked; no pointer leaves the closure.
        sink ^= buffer.withUnsafeBytes(in: 0..<buffer.capacity) { bytes in
            var acc: UInt64 = 0
            for offset in stride(from: 0, to: bytes.count, by: 64) {
                acc ^= bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            }
            return acc
        }
    }
}
