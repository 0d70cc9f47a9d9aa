// Little-endian reads and writes over raw memory: the byte codec, one of the few places
// where unsafe pointer code is allowed. Every decoder path checks lengths before reading
// and turns a shortfall into a StreamError; the preconditions here only catch codec bugs.

/// Sequential little-endian reader over a borrowed raw buffer.
struct LittleEndianReader {
    let bytes: UnsafeRawBufferPointer
    private(set) var index: Int

    init(_ bytes: UnsafeRawBufferPointer, index: Int = 0) {
        precondition(index >= 0 && index <= bytes.count, "reader start \(index) outside 0...\(bytes.count)")
        self.bytes = bytes
        self.index = index
    }

    var remaining: Int { bytes.count - index }

    mutating func read<T: FixedWidthInteger>(_: T.Type) -> T {
        let size = MemoryLayout<T>.size
        precondition(remaining >= size, "codec bug: read of \(size) bytes with \(remaining) left")
        // SAFETY: `index + size <= bytes.count` was checked above; loadUnaligned has no alignment need.
        let value = bytes.loadUnaligned(fromByteOffset: index, as: T.self)
        index += size
        return T(littleEndian: value)
    }

    /// The next `count` bytes as a sub-buffer of the same memory (no copy).
    mutating func take(_ count: Int) -> UnsafeRawBufferPointer {
        precondition(count >= 0 && remaining >= count, "codec bug: take of \(count) bytes with \(remaining) left")
        // SAFETY: the range lies inside `bytes` (checked above) and shares its lifetime.
        let slice = UnsafeRawBufferPointer(rebasing: bytes[index..<(index + count)])
        index += count
        return slice
    }

    mutating func skip(_ count: Int) {
        precondition(count >= 0 && remaining >= count, "codec bug: skip of \(count) bytes with \(remaining) left")
        index += count
    }
}

/// Sequential little-endian writer into a borrowed raw buffer.
struct LittleEndianWriter {
    let bytes: UnsafeMutableRawBufferPointer
    private(set) var index: Int

    init(_ bytes: UnsafeMutableRawBufferPointer, index: Int = 0) {
        precondition(index >= 0 && index <= bytes.count, "writer start \(index) outside 0...\(bytes.count)")
        self.bytes = bytes
        self.index = index
    }

    mutating func write<T: FixedWidthInteger>(_ value: T) {
        let size = MemoryLayout<T>.size
        precondition(bytes.count - index >= size, "codec bug: write of \(size) bytes with \(bytes.count - index) left")
        // SAFETY: `index + size <= bytes.count` was checked above; storeBytes allows any alignment.
        bytes.storeBytes(of: value.littleEndian, toByteOffset: index, as: T.self)
        index += size
    }
}

extension Array where Element == UInt8 {
    /// Appends `value` little-endian (header encoding; not the hot path).
    mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        for byteIndex in 0..<MemoryLayout<T>.size {
            append(UInt8(truncatingIfNeeded: value >> (8 * byteIndex)))
        }
    }

    /// Overwrites `MemoryLayout<T>.size` bytes at `offset` with `value` little-endian.
    mutating func storeLittleEndian<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        for byteIndex in 0..<MemoryLayout<T>.size {
            self[offset + byteIndex] = UInt8(truncatingIfNeeded: value >> (8 * byteIndex))
        }
    }
}

/// Strict UTF-8 decoding of a field value; nil when the bytes are not valid UTF-8.
func decodeUTF8(_ bytes: UnsafeRawBufferPointer) -> String? {
    String(validating: bytes, as: UTF8.self)
}
