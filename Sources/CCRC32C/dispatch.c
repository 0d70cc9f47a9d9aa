// The public functions: pick the fastest path once (cpu.c), convert between the finished CRC
// the callers see and the register the paths work on, and let tests force a path.
#include "CCRC32C.h"
#include "internal.h"

#include <pthread.h>
#include <stdlib.h>

static struct crc32c_cpu cpu;
static int active;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void initialize(void) {
    crc32c_table_init();
    cpu = crc32c_detect_cpu();
    active = CCRC32C_TABLE;
#if CCRC32C_HAVE_X86
    if (cpu.sse42) {
        crc32c_sse42_init();
        active = CCRC32C_SSE42;
    }
    if (cpu.pclmul) {
        crc32c_join_init();
        crc32c_pclmul_init();
        active = CCRC32C_PCLMUL;
    }
    if (cpu.vpclmul) {
        crc32c_vpclmul_init();
        active = CCRC32C_VPCLMUL;
    }
#endif
}

static inline void ensure_initialized(void) {
    pthread_once(&init_once, initialize);
}

int ccrc32c_available(int implementation) {
    ensure_initialized();
    switch (implementation) {
    case CCRC32C_TABLE: return 1;
    case CCRC32C_SSE42: return cpu.sse42;
    case CCRC32C_PCLMUL: return cpu.pclmul;
    case CCRC32C_VPCLMUL: return cpu.vpclmul;
    default: return 0;
    }
}

int ccrc32c_active(void) {
    ensure_initialized();
    return active;
}

static uint32_t update_register(int implementation, uint32_t reg, const unsigned char *p, size_t n) {
    switch (implementation) {
#if CCRC32C_HAVE_X86
    case CCRC32C_SSE42: return crc32c_sse42_register(reg, p, n);
    case CCRC32C_PCLMUL: return crc32c_pclmul_register(reg, p, n);
    case CCRC32C_VPCLMUL: return crc32c_vpclmul_register(reg, p, n);
#endif
    default: return crc32c_table_register(reg, p, n);
    }
}

// Asked for a path this CPU does not have: the Swift face refuses that before calling, so
// reaching here is a caller bug, and running another path instead would let a test compare a
// path with itself.
static void require(int implementation) {
    if (!ccrc32c_available(implementation)) {
        abort();
    }
}

uint32_t ccrc32c_update(uint32_t crc, const void *p, size_t n) {
    ensure_initialized();
    return ~update_register(active, ~crc, (const unsigned char *)p, n);
}

uint32_t ccrc32c_update_using(int implementation, uint32_t crc, const void *p, size_t n) {
    require(implementation);
    return ~update_register(implementation, ~crc, (const unsigned char *)p, n);
}

uint32_t ccrc32c_update_software(uint32_t crc, const void *p, size_t n) {
    return ccrc32c_update_using(CCRC32C_TABLE, crc, p, n);
}

uint32_t ccrc32c_update_hardware(uint32_t crc, const void *p, size_t n) {
    return ccrc32c_update_using(CCRC32C_SSE42, crc, p, n);
}

int ccrc32c_hardware_available(void) {
    return ccrc32c_available(CCRC32C_SSE42);
}

uint32_t ccrc32c_combine(uint32_t crc1, uint32_t crc2, uint64_t len2) {
    // With finished (inverted) values the inversions cancel: crc(A||B) = crc(A)*x^(8|B|) ^ crc(B).
    return crc32c_gf2_multiply(crc1, crc32c_x_pow_bytes(len2)) ^ crc2;
}

// MARK: page scans

// n when p[0..<n] is all zero; otherwise an offset at or before its first non-zero byte.
static size_t first_nonzero_portable(const unsigned char *p, size_t n) {
    size_t offset = 0;
    for (; offset + 64 <= n; offset += 64) {
        uint64_t w[8];
        __builtin_memcpy(w, p + offset, sizeof w);
        if ((w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7]) != 0) {
            break;
        }
    }
    for (; offset + 8 <= n; offset += 8) {
        uint64_t w;
        __builtin_memcpy(&w, p + offset, sizeof w);
        if (w != 0) {
            return offset;
        }
    }
    for (; offset < n; offset++) {
        if (p[offset] != 0) {
            return offset & ~(size_t)7;
        }
    }
    return n;
}

static size_t first_nonzero(int implementation, const unsigned char *p, size_t n) {
#if CCRC32C_HAVE_X86
    if (implementation == CCRC32C_VPCLMUL && n % 64 == 0) {
        return crc32c_avx512_first_nonzero(p, n);
    }
#endif
    (void)implementation;
    return first_nonzero_portable(p, n);
}

static inline void mark_zero(uint64_t *zero_bitmap, size_t page) {
    zero_bitmap[page >> 6] |= (uint64_t)1 << (page & 63);
}

static uint32_t nonzero_pages_register(int implementation, uint32_t reg, const unsigned char *pages,
                                       size_t page_size, size_t page_count, uint64_t *zero_bitmap) {
    if (page_size == 0) {
        return reg;
    }
#if CCRC32C_HAVE_X86
    if (implementation == CCRC32C_VPCLMUL && page_size % 256 == 0) {
        return crc32c_vpclmul_nonzero_pages(reg, pages, page_size, page_count, zero_bitmap);
    }
#endif
    // The other paths keep no state between calls but the register, so a page that is not
    // zero is checksummed from its start: its leading zero bytes, just scanned, are read a
    // second time (from the L1/L2 cache).
    for (size_t page = 0; page < page_count; page++) {
        const unsigned char *p = pages + page * page_size;
        if (first_nonzero(implementation, p, page_size) == page_size) {
            mark_zero(zero_bitmap, page);
        } else {
            reg = update_register(implementation, reg, p, page_size);
        }
    }
    return reg;
}

uint32_t ccrc32c_update_nonzero_pages(uint32_t crc, const void *pages, size_t page_size, size_t page_count,
                                      uint64_t *zero_bitmap) {
    ensure_initialized();
    return ~nonzero_pages_register(active, ~crc, (const unsigned char *)pages, page_size, page_count, zero_bitmap);
}

uint32_t ccrc32c_update_nonzero_pages_using(int implementation, uint32_t crc, const void *pages, size_t page_size,
                                            size_t page_count, uint64_t *zero_bitmap) {
    require(implementation);
    return ~nonzero_pages_register(implementation, ~crc, (const unsigned char *)pages, page_size, page_count,
                                   zero_bitmap);
}

static size_t find_zero_pages(int implementation, const unsigned char *pages, size_t page_size, size_t page_count,
                              uint64_t *zero_bitmap) {
    if (page_size == 0) {
        return 0;
    }
    // Pages in use rarely start with a whole zero cache line, so the first line decides most
    // pages; then the last line (a page with data at its end only), then the rest.
    size_t line = page_size < 64 ? page_size : 64;
    size_t zeros = 0;
    for (size_t page = 0; page < page_count; page++) {
        const unsigned char *p = pages + page * page_size;
        if (first_nonzero_portable(p, line) != line) {
            continue;
        }
        if (first_nonzero_portable(p + page_size - line, line) != line) {
            continue;
        }
        size_t middle = page_size >= 2 * line ? page_size - 2 * line : 0;
        if (first_nonzero(implementation, p + line, middle) != middle) {
            continue;
        }
        mark_zero(zero_bitmap, page);
        zeros++;
    }
    return zeros;
}

size_t ccrc32c_find_zero_pages(const void *pages, size_t page_size, size_t page_count, uint64_t *zero_bitmap) {
    ensure_initialized();
    return find_zero_pages(active, (const unsigned char *)pages, page_size, page_count, zero_bitmap);
}

size_t ccrc32c_find_zero_pages_using(int implementation, const void *pages, size_t page_size, size_t page_count,
                                     uint64_t *zero_bitmap) {
    require(implementation);
    return find_zero_pages(implementation, (const unsigned char *)pages, page_size, page_count, zero_bitmap);
}
