// The AVX-512 VPCLMULQDQ path: pclmul.c's folding on 512-bit registers (four 128-bit lanes
// each), four registers (256 bytes) in flight, and for mid-sized inputs two crc32 streams
// beside it. The loop starts at a 64-byte boundary: the head up to it goes through the
// crc32 instruction, so no load of the loop splits a cache line (the loads are the unaligned
// kind all the same, as the page scan takes any address). After the loop the four registers
// fold into one, its four lanes into one, and the rest is pclmul.c's ending: 16-byte folds,
// two crc32 to reduce, crc32 for the tail.
//
// Compiled with per-function target attributes only, so the library still runs on a baseline
// x86-64; dispatch.c calls in here only when cpu.c found the instructions and the OS state.
#include "internal.h"

#if CCRC32C_HAVE_X86
#include <immintrin.h>

#define TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,vpclmulqdq,pclmul,sse4.2")))
#define REGS 4  // registers in flight
#define BLOCK (64 * REGS)  // bytes per loop step
// Shifts of the fused page scan: by 2^i blocks, enough for pages of up to 2^(SHIFTS + 8) bytes.
#define SHIFTS 40

static struct crc32c_fold fold_block;    // each register past one block: 2048 bits
static struct crc32c_fold fold_register; // one register past the next: 512 bits
static struct crc32c_fold merge_registers[REGS - 1];  // register i to the last: (REGS - 1 - i) * 512 bits
static struct crc32c_fold merge_lanes[3];      // lane i to the last: (3 - i) * 128 bits
static struct crc32c_fold fold_lane;           // 128 bits
static struct crc32c_fold shift_blocks[SHIFTS]; // all four registers past 2^i blocks

void crc32c_vpclmul_init(void) {
    fold_block = crc32c_fold_constants(BLOCK * 8);
    fold_register = crc32c_fold_constants(512);
    for (int i = 0; i < REGS - 1; i++) {
        merge_registers[i] = crc32c_fold_constants((uint64_t)(REGS - 1 - i) * 512);
    }
    for (int i = 0; i < 3; i++) {
        merge_lanes[i] = crc32c_fold_constants((uint64_t)(3 - i) * 128);
    }
    fold_lane = crc32c_fold_constants(128);
    for (int i = 0; i < SHIFTS; i++) {
        shift_blocks[i] = crc32c_fold_constants((uint64_t)BLOCK * 8 << i);
    }
}

// The four registers of one block in flight.
typedef struct {
    __m512i r[REGS];
} block_state;

TARGET_AVX512 static inline __m512i broadcast(struct crc32c_fold fold) {
    return _mm512_broadcast_i32x4(_mm_set_epi64x((long long)fold.high, (long long)fold.low));
}

// advance(x) ^ data in one three-way XOR.
TARGET_AVX512 static inline __m512i fold_in(__m512i x, __m512i k, __m512i data) {
    return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(x, k, 0x00), _mm512_clmulepi64_epi128(x, k, 0x11),
                                     data, 0x96);
}

TARGET_AVX512 static inline __m512i advance(__m512i x, __m512i k) {
    return _mm512_xor_si512(_mm512_clmulepi64_epi128(x, k, 0x00), _mm512_clmulepi64_epi128(x, k, 0x11));
}

TARGET_AVX512 static inline block_state load_block(const unsigned char *p) {
    block_state b;
    for (int i = 0; i < REGS; i++) {
        b.r[i] = _mm512_loadu_si512((const void *)(p + 64 * i));
    }
    return b;
}

TARGET_AVX512 static inline block_state fold_block_in(block_state s, __m512i k, block_state data) {
    for (int i = 0; i < REGS; i++) {
        s.r[i] = fold_in(s.r[i], k, data.r[i]);
    }
    return s;
}

TARGET_AVX512 static inline int block_is_zero(block_state b) {
    __m512i any = b.r[0];
    for (int i = 1; i < REGS; i++) {
        any = _mm512_or_si512(any, b.r[i]);
    }
    return _mm512_test_epi64_mask(any, any) == 0;
}

// The registers' message, ending where they end, reduced to a CRC register; then `tail`
// (fewer than 256 bytes) continued after it.
TARGET_AVX512 static uint32_t finish(block_state s, const unsigned char *p, size_t n) {
    __m512i x = s.r[REGS - 1];
    for (int i = 0; i < REGS - 1; i++) {
        x = _mm512_xor_si512(x, advance(s.r[i], broadcast(merge_registers[i])));
    }
    __m512i k = broadcast(fold_register);
    while (n >= 64) {
        x = fold_in(x, k, _mm512_loadu_si512((const void *)p));
        p += 64;
        n -= 64;
    }
    // Lanes 0..2 advanced to lane 3 (lane 3's multipliers are zero, so it drops out of t).
    __m512i lanes = _mm512_set_epi64(0, 0, (long long)merge_lanes[2].high, (long long)merge_lanes[2].low,
                                     (long long)merge_lanes[1].high, (long long)merge_lanes[1].low,
                                     (long long)merge_lanes[0].high, (long long)merge_lanes[0].low);
    __m512i t = advance(x, lanes);
    __m256i half = _mm256_xor_si256(_mm512_castsi512_si256(t), _mm512_extracti64x4_epi64(t, 1));
    __m128i acc = _mm_xor_si128(_mm256_castsi256_si128(half), _mm256_extracti128_si256(half, 1));
    acc = _mm_xor_si128(acc, _mm512_extracti32x4_epi32(x, 3));

    __m128i k1 = _mm_set_epi64x((long long)fold_lane.high, (long long)fold_lane.low);
    while (n >= 16) {
        __m128i folded = _mm_xor_si128(_mm_clmulepi64_si128(acc, k1, 0x00), _mm_clmulepi64_si128(acc, k1, 0x11));
        acc = _mm_xor_si128(folded, _mm_loadu_si128((const __m128i *)p));
        p += 16;
        n -= 16;
    }
    uint64_t r = _mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(acc));
    r = _mm_crc32_u64(r, (uint64_t)_mm_extract_epi64(acc, 1));
    return crc32c_sse42_serial((uint32_t)r, p, n);
}

// Inputs of STREAMS_FROM to STREAMS_UPTO bytes also run crc32 streams (join.c) beside the
// fold: the crc32 instruction executes alongside the carry-less multiplies, 1.2-1.25 times
// the fold alone here from 16 KiB to 8 MiB of cached data (a chunk just read(2) into its
// buffer is). Below, setup and join cost more than they gain; above, the data comes from
// DRAM, where the streams' slower regions cut it to 0.7-0.85 times (32 and 64 MiB). A buffer
// that is not cached reads slower this way at any size (about 15 against 24 GB/s for
// pclmul.c's evenly advancing regions; software prefetch did not help).
#define STREAMS 2
#define STREAMS_FROM (16 << 10)
#define STREAMS_UPTO (16 << 20)

TARGET_AVX512 static inline uint64_t load64(const unsigned char *p) {
    uint64_t word;
    __builtin_memcpy(&word, p, sizeof word);
    return word;
}

// Each step folds one block of the first region and runs each stream over its next 32 bytes;
// the streams' regions follow the first region, then comes the tail.
TARGET_AVX512 static uint32_t with_streams(uint32_t reg, const unsigned char *p, size_t n) {
    const size_t step = BLOCK + STREAMS * CRC32C_STREAM_BYTES;
    const size_t steps = n / step;
    const size_t stride = steps * CRC32C_STREAM_BYTES;
    const unsigned char *q = p + steps * BLOCK;
    const unsigned char *tail = q + STREAMS * stride;

    block_state s = load_block(p);
    s.r[0] = _mm512_xor_si512(s.r[0], _mm512_zextsi128_si512(_mm_cvtsi32_si128((int)reg)));
    uint64_t r[STREAMS] = {0};
    const __m512i k = broadcast(fold_block);
    for (size_t i = 0; i < steps; i++) {
        if (i != 0) {
            s = fold_block_in(s, k, load_block(p));
        }
        for (int j = 0; j < STREAMS; j++) {
            for (int w = 0; w < CRC32C_STREAM_BYTES; w += 8) {
                r[j] = _mm_crc32_u64(r[j], load64(q + j * stride + w));
            }
        }
        p += BLOCK;
        q += CRC32C_STREAM_BYTES;
    }
    reg = crc32c_join_streams(finish(s, p, 0), r, STREAMS, steps);
    return crc32c_pclmul_register(reg, tail, n - steps * step);
}

TARGET_AVX512 uint32_t crc32c_vpclmul_register(uint32_t reg, const unsigned char *p, size_t n) {
    size_t head = (size_t)(-(uintptr_t)p) & 63;
    if (n < head + BLOCK) {
        return crc32c_pclmul_register(reg, p, n);
    }
    reg = crc32c_sse42_serial(reg, p, head);
    p += head;
    n -= head;
    if (n >= STREAMS_FROM && n <= STREAMS_UPTO) {
        return with_streams(reg, p, n);
    }

    block_state s = load_block(p);
    s.r[0] = _mm512_xor_si512(s.r[0], _mm512_zextsi128_si512(_mm_cvtsi32_si128((int)reg)));
    p += BLOCK;
    n -= BLOCK;
    __m512i k = broadcast(fold_block);
    while (n >= BLOCK) {
        s = fold_block_in(s, k, load_block(p));
        p += BLOCK;
        n -= BLOCK;
    }
    return finish(s, p, n);
}

// s moved past `blocks` blocks of zeros: one fold per set bit of the count.
TARGET_AVX512 static block_state shift(block_state s, size_t blocks) {
    for (int bit = 0; blocks != 0; bit++, blocks >>= 1) {
        if (blocks & 1u) {
            __m512i k = broadcast(shift_blocks[bit]);
            for (int i = 0; i < REGS; i++) {
                s.r[i] = advance(s.r[i], k);
            }
        }
    }
    return s;
}

// Per page: a zero scan block by block until a block is not zero. An all-zero page costs
// that scan alone. Otherwise the registers are moved past the zero blocks already seen
// (shift, no reloading) and the page's remaining blocks are folded in, starting with the one
// the scan stopped at, still in registers: every byte is loaded once.
TARGET_AVX512 uint32_t crc32c_vpclmul_nonzero_pages(uint32_t reg, const unsigned char *pages, size_t page_size,
                                                    size_t page_count, uint64_t *zero_bitmap) {
    const size_t blocks = page_size / BLOCK;
    const __m512i k = broadcast(fold_block);
    block_state s;
    for (int i = 0; i < REGS; i++) {
        s.r[i] = _mm512_setzero_si512();
    }
    int started = 0;
    for (size_t page = 0; page < page_count; page++) {
        const unsigned char *p = pages + page * page_size;
        size_t j = 0;
        block_state data;
        for (; j < blocks; j++) {
            data = load_block(p + j * BLOCK);
            if (!block_is_zero(data)) {
                break;
            }
        }
        if (j == blocks) {
            zero_bitmap[page >> 6] |= (uint64_t)1 << (page & 63);
            continue;
        }
        if (started) {
            s = shift(s, j + 1);
        } else {
            // The message starts at this page: its first block is (zero or data) with the
            // register XORed into its first four bytes, as in crc32c_vpclmul_register.
            s.r[0] = _mm512_zextsi128_si512(_mm_cvtsi32_si128((int)reg));
            s = shift(s, j);
            started = 1;
        }
        for (int i = 0; i < REGS; i++) {
            s.r[i] = _mm512_xor_si512(s.r[i], data.r[i]);
        }
        for (j++; j < blocks; j++) {
            s = fold_block_in(s, k, load_block(p + j * BLOCK));
        }
    }
    return started ? finish(s, pages, 0) : reg;
}

TARGET_AVX512 size_t crc32c_avx512_first_nonzero(const unsigned char *p, size_t n) {
    size_t offset = 0;  // n is a multiple of 64
    for (; offset + BLOCK <= n; offset += BLOCK) {
        if (!block_is_zero(load_block(p + offset))) {
            break;
        }
    }
    for (; offset < n; offset += 64) {
        __m512i line = _mm512_loadu_si512((const void *)(p + offset));
        if (_mm512_test_epi64_mask(line, line) != 0) {
            return offset;
        }
    }
    return n;
}
#endif
