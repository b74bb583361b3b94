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
  default:
    return "unknown error";
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
