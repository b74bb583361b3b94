/* version.c - the loaded library's version. */
#include "conc/version.h"

#define CONC__STR2(x) #x
#define CONC__STR(x) CONC__STR2(x)

unsigned conc_version(void) { return CONC_VERSION_HEX; }

const char *conc_version_string(void) {
  return CONC__STR(CONC_VERSION_MAJOR) "." CONC__STR(
      CONC_VERSION_MINOR) "." CONC__STR(CONC_VERSION_PATCH);
}
