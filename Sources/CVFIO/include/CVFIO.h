// CVFIO: the project's own definitions of the Linux VFIO uAPI (see cvfio_uapi.h).
#ifndef CVFIO_H
#define CVFIO_H
#include "cvfio_uapi.h"
#endif
