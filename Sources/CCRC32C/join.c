// Joining CRC streams that ran side by side over adjacent regions of equal length. The
// register of region A continued over region B is reg(A) * x^(8|B|) + reg(B) (mod P, with
// reg(B) started from zero). One carry-less multiply and one crc32 instruction compute a
// product modulo P: clmul of two 32-bit registers is a*b*x^65 spread over 64 bits, and crc32
// of those 64 bits from a zero register multiplies by x^32 and reduces, which leaves
// a*b*x^33. So factors are kept as x^(e - 33): the product of x^(e1 - 33) and x^(e2 - 33) is
// x^(e1 + e2 - 33) again, and a register times x^(e - 33) is the register times x^e.
#include "internal.h"

#if CCRC32C_HAVE_X86
#include <immintrin.h>

#define TARGET_JOIN __attribute__((target("sse4.2,pclmul")))
#define POWERS 48

static uint32_t stride_power[POWERS];  // x^(8 * CRC32C_STREAM_BYTES * 2^i - 33) mod P

void crc32c_join_init(void) {
    for (int i = 0; i < POWERS; i++) {
        stride_power[i] = crc32c_x_pow(((uint64_t)8 * CRC32C_STREAM_BYTES << i) - 33);
    }
}

TARGET_JOIN static inline uint32_t multiply33(uint32_t a, uint32_t b) {
    __m128i product = _mm_clmulepi64_si128(_mm_cvtsi32_si128((int)a), _mm_cvtsi32_si128((int)b), 0x00);
    return (uint32_t)_mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(product));
}

TARGET_JOIN uint32_t crc32c_join_streams(uint32_t reg, const uint64_t *streams, int count, size_t steps) {
    // x^(8 * region length) from the powers of two in the step count.
    uint32_t power = 0;
    int have = 0;
    for (int bit = 0; bit < POWERS && (steps >> bit) != 0; bit++) {
        if ((steps >> bit) & 1u) {
            power = have ? multiply33(power, stride_power[bit]) : stride_power[bit];
            have = 1;
        }
    }
    for (int i = 0; i < count; i++) {
        reg = multiply33(reg, power) ^ (uint32_t)streams[i];
    }
    return reg;
}
#endif
