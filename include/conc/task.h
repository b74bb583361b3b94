/* conc/task.h - what a running task can do, and registered tasks.
 *
 * Inside a task (a conc_fn run by any executor):
 *   conc_task_fail(code, fmt, ...)  report failure with the task's own code
 *   conc_task_stop_requested()      poll for a stop request (conc_future_stop)
 *   conc_task_wait_stop(timeout)    sleep, but wake on a stop request
 *   conc_task_stopped()             honour the request: outcome CONC_ECANCELED
 *
 * Registered tasks are the tasks that can cross a process or machine
 * boundary: a name, bytes in, bytes out.  Register them at load time with
 * CONC_TASK; any executor runs them by name (conc_executor_submit_task), and
 * executors that run tasks in other processes refuse anything else.
 *
 *   CONC_TASK(checksum, in, len, out) {
 *     uint32_t sum = 0;
 *     for (size_t i = 0; i < len; i++) sum += ((const unsigned char *)in)[i];
 *     return conc_bytes_append(out, &sum, sizeof sum);
 *   }
 */
#ifndef CONC_TASK_H
#define CONC_TASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "conc/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Inside a running task ---- */

/* Record that the current task failed with its own code (any int, never
 * confused with conc's codes) and a printf-style message (may be NULL).  The
 * future's outcome becomes CONC_ETASK whatever the task then returns; the
 * details come from conc_future_error().  Returns CONC_ETASK, so that a
 * registered task can `return conc_task_fail(...)`.  Outside a task it only
 * logs the message and returns CONC_EPERM.  If the message cannot be
 * allocated the code is still recorded. */
CONC_EXTERN int conc_task_fail(int code, const char *fmt, ...)
    CONC_PRINTF(2, 3);

/* True if a stop was requested for the current task (false outside a task).
 * Cheap: one atomic load. */
CONC_EXTERN bool conc_task_stop_requested(void);

/* Sleep up to timeout seconds, returning early when a stop is requested.
 * Returns 0 if a stop was requested, CONC_ETIMEDOUT if the time passed,
 * CONC_EPERM outside a task.  Blocks. */
CONC_EXTERN int conc_task_wait_stop(double timeout);

/* Honour a stop request: the future's outcome becomes CONC_ECANCELED (with
 * conc_future_cancelled() false).  Returns CONC_ECANCELED, or CONC_EPERM
 * outside a task. */
CONC_EXTERN int conc_task_stopped(void);

/* ---- Bytes ---- */

/* A growable byte buffer.  A registered task appends its output to out; the
 * buffer belongs to the library.  Buffers of your own start zeroed
 * (conc_bytes b = {0}) and end with conc_bytes_free. */
typedef struct conc_bytes {
  unsigned char *data;
  size_t len;
  size_t cap;
} conc_bytes;

/* Make room for n more bytes (data + len .. data + len + n - 1 writable
 * afterwards; len is unchanged).  Returns 0, CONC_EINVAL or CONC_ENOMEM. */
CONC_EXTERN int conc_bytes_reserve(conc_bytes *b, size_t n);
/* Append n bytes from p.  Returns 0, CONC_EINVAL or CONC_ENOMEM. */
CONC_EXTERN int conc_bytes_append(conc_bytes *b, const void *p, size_t n);
/* Free the buffer and zero b. */
CONC_EXTERN void conc_bytes_free(conc_bytes *b);

/* ---- Registered tasks ---- */

/* Return 0 on success, or a failure: conc_task_fail()'s return, or any
 * non-zero code (then recorded as the task's own code). */
typedef int (*conc_task_fn)(const void *in, size_t len, conc_bytes *out);

/* Register fn under name (1 to 63 bytes of [A-Za-z0-9_.:-]).  Registering
 * the same name and function again is a no-op.  Returns 0, CONC_EINVAL,
 * CONC_EEXIST (name taken by another function) or CONC_ENOMEM.  Thread-safe;
 * normally called from CONC_TASK's constructor before main. */
CONC_EXTERN int conc_task_register(const char *name, conc_task_fn fn);

/* Find a task by name.  Returns 0 with *fn set, CONC_ENOENT, CONC_EINVAL. */
CONC_EXTERN int conc_task_lookup(const char *name, conc_task_fn *fn);

/* Number of registered tasks, and the i-th name in sorted order (NULL when
 * i is out of range).  The string lives as long as the process. */
CONC_EXTERN size_t conc_task_count(void);
CONC_EXTERN const char *conc_task_name(size_t i);

/* A 64-bit hash of the sorted registered names: processes that agree on it
 * agree on the registry (used by cross-process executors at start-up). */
CONC_EXTERN uint64_t conc_task_registry_hash(void);

/* Run a registered task here, now, on the calling thread: out receives its
 * output.  Returns 0, CONC_ENOENT, CONC_EINVAL, or CONC_ETASK with the
 * task's own code in *code and its message copied (truncated) into msg
 * (code and msg may be NULL / msg_size 0). */
CONC_EXTERN int conc_task_run(const char *name, const void *in, size_t len,
                              conc_bytes *out, int *code, char *msg,
                              size_t msg_size);

/* Define and register a task at load time:
 *   CONC_TASK(name, in, len, out) { ... return 0; }
 * defines `static int name(const void *in, size_t len, conc_bytes *out)`. */
#define CONC_TASK(name, in, len, out)                                         \
  static int name(const void *in, size_t len, conc_bytes *out);               \
  __attribute__((constructor)) static void conc__register_##name(void) {     \
    conc_task_register_at_load(#name, name);                                 \
  }                                                                           \
  static int name(const void *in, size_t len, conc_bytes *out)

/* Used by CONC_TASK: as conc_task_register, but reports a failure through
 * the log handler instead of returning it. */
CONC_EXTERN void conc_task_register_at_load(const char *name,
                                             conc_task_fn fn);

#ifdef __cplusplus
}
#endif
#endif
