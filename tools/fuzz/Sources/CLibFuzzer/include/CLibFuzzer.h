// libFuzzer's documented driver entry point. SwiftPM gives every executable its own
// `main`, so instead of libFuzzer's main we call this from ours.
#ifndef CLIBFUZZER_H
#define CLIBFUZZER_H
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
