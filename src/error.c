/* error.c - conc_strerror and conc_err_name from the table in error.h. */
#include "internal.h"

const char *conc_strerror(int err) {
  switch (err) {
  case 0:
    return "success";
#define X(name, val, msg)                                                     \
  case val:                                                                   \
    return msg;
    CONC_ERRNO_MAP(X)
#undef X
  default: {
    /* -errno from the system (a descriptor limit, say): its description */
    const char *d = err < 0 && err > -4000 ? strerrordesc_np(-err) : NULL;
    return d ? d : "unknown error";
  }
  }
}

const char *conc_err_name(int err) {
  switch (err) {
  case 0:
    return "OK";
#define X(name, val, msg)                                                     \
  case val:                                                                   \
    return #name;
    CONC_ERRNO_MAP(X)
#undef X
  default:
    return "UNKNOWN";
  }
}
