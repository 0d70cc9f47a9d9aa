#ifndef CVFIO_SYSCHECK_H
#define CVFIO_SYSCHECK_H
#endif
