// CRC32C for the stream codec: SSE4.2 `crc32` instruction when the CPU has it, a
// slicing-by-8 table otherwise.
//
// The hardware path runs three independent CRC streams over three adjacent blocks so the
// instruction's 3-cycle latency is hidden (one result per cycle instead of one per three),
// then joins them: the register of block A, advanced over |B| zero bytes, XOR the register
// of block B started at zero, is the register of A || B (CRCs are linear over GF(2)).
// "Advance over |B| zero bytes" is a multiplication by x^(8|B|) mod P, precomputed as four
// 256-entry tables per block size, so a join costs eight table loads.
//
// Representation: "reflected", as the instruction and the stored values use it: bit 31 of
// a register holds the coefficient of x^0, bit 0 the coefficient of x^31.
#include "CCRC32C.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#define CCRC32C_HAVE_X86 1
#else
#define CCRC32C_HAVE_X86 0
#endif

#define CASTAGNOLI 0x82F63B78u

// Block sizes of the interleaved loop: large blocks for bulk data, small ones so buffers
// of a few KiB also get the three-way speedup. Both multiples of 8.
enum { LONG_BLOCK = 8192, SHORT_BLOCK = 256 };

static uint32_t slice_table[8][256];  // slice_table[k][b]: register after byte b then k zero bytes
static uint32_t shift_long[4][256];   // multiply by x^(8 * LONG_BLOCK), one table per register byte
static uint32_t shift_short[4][256];  // multiply by x^(8 * SHORT_BLOCK)
static int have_sse42;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

// a * b mod P. Walks a's terms from x^0 upward while b is multiplied by x at each step.
static uint32_t gf2_multiply(uint32_t a, uint32_t b) {
    uint32_t product = 0;
    for (int term = 0; term < 32; term++) {
        if (a & (0x80000000u >> term)) {
            product ^= b;
        }
        b = (b & 1u) ? (b >> 1) ^ CASTAGNOLI : b >> 1;
    }
    return product;
}

// x^(8n) mod P by square-and-multiply: the operator "append n zero bytes".
static uint32_t x_to_8n(uint64_t n) {
    uint32_t result = 0x80000000u;  // x^0
    uint32_t power = 0x00800000u;   // x^8, then x^16, x^32, ...
    while (n != 0) {
        if (n & 1u) {
            result = gf2_multiply(result, power);
        }
        power = gf2_multiply(power, power);
        n >>= 1;
    }
    return result;
}

static void fill_shift_table(uint32_t table[4][256], uint64_t bytes) {
    uint32_t op = x_to_8n(bytes);
    for (int k = 0; k < 4; k++) {
        for (uint32_t b = 0; b < 256; b++) {
            table[k][b] = gf2_multiply(b << (8 * k), op);
        }
    }
}

static inline uint32_t apply_shift(const uint32_t table[4][256], uint32_t reg) {
    return table[0][reg & 0xFF] ^ table[1][(reg >> 8) & 0xFF] ^ table[2][(reg >> 16) & 0xFF] ^
           table[3][reg >> 24];
}

static void initialize(void) {
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t reg = b;
        for (int bit = 0; bit < 8; bit++) {
            reg = (reg & 1u) ? (reg >> 1) ^ CASTAGNOLI : reg >> 1;
        }
        slice_table[0][b] = reg;
    }
    for (int k = 1; k < 8; k++) {
        for (uint32_t b = 0; b < 256; b++) {
            uint32_t prev = slice_table[k - 1][b];
            slice_table[k][b] = (prev >> 8) ^ slice_table[0][prev & 0xFF];
        }
    }
    fill_shift_table(shift_long, LONG_BLOCK);
    fill_shift_table(shift_short, SHORT_BLOCK);
#if CCRC32C_HAVE_X86
    __builtin_cpu_init();
    have_sse42 = __builtin_cpu_supports("sse4.2") ? 1 : 0;
#else
    have_sse42 = 0;
#endif
}

static inline uint64_t load_le64(const unsigned char *p) {
    uint64_t word;
    memcpy(&word, p, sizeof word);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    word = __builtin_bswap64(word);
#endif
    return word;
}

// Register in, register out (no pre/post inversion).
static uint32_t software_register(uint32_t reg, const unsigned char *p, size_t n) {
    while (n != 0 && ((uintptr_t)p & 7u) != 0) {
        reg = (reg >> 8) ^ slice_table[0][(reg ^ *p++) & 0xFF];
        n--;
    }
    while (n >= 8) {
        uint64_t word = load_le64(p) ^ reg;
        reg = slice_table[7][word & 0xFF] ^ slice_table[6][(word >> 8) & 0xFF] ^
              slice_table[5][(word >> 16) & 0xFF] ^ slice_table[4][(word >> 24) & 0xFF] ^
              slice_table[3][(word >> 32) & 0xFF] ^ slice_table[2][(word >> 40) & 0xFF] ^
              slice_table[1][(word >> 48) & 0xFF] ^ slice_table[0][word >> 56];
        p += 8;
        n -= 8;
    }
    while (n != 0) {
        reg = (reg >> 8) ^ slice_table[0][(reg ^ *p++) & 0xFF];
        n--;
    }
    return reg;
}

#if CCRC32C_HAVE_X86
__attribute__((target("sse4.2")))
static uint64_t hardware_three_way(uint64_t reg, const unsigned char **pp, size_t *np, size_t block,
                                   const uint32_t shift[4][256]) {
    const unsigned char *p = *pp;
    size_t n = *np;
    while (n >= 3 * block) {
        uint64_t reg1 = 0, reg2 = 0;
        const unsigned char *end = p + block;
        do {
            reg = _mm_crc32_u64(reg, load_le64(p));
            reg1 = _mm_crc32_u64(reg1, load_le64(p + block));
            reg2 = _mm_crc32_u64(reg2, load_le64(p + 2 * block));
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
static uint32_t hardware_register(uint32_t reg32, const unsigned char *p, size_t n) {
    while (n != 0 && ((uintptr_t)p & 7u) != 0) {
        reg32 = _mm_crc32_u8(reg32, *p++);
        n--;
    }
    uint64_t reg = reg32;
    reg = hardware_three_way(reg, &p, &n, LONG_BLOCK, shift_long);
    reg = hardware_three_way(reg, &p, &n, SHORT_BLOCK, shift_short);
    while (n >= 8) {
        reg = _mm_crc32_u64(reg, load_le64(p));
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
#endif

uint32_t ccrc32c_update(uint32_t crc, const void *p, size_t n) {
    pthread_once(&init_once, initialize);
#if CCRC32C_HAVE_X86
    if (have_sse42) {
        return ~hardware_register(~crc, (const unsigned char *)p, n);
    }
#endif
    return ~software_register(~crc, (const unsigned char *)p, n);
}

uint32_t ccrc32c_update_software(uint32_t crc, const void *p, size_t n) {
    pthread_once(&init_once, initialize);
    return ~software_register(~crc, (const unsigned char *)p, n);
}

uint32_t ccrc32c_update_hardware(uint32_t crc, const void *p, size_t n) {
    pthread_once(&init_once, initialize);
#if CCRC32C_HAVE_X86
    if (have_sse42) {
        return ~hardware_register(~crc, (const unsigned char *)p, n);
    }
#endif
    abort();  // asked for a path this CPU does not have: a caller bug
}

int ccrc32c_hardware_available(void) {
    pthread_once(&init_once, initialize);
    return have_sse42;
}

uint32_t ccrc32c_combine(uint32_t crc1, uint32_t crc2, uint64_t len2) {
    // With finished (inverted) values the inversions cancel: crc(A||B) = crc(A)*x^(8|B|) ^ crc(B).
    return gf2_multiply(crc1, x_to_8n(len2)) ^ crc2;
}
