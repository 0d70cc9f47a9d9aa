// Polynomial arithmetic modulo the Castagnoli polynomial P, and the generator of the
// constants the folding paths use. Everything is computed at startup from P alone, so no
// table of magic numbers has to be trusted.
//
// Why the fold constants look the way they do. A 128-bit lane loaded little-endian holds 16
// message bytes with bit i <-> x^(127-i): its first 8 bytes L count x^64 times more than its
// last 8 bytes H, lane = L*x^64 + H. Moving the lane D bits further along the message means
// multiplying by x^D; modulo P that is L*(x^(D+64) mod P) + H*(x^D mod P), two products of a
// 64-bit and a 32-bit polynomial, which fit in 128 bits again. A carry-less multiply of two
// reflected operands yields their product times x (the result has one more bit position than
// the sum of the degrees uses), and a 32-bit register stored in bits 1..32 of a 64-bit operand
// counts as its polynomial times x^31. So the operand for "times x^E" is (x^(E-32) mod P) << 1:
// E = D+64 for L and E = D for H, which is x^(D+32) and x^(D-32) below.
#include "internal.h"

uint32_t crc32c_gf2_multiply(uint32_t a, uint32_t b) {
    // Walks a's terms from x^0 upward while b is multiplied by x at each step.
    uint32_t product = 0;
    for (int term = 0; term < 32; term++) {
        if (a & (0x80000000u >> term)) {
            product ^= b;
        }
        b = (b & 1u) ? (b >> 1) ^ CASTAGNOLI : b >> 1;
    }
    return product;
}

uint32_t crc32c_x_pow(uint64_t bits) {
    uint32_t result = 0x80000000u;  // x^0
    uint32_t power = 0x40000000u;   // x^1, then x^2, x^4, ...
    while (bits != 0) {
        if (bits & 1u) {
            result = crc32c_gf2_multiply(result, power);
        }
        power = crc32c_gf2_multiply(power, power);
        bits >>= 1;
    }
    return result;
}

uint32_t crc32c_x_pow_bytes(uint64_t bytes) {
    // x^(8*bytes) without forming 8*bytes, which overflows for lengths of 2^61 bytes and up.
    uint32_t result = 0x80000000u;  // x^0
    uint32_t power = 0x00800000u;   // x^8, then x^16, x^32, ...
    while (bytes != 0) {
        if (bytes & 1u) {
            result = crc32c_gf2_multiply(result, power);
        }
        power = crc32c_gf2_multiply(power, power);
        bytes >>= 1;
    }
    return result;
}

struct crc32c_fold crc32c_fold_constants(uint64_t distance_bits) {
    struct crc32c_fold fold = {
        .low = (uint64_t)crc32c_x_pow(distance_bits + 32) << 1,
        .high = (uint64_t)crc32c_x_pow(distance_bits - 32) << 1,
    };
    return fold;
}
