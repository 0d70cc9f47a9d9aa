// Joining CRCs without the bytes: crc(A || B) = crc(A) * x^(8|B|) mod P  xor  crc(B).
// CRC32C.combine computes x^(8|B|) from scratch each time (about 2 log2|B| GF(2)
// multiplications). Records repeat the same few lengths, so the codec keeps the last
// operator and the squarings are a table: a chunk then costs one or two multiplications.

/// GF(2) arithmetic modulo the CRC32C polynomial, in the reflected bit order of the CRC
/// itself (bit 31 holds the coefficient of x^0).
enum CRCShift {
    static let reflectedPolynomial: UInt32 = 0x82F6_3B78
    /// x^0.
    static let one: UInt32 = 0x8000_0000

    /// a * b mod P, branch-free.
    @inline(__always)
    static func multiply(_ a: UInt32, _ b: UInt32) -> UInt32 {
        var product: UInt32 = 0
        var a = a
        var b = b
        // Masking shifts (&>>) keep the loop free of Swift's over-shift checks.
        for _ in 0..<32 {
            product ^= b & (0 &- (a &>> 31))
            a = a &<< 1
            b = (b &>> 1) ^ (reflectedPolynomial & (0 &- (b & 1)))
        }
        return product
    }

    /// powers[k] = x^(8 * 2^k) mod P: appending 2^k zero bytes.
    static let powers: [UInt32] = {
        var table: [UInt32] = []
        var power: UInt32 = 0x0080_0000  // x^8
        for _ in 0..<64 {
            table.append(power)
            power = multiply(power, power)
        }
        return table
    }()

    /// x^(8n) mod P: the operator that appends n zero bytes.
    static func operatorFor(bytes n: UInt64) -> UInt32 {
        var result = one
        var rest = n
        let table = powers
        while rest != 0 {
            let bit = rest.trailingZeroBitCount
            result = multiply(result, table[bit])
            rest &= rest - 1
        }
        return result
    }

    /// crc(A || B) from finished crc(A), crc(B) and |B| (as CRC32C.combine).
    static func combine(_ crcA: UInt32, _ crcB: UInt32, lengthOfB: UInt64) -> UInt32 {
        multiply(crcA, operatorFor(bytes: lengthOfB)) ^ crcB
    }
}

/// Remembers the operator of the last length, so repeated chunk sizes skip its computation.
struct CRCShiftCache: Sendable {
    private var length: UInt64 = 0
    private var shift: UInt32 = CRCShift.one

    mutating func combine(_ crcA: UInt32, _ crcB: UInt32, lengthOfB: UInt64) -> UInt32 {
        if lengthOfB != length {
            length = lengthOfB
            shift = CRCShift.operatorFor(bytes: lengthOfB)
        }
        return CRCShift.multiply(crcA, shift) ^ crcB
    }
}
