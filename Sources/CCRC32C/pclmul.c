// The PCLMULQDQ path: the message is folded in 128-bit lanes, several in flight so the
// multiplier's latency is hidden, then the lanes are folded into one and reduced to 32 bits
// with two crc32 instructions (a lane's 16 bytes, CRC'd from a zero register, are exactly
// "lane times x^32 mod P"). Heads and tails use the crc32 instruction. The constants come
// from gf2.c at startup.
//
// From STREAMS_FROM bytes on, three crc32 streams (join.c) run beside two folded lanes: the
// multiplier and the crc32 unit work at the same time. Here that is 1.3-1.4 times the
// SSE4.2 path, while eight folded lanes alone run at about half of it (one 128-bit
// multiply per two cycles on this CPU); shorter inputs use the eight lanes.
#include "internal.h"

#if CCRC32C_HAVE_X86
#include <immintrin.h>

#define TARGET_PCLMUL __attribute__((target("sse4.2,pclmul")))
#define LANES 8          // lanes in flight without streams
#define STREAM_LANES 2   // lanes in flight beside the streams
#define STREAMS 3
#define STREAMS_FROM 512

static struct crc32c_fold fold_lanes;                 // a lane past all LANES lanes
static struct crc32c_fold fold_stream_lanes;          // a lane past STREAM_LANES lanes
static struct crc32c_fold fold_lane;                  // a lane past the next: 128 bits
static struct crc32c_fold merge[LANES - 1];           // lane i moved to the last lane: (LANES - 1 - i) * 128 bits

void crc32c_pclmul_init(void) {
    fold_lanes = crc32c_fold_constants(LANES * 128);
    fold_stream_lanes = crc32c_fold_constants(STREAM_LANES * 128);
    fold_lane = crc32c_fold_constants(128);
    for (int i = 0; i < LANES - 1; i++) {
        merge[i] = crc32c_fold_constants((uint64_t)(LANES - 1 - i) * 128);
    }
}

TARGET_PCLMUL static inline __m128i constants(struct crc32c_fold fold) {
    return _mm_set_epi64x((long long)fold.high, (long long)fold.low);
}

// The lane moved `k`'s distance further along: the low half times k.low, the high half times k.high.
TARGET_PCLMUL static inline __m128i advance(__m128i lane, __m128i k) {
    return _mm_xor_si128(_mm_clmulepi64_si128(lane, k, 0x00), _mm_clmulepi64_si128(lane, k, 0x11));
}

TARGET_PCLMUL static inline __m128i load(const unsigned char *p) {
    return _mm_loadu_si128((const __m128i *)p);
}

TARGET_PCLMUL static inline uint64_t load64(const unsigned char *p) {
    uint64_t word;
    __builtin_memcpy(&word, p, sizeof word);
    return word;
}

// `count` lanes, lane i of them followed by count - 1 - i lanes, as one lane.
TARGET_PCLMUL static inline __m128i merge_lanes(const __m128i *x, int count) {
    __m128i acc = x[count - 1];
    for (int i = 0; i < count - 1; i++) {
        acc = _mm_xor_si128(acc, advance(x[i], constants(merge[LANES - count + i])));
    }
    return acc;
}

TARGET_PCLMUL static inline uint32_t reduce(__m128i lane) {
    uint64_t r = _mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(lane));
    return (uint32_t)_mm_crc32_u64(r, (uint64_t)_mm_extract_epi64(lane, 1));
}

// Each step folds STREAM_LANES lanes of the first region and runs each stream over its next
// 32 bytes; the streams' regions follow the first region, then comes the tail.
TARGET_PCLMUL static uint32_t with_streams(uint32_t reg, const unsigned char *p, size_t n) {
    const size_t step = STREAM_LANES * 16 + STREAMS * CRC32C_STREAM_BYTES;
    const size_t steps = n / step;
    const size_t stride = steps * CRC32C_STREAM_BYTES;
    const unsigned char *q = p + steps * STREAM_LANES * 16;
    const unsigned char *tail = q + STREAMS * stride;

    __m128i x[STREAM_LANES];
    for (int l = 0; l < STREAM_LANES; l++) {
        x[l] = load(p + 16 * l);
    }
    x[0] = _mm_xor_si128(x[0], _mm_cvtsi32_si128((int)reg));
    uint64_t r[STREAMS] = {0};
    const __m128i k = constants(fold_stream_lanes);
    for (size_t i = 0; i < steps; i++) {
        if (i != 0) {
            for (int l = 0; l < STREAM_LANES; l++) {
                x[l] = _mm_xor_si128(advance(x[l], k), load(p + 16 * l));
            }
        }
        for (int j = 0; j < STREAMS; j++) {
            for (int w = 0; w < CRC32C_STREAM_BYTES; w += 8) {
                r[j] = _mm_crc32_u64(r[j], load64(q + j * stride + w));
            }
        }
        p += STREAM_LANES * 16;
        q += CRC32C_STREAM_BYTES;
    }
    reg = crc32c_join_streams(reduce(merge_lanes(x, STREAM_LANES)), r, STREAMS, steps);
    return crc32c_sse42_serial(reg, tail, n - steps * step);
}

TARGET_PCLMUL uint32_t crc32c_pclmul_register(uint32_t reg, const unsigned char *p, size_t n) {
    if (n >= STREAMS_FROM) {
        return with_streams(reg, p, n);
    }
    if (n < 2 * LANES * 16) {
        return crc32c_sse42_serial(reg, p, n);
    }
    __m128i x[LANES];
    for (int i = 0; i < LANES; i++) {
        x[i] = load(p + 16 * i);
    }
    // The register so far joins the message where the crc32 instruction would put it: XORed
    // into the first four bytes.
    x[0] = _mm_xor_si128(x[0], _mm_cvtsi32_si128((int)reg));
    p += LANES * 16;
    n -= LANES * 16;

    const __m128i k = constants(fold_lanes);
    while (n >= LANES * 16) {
        for (int i = 0; i < LANES; i++) {
            x[i] = _mm_xor_si128(advance(x[i], k), load(p + 16 * i));
        }
        p += LANES * 16;
        n -= LANES * 16;
    }

    __m128i acc = merge_lanes(x, LANES);
    const __m128i k1 = constants(fold_lane);
    while (n >= 16) {
        acc = _mm_xor_si128(advance(acc, k1), load(p));
        p += 16;
        n -= 16;
    }
    return crc32c_sse42_serial(reduce(acc), p, n);
}
#endif
