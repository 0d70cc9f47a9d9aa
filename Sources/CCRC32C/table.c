// The portable path: slicing-by-8 tables, for CPUs without the crc32 instruction and for
// non-x86 hosts; also the reference the faster paths are tested against.
#include "internal.h"

#include <string.h>

static uint32_t slice_table[8][256];  // slice_table[k][b]: register after byte b then k zero bytes

void crc32c_table_init(void) {
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
}

static inline uint64_t load_le64(const unsigned char *p) {
    uint64_t word;
    memcpy(&word, p, sizeof word);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    word = __builtin_bswap64(word);
#endif
    return word;
}

uint32_t crc32c_table_register(uint32_t reg, const unsigned char *p, size_t n) {
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
