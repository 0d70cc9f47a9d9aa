#include "CVFIOSystemHeaderCheck.h"
