// Compiles our definitions next to the system 6.1 <linux/vfio.h>. The `cvfio_`/`CVFIO_`
// prefix keeps the names apart, so every shared fact can be compared directly.
#include "CVFIOSystemHeaderCheck.h"

#include <CVFIO.h>
#include <linux/vfio.h>
#include <stddef.h>

#define WIDTH(s, f) sizeof(((struct s *)0)->f)
#define VALUE(n) ROW("VFIO_" #n, CVFIO_##n, VFIO_##n)
#define SIZE(s) ROW("sizeof vfio_" #s, sizeof(struct cvfio_##s), sizeof(struct vfio_##s))
#define FLEX(s, f) \
    ROW("offsetof vfio_" #s "." #f, offsetof(struct cvfio_##s, f), offsetof(struct vfio_##s, f))
#define FIELD(s, f) \
    FLEX(s, f) ROW("sizeof vfio_" #s "." #f, WIDTH(cvfio_##s, f), WIDTH(vfio_##s, f))

// Pass 1: every shared fact agrees, or this file does not compile.
#define ROW(name, ours, system) _Static_assert((ours) == (system), name);
#include "agreement_rows.h"
#undef ROW

// Pass 2: the same facts as a table for the Swift test.
#define ROW(name, ours, system) {name, (int64_t)(ours), (int64_t)(system)},
static const struct cvfiocheck_row agreeing[] = {
#include "agreement_rows.h"
};
#undef ROW

// Known differences. Upstream appended `pad` to vfio_device_info (~6.6); the kernel
// accepts argsz 20 or 24, so our 24-byte struct works on 6.1 kernels too.
_Static_assert(sizeof(struct cvfio_device_info) == 24, "ours: upstream size");
_Static_assert(sizeof(struct vfio_device_info) == 20, "system: 6.1 size");
static const struct cvfiocheck_row differing[] = {
    {"sizeof vfio_device_info", sizeof(struct cvfio_device_info), sizeof(struct vfio_device_info)},
};

size_t cvfiocheck_agreeing_count(void) { return sizeof agreeing / sizeof agreeing[0]; }

struct cvfiocheck_row cvfiocheck_agreeing_row(size_t index) {
    return index < cvfiocheck_agreeing_count() ? agreeing[index] : (struct cvfiocheck_row){0};
}

size_t cvfiocheck_differing_count(void) { return sizeof differing / sizeof differing[0]; }

struct cvfiocheck_row cvfiocheck_differing_row(size_t index) {
    return index < cvfiocheck_differing_count() ? differing[index] : (struct cvfiocheck_row){0};
}
