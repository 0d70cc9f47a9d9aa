// IOBuffer: one page-aligned block of memory the data path reads device state into and
// frames records in. It is one of the three places unsafe pointer code may live (with the
// syscall layer and the stream codec): every use below says why it is sound.
//
// Ownership is by reference (a final class), so a stage hands a buffer on without copying
// megabytes. It is not Sendable: its bytes and fill level are mutable and unguarded, so a
// buffer crosses threads only through a hand-off that orders the two sides (a locked queue),
// which is where a data path that moves buffers between threads has to say so.

/// A fixed-capacity, page-aligned byte buffer with a fill level.
public final class IOBuffer {
    /// Alignment of every buffer: a page, so O_DIRECT-style and DMA-friendly I/O can use it.
    public static let alignment = 4096

    public let capacity: Int
    /// Bytes `0..<count` hold data; `count...` is free space.
    public var count: Int {
        didSet { precondition(count >= 0 && count <= capacity, "IOBuffer count \(count) outside 0...\(capacity)") }
    }

    private let base: UnsafeMutableRawPointer
    /// Called once in deinit; set by a placement policy (NUMA binding, mlock) that must undo work.
    private let release: (@Sendable (UnsafeMutableRawPointer, Int) -> Void)?

    /// Allocates `capacity` bytes from the Swift heap, page aligned, zero filled.
    public init(capacity: Int) {
        precondition(capacity > 0, "IOBuffer capacity must be positive")
        self.capacity = capacity
        self.count = 0
        // SAFETY: allocate returns `capacity` bytes we own until deinit deallocates them.
        self.base = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: IOBuffer.alignment)
        // SAFETY: the region was just allocated with exactly `capacity` bytes.
        self.base.initializeMemory(as: UInt8.self, repeating: 0, count: capacity)
        self.release = nil
    }

    /// Adopts memory a placement policy allocated (for example on a NUMA node).
    /// `release` is called exactly once, from deinit, with the same pointer and capacity.
    package init(
        adopting base: UnsafeMutableRawPointer,
        capacity: Int,
        release: @escaping @Sendable (UnsafeMutableRawPointer, Int) -> Void
    ) {
        precondition(capacity > 0, "IOBuffer capacity must be positive")
        self.base = base
        self.capacity = capacity
        self.count = 0
        self.release = release
    }

    /// Memory the embedder (a VMM) mapped itself and lends to the engine: guest RAM it
    /// already has mapped. Nothing is copied and nothing is freed here; `whenReleased` runs
    /// once, from deinit, so the VMM may unmap the memory after that and not before.
    ///
    /// Unsafe because the engine cannot check what it is given: the memory must stay mapped
    /// (and writable, where the engine is to write it) for the buffer's whole life.
    public static func unsafeAdoptingMemoryMappedByTheEmbedder(
        _ memory: UnsafeMutableRawBufferPointer, whenReleased: (@Sendable () -> Void)? = nil
    ) throws(AdoptionError) -> IOBuffer {
        guard let base = memory.baseAddress, memory.count > 0 else { throw .empty }
        guard UInt(bitPattern: base) % UInt(alignment) == 0 else { throw .misaligned(offset: Int(UInt(bitPattern: base) % UInt(alignment))) }
        return IOBuffer(adopting: base, capacity: memory.count) { _, _ in whenReleased?() }
    }

    /// Why memory lent by the embedder was refused.
    public enum AdoptionError: Error, Sendable, Equatable, CustomStringConvertible {
        case empty
        /// The start is `offset` bytes past a page boundary.
        case misaligned(offset: Int)

        public var description: String {
            switch self {
            case .empty: "the lent memory is empty"
            case .misaligned(let offset): "the lent memory starts \(offset) bytes past a \(IOBuffer.alignment)-byte page boundary"
            }
        }
    }

    deinit {
        if let release {
            release(base, capacity)
        } else {
            // SAFETY: `base` came from allocate in init(capacity:) and is freed only here.
            base.deallocate()
        }
    }

    /// Free space after the filled part.
    public var freeCapacity: Int { capacity - count }

    /// Reads one byte; bounds-checked against the capacity.
    public subscript(index: Int) -> UInt8 {
        get {
            precondition(index >= 0 && index < capacity, "IOBuffer index \(index) out of range")
            // SAFETY: index is inside the allocation (checked above).
            return base.load(fromByteOffset: index, as: UInt8.self)
        }
        set {
            precondition(index >= 0 && index < capacity, "IOBuffer index \(index) out of range")
            // SAFETY: index is inside the allocation (checked above).
            base.storeBytes(of: newValue, toByteOffset: index, as: UInt8.self)
        }
    }

    /// Copies `bytes` to `offset`, which must leave them inside the capacity.
    public func write(_ bytes: some Collection<UInt8>, at offset: Int) {
        precondition(offset >= 0 && offset + bytes.count <= capacity, "IOBuffer write out of range")
        // SAFETY: the destination range was checked to lie inside the allocation.
        let destination = UnsafeMutableRawBufferPointer(start: base + offset, count: bytes.count)
        destination.copyBytes(from: bytes)
    }

    /// Sets `range` to zero (a ZERO run of guest pages arriving).
    public func zero(_ range: Range<Int>) {
        precondition(range.lowerBound >= 0 && range.upperBound <= capacity, "IOBuffer zero range out of bounds")
        // SAFETY: the range was checked to lie inside the allocation.
        (base + range.lowerBound).initializeMemory(as: UInt8.self, repeating: 0, count: range.count)
    }

    /// Copies `source[range]` to `offset` in this buffer (which must hold it); the two may be
    /// the same buffer only when the ranges do not overlap.
    public func copy(from source: IOBuffer, _ range: Range<Int>, to offset: Int) {
        precondition(range.lowerBound >= 0 && range.upperBound <= source.capacity, "IOBuffer copy source out of bounds")
        precondition(offset >= 0 && offset + range.count <= capacity, "IOBuffer copy destination out of bounds")
        // SAFETY: both ranges were checked to lie inside their allocations.
        (base + offset).copyMemory(from: source.base + range.lowerBound, byteCount: range.count)
    }

    /// Copies out `range` as an array (tests, small headers; not the hot path).
    public func bytes(_ range: Range<Int>) -> [UInt8] {
        precondition(range.lowerBound >= 0 && range.upperBound <= capacity, "IOBuffer range out of bounds")
        // SAFETY: the range was checked to lie inside the allocation.
        return Array(UnsafeRawBufferPointer(start: base + range.lowerBound, count: range.count))
    }

    /// The filled bytes as an array (tests; not the hot path).
    public var filledBytes: [UInt8] { bytes(0..<count) }

    /// Raw access to `range`, for the syscall layer and the codec only.
    /// The pointer must not escape `body`.
    public func withUnsafeMutableBytes<R, E: Error>(
        in range: Range<Int>,
        _ body: (UnsafeMutableRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        precondition(range.lowerBound >= 0 && range.upperBound <= capacity, "IOBuffer range out of bounds")
        // SAFETY: the range lies inside the allocation, which outlives this call.
        return try body(UnsafeMutableRawBufferPointer(start: base + range.lowerBound, count: range.count))
    }

    /// Read-only raw access to `range`, for the syscall layer and the codec only.
    public func withUnsafeBytes<R, E: Error>(
        in range: Range<Int>,
        _ body: (UnsafeRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        precondition(range.lowerBound >= 0 && range.upperBound <= capacity, "IOBuffer range out of bounds")
        // SAFETY: the range lies inside the allocation, which outlives this call.
        return try body(UnsafeRawBufferPointer(start: base + range.lowerBound, count: range.count))
    }
}
