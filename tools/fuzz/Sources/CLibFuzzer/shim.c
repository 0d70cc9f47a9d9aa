// Empty: the target exists only to export CLibFuzzer.h to Swift.
#include "CLibFuzzer.h"
