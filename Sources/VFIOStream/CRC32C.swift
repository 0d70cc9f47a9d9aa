// Swift face of the C CRC32C: the checksum every stream record and the header carry.
import CCRC32C
import VFIOBuffers

/// CRC32C (Castagnoli). Values are the finished CRC; a running CRC starts at 0.
public enum CRC32C {
    /// True when the SSE4.2 instruction path is in use.
    public static var isHardwareAccelerated: Bool { ccrc32c_hardware_available() != 0 }

    /// Continues `crc` over `bytes` on the fastest available path.
    public static func update(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = bytes.baseAddress else { return crc }
        return ccrc32c_update(crc, base, bytes.count)
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

    /// The hardware path; a programmer error when `isHardwareAccelerated` is false.
    public static func updateHardware(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        precondition(isHardwareAccelerated, "CRC32C hardware path requested on a CPU without SSE4.2")
        guard let base = bytes.baseAddress else { return crc }
        return ccrc32c_update_hardware(crc, base, bytes.count)
    }

    /// crc(A || B) from crc(A), crc(B) and the length of B.
    public static func combine(_ crcA: UInt32, _ crcB: UInt32, lengthOfB: UInt64) -> UInt32 {
        ccrc32c_combine(crcA, crcB, lengthOfB)
    }
}

extension CRC32C {
    /// Continues `crc` over `buffer[range]` (no copy).
    public static func update(_ crc: UInt32, _ buffer: IOBuffer, _ range: Range<Int>) -> UInt32 {
        // SAFETY: the raw view is used only inside this call, over a range IOBuffer bounds-checked.
        buffer.withUnsafeBytes(in: range) { update(crc, $0) }
    }
}
