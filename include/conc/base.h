/* conc/base.h - clock, allocator and log hooks, library-wide calls.
 *
 * Time: conc measures time in seconds as double.  Timeouts are relative
 * (negative waits forever, 0 polls); deadlines, taken by the *_until calls,
 * are absolute values of conc_now().
 */
#ifndef CONC_BASE_H
#define CONC_BASE_H

#include <stddef.h>
#include "conc/visibility.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A generic task: runs on some thread with arg, returns a result pointer that
 * the future stores.  The task may report a failure with conc_task_fail(). */
typedef void *(*conc_fn)(void *arg);

/* Seconds on a monotonic clock (CLOCK_MONOTONIC) with an arbitrary origin.
 * Any thread; never fails; no allocation. */
CONC_EXTERN double conc_now(void);

/* Sleep for the given seconds (retries across EINTR).  Returns 0, or
 * CONC_EINVAL for a negative or NaN duration.  Blocks. */
CONC_EXTERN int conc_sleep(double seconds);

/* Number of CPUs this process may use: the affinity mask, reduced by a cgroup
 * v2 CPU quota (cpu.max) when one is set, at least 1.  Any thread. */
CONC_EXTERN int conc_cpu_count(void);

/* Replace the allocator used for every allocation conc makes.  All four must
 * be given (NULL restores the C library's).  Call before any other conc call
 * or after every conc object is gone.  Returns 0 or CONC_EINVAL if only some
 * functions are NULL.  Not thread-safe. */
typedef void *(*conc_malloc_fn)(size_t size);
typedef void *(*conc_realloc_fn)(void *ptr, size_t size);
typedef void *(*conc_calloc_fn)(size_t count, size_t size);
typedef void (*conc_free_fn)(void *ptr);
CONC_EXTERN int conc_set_allocator(conc_malloc_fn malloc_fn,
                                   conc_realloc_fn realloc_fn,
                                   conc_calloc_fn calloc_fn,
                                   conc_free_fn free_fn);

/* What the library reports without a caller to return to: a done callback
 * that failed, an initializer that failed, an executor reclaimed at exit.  */
typedef enum conc_log_level {
  CONC_LOG_DEBUG = 0,
  CONC_LOG_INFO = 1,
  CONC_LOG_WARN = 2,
  CONC_LOG_ERROR = 3
} conc_log_level;

typedef void (*conc_log_fn)(conc_log_level level, const char *msg, void *ud);

/* Install the log handler (NULL restores the default, which writes
 * "conc: <level>: <msg>" lines to stderr for WARN and above).  The handler
 * may run on any thread, must not block for long and must not call back into
 * the function that logged.  Any thread. */
CONC_EXTERN void conc_set_log_handler(conc_log_fn fn, void *ud);

/* Report msg through the log handler, as the library does.  Any thread. */
CONC_EXTERN void conc_log(conc_log_level level, const char *fmt, ...)
    CONC_PRINTF(2, 3);

/* Shut down and free the default executor, if it was started (see
 * executor.h), waiting for its tasks.  Later calls that need it start a new
 * one.  Returns 0, or CONC_EDEADLK when called from one of its own workers.
 * Blocks.  Any thread. */
CONC_EXTERN int conc_library_shutdown(void);

/* Programs that use process pools (conc/process_pool.h) call this first
 * thing in main, as MPI programs call MPI_Init:
 *
 *   int main(int argc, char **argv) {
 *     conc_init(&argc, &argv);
 *
 * A process pool's fork server is a fresh execution of the program; in it,
 * conc_init never returns (it serves, then exits), so code placed before
 * the call runs again there: keep it free of side effects.  Tasks must be
 * registered by then (CONC_TASK registers them before main).  In the
 * program itself conc_init returns 0 (argc and argv are left alone; either
 * may be NULL).  Calling it again is harmless.  Thread pools and
 * coroutines need no conc_init.  Any thread, but normally main's. */
CONC_EXTERN int conc_init(int *argc, char ***argv);

#ifdef __cplusplus
}
#endif
#endif
