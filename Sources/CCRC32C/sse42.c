// The SSE4.2 path: three independent crc32 streams over three adjacent blocks, so the
// instruction's 3-cycle latency is hidden (one result per cycle instead of one per three),
// then joined: the register of block A, advanced over |B| zero bytes, XOR the register of
// block B started at zero, is the register of A || B (CRCs are linear over GF(2)). "Advance
// over |B| zero bytes" is a multiplication by x^(8|B|) mod P, precomputed as four 256-entry
// tables per block size, so a join costs eight table loads.
#include "internal.h"

#if CCRC32C_HAVE_X86
#include <nmmintrin.h>
#include <string.h>

// Block sizes of the interleaved loop: large blocks for bulk data, small ones so buffers of a
// few KiB also get the three-way speedup. Both multiples of 8.
enum { LONG_BLOCK = 8192, SHORT_BLOCK = 256 };

static uint32_t shift_long[4][256];   // multiply by x^(8 * LONG_BLOCK), one table per register byte
static uint32_t shift_short[4][256];  // multiply by x^(8 * SHORT_BLOCK)

static void fill_shift_table(uint32_t table[4][256], uint64_t bytes) {
    uint32_t op = crc32c_x_pow(8 * bytes);
    for (int k = 0; k < 4; k++) {
        for (uint32_t b = 0; b < 256; b++) {
            table[k][b] = crc32c_gf2_multiply(b << (8 * k), op);
        }
    }
}

void crc32c_sse42_init(void) {
    fill_shift_table(shift_long, LONG_BLOCK);
    fill_shift_table(shift_short, SHORT_BLOCK);
}

static inline uint32_t apply_shift(const uint32_t table[4][256], uint32_t reg) {
    return table[0][reg & 0xFF] ^ table[1][(reg >> 8) & 0xFF] ^ table[2][(reg >> 16) & 0xFF] ^
           table[3][reg >> 24];
}

static inline uint64_t load64(const unsigned char *p) {
    uint64_t word;
    memcpy(&word, p, sizeof word);
    return word;
}

__attribute__((target("sse4.2")))
static uint64_t three_way(uint64_t reg, const unsigned char **pp, size_t *np, size_t block,
                          const uint32_t shift[4][256]) {
    const unsigned char *p = *pp;
    size_t n = *np;
    while (n >= 3 * block) {
        uint64_t reg1 = 0, reg2 = 0;
        const unsigned char *end = p + block;
        do {
            reg = _mm_crc32_u64(reg, load64(p));
            reg1 = _mm_crc32_u64(reg1, load64(p + block));
            reg2 = _mm_crc32_u64(reg2, load64(p + 2 * block));
            p += 8;
        } while (p < end);
        reg = apply_shift(shift, (uint32_t)reg) ^ (uint32_t)reg1;
        reg = apply_shift(shift, (uint32_t)reg) ^ (uint32_t)reg2;
        p += 2 * block;
        n -= 3 * block;
    }
    *pp = p;
    *np = n;
    return reg;
}

__attribute__((target("sse4.2")))
uint32_t crc32c_sse42_serial(uint32_t reg32, const unsigned char *p, size_t n) {
    uint64_t reg = reg32;
    while (n >= 8) {
        reg = _mm_crc32_u64(reg, load64(p));
        p += 8;
        n -= 8;
    }
    reg32 = (uint32_t)reg;
    while (n != 0) {
        reg32 = _mm_crc32_u8(reg32, *p++);
        n--;
    }
    return reg32;
}

__attribute__((target("sse4.2")))
uint32_t crc32c_sse42_register(uint32_t reg32, const unsigned char *p, size_t n) {
    while (n != 0 && ((uintptr_t)p & 7u) != 0) {
        reg32 = _mm_crc32_u8(reg32, *p++);
        n--;
    }
    uint64_t reg = reg32;
    reg = three_way(reg, &p, &n, LONG_BLOCK, shift_long);
    reg = three_way(reg, &p, &n, SHORT_BLOCK, shift_short);
    return crc32c_sse42_serial((uint32_t)reg, p, n);
}
#endif
