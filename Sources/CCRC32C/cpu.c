// What this CPU and kernel let us use, read once through cpuid. A cpuid feature bit says the
// CPU has an instruction; the AVX-512 registers are usable only if the OS also saves them on a
// context switch, which XCR0 (read with xgetbv, allowed once OSXSAVE is set) tells.
#include "internal.h"

#if CCRC32C_HAVE_X86
#include <cpuid.h>

// XCR0 bits: SSE (1), AVX (2), opmask (5), upper halves of ZMM0-15 (6), ZMM16-31 (7).
#define XCR0_AVX512_STATE 0xE6u

static uint64_t read_xcr0(void) {
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}

struct crc32c_cpu crc32c_detect_cpu(void) {
    struct crc32c_cpu cpu = {0, 0, 0};
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) {
        return cpu;
    }
    cpu.sse42 = (ecx >> 20) & 1;
    cpu.pclmul = cpu.sse42 && ((ecx >> 1) & 1);
    int osxsave = (ecx >> 27) & 1;
    if (!osxsave || !cpu.pclmul || !__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) {
        return cpu;
    }
    int avx512f = (ebx >> 16) & 1, avx512bw = (ebx >> 30) & 1, avx512vl = (ebx >> 31) & 1;
    int vpclmulqdq = (ecx >> 10) & 1;
    int os_saves_zmm = (read_xcr0() & XCR0_AVX512_STATE) == XCR0_AVX512_STATE;
    cpu.vpclmul = avx512f && avx512bw && avx512vl && vpclmulqdq && os_saves_zmm;
    return cpu;
}
#else
struct crc32c_cpu crc32c_detect_cpu(void) {
    struct crc32c_cpu cpu = {0, 0, 0};
    return cpu;
}
#endif
