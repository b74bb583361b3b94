/* conc/version.h - library version. */
#ifndef CONC_VERSION_H
#define CONC_VERSION_H

#include "conc/visibility.h"

#define CONC_VERSION_MAJOR 0
#define CONC_VERSION_MINOR 1
#define CONC_VERSION_PATCH 0
#define CONC_VERSION_HEX                                                      \
  ((CONC_VERSION_MAJOR << 16) | (CONC_VERSION_MINOR << 8) | CONC_VERSION_PATCH)

#ifdef __cplusplus
extern "C" {
#endif

/* The version of the library actually loaded, as CONC_VERSION_HEX.  Compare
 * with the macro to detect a header/library mismatch.  Any thread. */
CONC_EXTERN unsigned conc_version(void);

/* The same as a static string, "0.1.0".  Any thread. */
CONC_EXTERN const char *conc_version_string(void);

#ifdef __cplusplus
}
#endif
#endif
