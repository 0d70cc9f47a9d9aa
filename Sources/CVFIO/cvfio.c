#include "CVFIO.h"
