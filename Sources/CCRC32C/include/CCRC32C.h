// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of every stream record.
//
// All functions take and return the *finished* CRC value (the one that is stored in a
// stream and printed), so a running checksum starts at 0 and can be continued across
// pieces: update(update(0, a), b) == update(0, a || b).
//
// Four paths compute it; the fastest one this CPU and OS support is chosen once, on first use:
// a slicing-by-8 table (any CPU), the SSE4.2 crc32 instruction on three interleaved streams,
// carry-less multiply folding of 128-bit lanes (PCLMULQDQ), and the same folding on 512-bit
// registers (AVX-512 with VPCLMULQDQ).
#ifndef CCRC32C_H
#define CCRC32C_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// The implementations, slowest first; values are stable (the Swift face uses them).
#define CCRC32C_TABLE 0
#define CCRC32C_SSE42 1
#define CCRC32C_PCLMUL 2
#define CCRC32C_VPCLMUL 3

/// Continues `crc` over `n` bytes at `p`, on the fastest path this CPU supports.
uint32_t ccrc32c_update(uint32_t crc, const void *p, size_t n);

/// 1 when `implementation` can run on this CPU and OS (and this build has it), else 0.
int ccrc32c_available(int implementation);

/// The implementation ccrc32c_update and the page scans use.
int ccrc32c_active(void);

/// ccrc32c_update on the given path. Aborts when it is not available, so a test can never
/// silently compare one path with itself. Inputs shorter than a path's block (a few hundred
/// bytes for the folding paths) go through the next simpler path's code.
uint32_t ccrc32c_update_using(int implementation, uint32_t crc, const void *p, size_t n);

/// The table path, whatever the CPU: ccrc32c_update_using(CCRC32C_TABLE, ...).
uint32_t ccrc32c_update_software(uint32_t crc, const void *p, size_t n);

/// The SSE4.2 path: ccrc32c_update_using(CCRC32C_SSE42, ...); aborts without SSE4.2.
uint32_t ccrc32c_update_hardware(uint32_t crc, const void *p, size_t n);

/// 1 when the CPU has the SSE4.2 crc32 instruction (and this build can use it), else 0.
int ccrc32c_hardware_available(void);

/// crc(A || B) from crc1 = crc(A), crc2 = crc(B) and len2 = |B|, without the bytes.
uint32_t ccrc32c_combine(uint32_t crc1, uint32_t crc2, uint64_t len2);

/// Page streaming: continues `crc` over those of the `page_count` pages of `page_size` bytes
/// at `pages` that are not all zero, in order, and sets bit i of `zero_bitmap` (LSB-first
/// 64-bit words, at least ceil(page_count / 64) of them, zeroed by the caller) for each
/// all-zero page i. On the AVX-512 path with a page size that is a multiple of 256, every byte
/// is loaded once: a page is scanned for zero and, from its first non-zero block on, folded
/// into the CRC in the same pass. Returns `crc` unchanged when every page is zero.
uint32_t ccrc32c_update_nonzero_pages(uint32_t crc, const void *pages, size_t page_size, size_t page_count,
                                      uint64_t *zero_bitmap);

/// ccrc32c_update_nonzero_pages on the given path; aborts when it is not available.
uint32_t ccrc32c_update_nonzero_pages_using(int implementation, uint32_t crc, const void *pages, size_t page_size,
                                            size_t page_count, uint64_t *zero_bitmap);

/// Sets bit i of `zero_bitmap` (as above) for each all-zero page i and returns how many there
/// are. A page that is not zero usually costs a look at its first 64 bytes (then its last 64).
size_t ccrc32c_find_zero_pages(const void *pages, size_t page_size, size_t page_count, uint64_t *zero_bitmap);

/// ccrc32c_find_zero_pages with the given path's zero scan (AVX-512 for CCRC32C_VPCLMUL,
/// portable C otherwise); aborts when it is not available.
size_t ccrc32c_find_zero_pages_using(int implementation, const void *pages, size_t page_size, size_t page_count,
                                     uint64_t *zero_bitmap);

#ifdef __cplusplus
}
#endif
#endif
