// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of every stream record.
//
// All functions take and return the *finished* CRC value (the one that is stored in a
// stream and printed), so a running checksum starts at 0 and can be continued across
// pieces: update(update(0, a), b) == update(0, a || b).
#ifndef CCRC32C_H
#define CCRC32C_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Continues `crc` over `n` bytes at `p`, on the fastest path this CPU supports.
uint32_t ccrc32c_update(uint32_t crc, const void *p, size_t n);

/// The portable table path (slicing-by-8), whatever the CPU. For tests and comparison.
uint32_t ccrc32c_update_software(uint32_t crc, const void *p, size_t n);

/// The SSE4.2 path. Only valid when ccrc32c_hardware_available() returns 1; otherwise it
/// aborts, so a test can never silently compare the software path with itself.
uint32_t ccrc32c_update_hardware(uint32_t crc, const void *p, size_t n);

/// 1 when the CPU has the SSE4.2 crc32 instruction (and this build can use it), else 0.
int ccrc32c_hardware_available(void);

/// crc(A || B) from crc1 = crc(A), crc2 = crc(B) and len2 = |B|, without the bytes.
uint32_t ccrc32c_combine(uint32_t crc1, uint32_t crc2, uint64_t len2);

#ifdef __cplusplus
}
#endif
#endif
