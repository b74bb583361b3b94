/* fuzz-wire.c - libFuzzer target for the wire format (see wire-fuzz.h).
 * Built with clang in the sanitizer build; `make test` runs it briefly,
 * `make fuzz` for longer. */
#include "wire-fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  return wire_fuzz_one(data, size);
}
