#ifndef CVFIO_UAPI_H
#define CVFIO_UAPI_H
#include <stdint.h>
#endif
