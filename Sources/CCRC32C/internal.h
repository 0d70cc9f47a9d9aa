// Shared by the CCRC32C source files; not part of the module's interface.
//
// Every path works on the CRC *register*: no pre/post inversion (the public functions in
// dispatch.c do that). Representation is "reflected", as the crc32 instruction and the stored
// values use it: bit 31 of a register holds the coefficient of x^0, bit 0 that of x^31.
#ifndef CCRC32C_INTERNAL_H
#define CCRC32C_INTERNAL_H
#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__)
#define CCRC32C_HAVE_X86 1
#else
#define CCRC32C_HAVE_X86 0
#endif

#define CCRC32C_HIDDEN __attribute__((visibility("hidden")))
#define CASTAGNOLI 0x82F63B78u

// gf2.c: arithmetic modulo P, and the generator of every folding and shift constant.
CCRC32C_HIDDEN uint32_t crc32c_gf2_multiply(uint32_t a, uint32_t b);
/// x^bits mod P, as a register.
CCRC32C_HIDDEN uint32_t crc32c_x_pow(uint64_t bits);
CCRC32C_HIDDEN uint32_t crc32c_x_pow_bytes(uint64_t bytes);

/// The two multipliers that move a 128-bit lane `distance_bits` further along the message:
/// `low` multiplies the lane's first 8 bytes (x^(distance+32) mod P), `high` its last 8
/// (x^(distance-32) mod P). Stored shifted left by one, the form carry-less multiply of a
/// reflected operand needs (see gf2.c).
struct crc32c_fold {
    uint64_t low;
    uint64_t high;
};
CCRC32C_HIDDEN struct crc32c_fold crc32c_fold_constants(uint64_t distance_bits);

// table.c
CCRC32C_HIDDEN void crc32c_table_init(void);
CCRC32C_HIDDEN uint32_t crc32c_table_register(uint32_t reg, const unsigned char *p, size_t n);

// cpu.c
struct crc32c_cpu {
    int sse42;     // crc32 instruction
    int pclmul;    // 128-bit carry-less multiply (with SSE4.2)
    int vpclmul;   // AVX-512 F/BW/VL + VPCLMULQDQ, and the OS saves the ZMM state
};
CCRC32C_HIDDEN struct crc32c_cpu crc32c_detect_cpu(void);

#if CCRC32C_HAVE_X86
// sse42.c
CCRC32C_HIDDEN void crc32c_sse42_init(void);
CCRC32C_HIDDEN uint32_t crc32c_sse42_register(uint32_t reg, const unsigned char *p, size_t n);
/// One crc32 instruction per 8 bytes, no interleaving: heads, tails and short buffers.
CCRC32C_HIDDEN uint32_t crc32c_sse42_serial(uint32_t reg, const unsigned char *p, size_t n);

// join.c: the folding paths also run crc32 streams over regions of their own, each taking
// CRC32C_STREAM_BYTES per loop step, and join them at the end.
#define CRC32C_STREAM_BYTES 32
CCRC32C_HIDDEN void crc32c_join_init(void);
/// `reg` (the register after the region before the streams) continued over `count` streams'
/// regions of `steps * CRC32C_STREAM_BYTES` bytes each, whose registers started from zero.
CCRC32C_HIDDEN uint32_t crc32c_join_streams(uint32_t reg, const uint64_t *streams, int count, size_t steps);

// pclmul.c
CCRC32C_HIDDEN void crc32c_pclmul_init(void);
CCRC32C_HIDDEN uint32_t crc32c_pclmul_register(uint32_t reg, const unsigned char *p, size_t n);

// vpclmul.c
CCRC32C_HIDDEN void crc32c_vpclmul_init(void);
CCRC32C_HIDDEN uint32_t crc32c_vpclmul_register(uint32_t reg, const unsigned char *p, size_t n);
/// The fused page scan on the AVX-512 path; page_size a multiple of 256.
CCRC32C_HIDDEN uint32_t crc32c_vpclmul_nonzero_pages(uint32_t reg, const unsigned char *pages, size_t page_size,
                                                     size_t page_count, uint64_t *zero_bitmap);
/// n when p[0..<n] is all zero, else the offset of the 64-byte line holding its first non-zero
/// byte (n a multiple of 64).
CCRC32C_HIDDEN size_t crc32c_avx512_first_nonzero(const unsigned char *p, size_t n);
#endif

#endif
