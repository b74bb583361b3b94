/* conc/error.h - error codes.
 *
 * Every conc call that can fail returns 0 on success or a negative CONC_E*
 * code.  Where an errno value fits, the code equals -errno; codes that only
 * conc has live in a reserved range below -4000.  One table below generates
 * the constants, conc_strerror() and conc_err_name().
 */
#ifndef CONC_ERROR_H
#define CONC_ERROR_H

#include <errno.h>
#include "conc/visibility.h"

#ifdef __cplusplus
extern "C" {
#endif

/* X(NAME, value, message) */
#define CONC_ERRNO_MAP(X)                                                     \
  X(EPERM, -EPERM, "operation not permitted here")                           \
  X(ENOENT, -ENOENT, "no such entry")                                        \
  X(EINTR, -EINTR, "interrupted")                                            \
  X(EAGAIN, -EAGAIN, "would block")                                          \
  X(ENOMEM, -ENOMEM, "out of memory")                                        \
  X(EBUSY, -EBUSY, "resource busy")                                          \
  X(EEXIST, -EEXIST, "already exists")                                       \
  X(EINVAL, -EINVAL, "invalid argument")                                     \
  X(ERANGE, -ERANGE, "value out of range")                                   \
  X(EDEADLK, -EDEADLK, "operation would deadlock")                           \
  X(ENOTSUP, -ENOTSUP, "operation not supported")                            \
  X(EOVERFLOW, -EOVERFLOW, "released too many times")                        \
  X(ETIMEDOUT, -ETIMEDOUT, "timed out")                                      \
  X(ECANCELED, -ECANCELED, "cancelled")                                      \
  X(EOWNERDEAD, -EOWNERDEAD, "previous owner died")                          \
  X(EPROTO, -EPROTO, "protocol error: bad bytes from a peer")                \
  X(EBADF, -EBADF, "bad file descriptor")                                    \
  X(EPIPE, -EPIPE, "broken pipe (peer closed)")                              \
  X(EADDRINUSE, -EADDRINUSE, "address already in use")                       \
  X(ECONNRESET, -ECONNRESET, "connection reset by peer")                     \
  X(ECONNREFUSED, -ECONNREFUSED, "connection refused")                       \
  X(ETASK, -4001, "task failed")                                             \
  X(EBROKEN, -4002, "broken")                                                \
  X(ESHUTDOWN, -4003, "executor is shut down")                               \
  X(EWORKER, -4004, "worker died")                                           \
  X(EKILLED, -4005, "task killed after its run timeout")                     \
  X(EDEADLINE, -4006, "deadline passed before the task started")             \
  X(ECLOSED, -4007, "closed")                                                \
  X(EREGISTRY, -4008, "task registries differ between processes")

enum conc_errno {
  CONC_OK = 0,
#define CONC__ERR_ENUM(name, val, msg) CONC_##name = (val),
  CONC_ERRNO_MAP(CONC__ERR_ENUM)
#undef CONC__ERR_ENUM
  CONC__ERR_FORCE_INT = -2147483647
};

/* A short English description of err ("timed out").  Other negative
 * values give the system's description if they are -errno (-EMFILE: "Too
 * many open files"), else "unknown error"; 0 gives "success".  Any
 * thread; never fails; the string is static. */
CONC_EXTERN const char *conc_strerror(int err);

/* The code's name without prefix, e.g. "ETIMEDOUT"; "OK" for 0 and
 * "UNKNOWN" for anything else.  Any thread; the string is static. */
CONC_EXTERN const char *conc_err_name(int err);

#ifdef __cplusplus
}
#endif
#endif
