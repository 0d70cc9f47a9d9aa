// libnuma places the engine's I/O buffers on the device's NUMA node.
// Debian package: libnuma-dev. Only VFIOSyscalls imports this module.
#ifndef CNUMA_SHIM_H
#define CNUMA_SHIM_H
#include <numa.h>
#include <numaif.h>
#endif
