// Compares cvfio_uapi.h with the system <linux/vfio.h> (Debian linux-libc-dev 6.1).
// check.c asserts agreement at compile time; these functions let a Swift test
// check the same rows at run time and see the known, documented differences.
#ifndef CVFIO_SYSCHECK_H
#define CVFIO_SYSCHECK_H

#include <stddef.h>
#include <stdint.h>

// One compared fact: a constant's value, a struct's size, or a field's offset/width.
struct cvfiocheck_row {
    const char *name; // e.g. "VFIO_DEVICE_FEATURE", "sizeof vfio_bitmap", "offsetof vfio_bitmap.data"
    int64_t ours;     // from cvfio_uapi.h
    int64_t system;   // from <linux/vfio.h>
};

// Facts both headers define and that must be equal.
size_t cvfiocheck_agreeing_count(void);
struct cvfiocheck_row cvfiocheck_agreeing_row(size_t index);

// Facts both headers define but that differ on purpose (upstream grew them).
size_t cvfiocheck_differing_count(void);
struct cvfiocheck_row cvfiocheck_differing_row(size_t index);

#endif
