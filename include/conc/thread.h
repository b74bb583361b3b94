/* conc/thread.h - threads, timers and thread-local values.
 *
 * Python's threading.Thread, one to one:
 *
 *   Thread(target=f, args=(x,)).start()   conc_thread_start(&t, f, x, NULL)
 *   class T(Thread): def run(self): ...   struct t { conc_thread base; ... };
 *                                         conc_thread_start_run(&t.base, run, NULL)
 *   t.join(timeout)                       conc_thread_join(&t, timeout, &res)
 *   t.is_alive(), t.name, t.native_id     conc_thread_is_alive() ...
 *   threading.Timer(5, f).start()         conc_timer_start(&tm, 5, f, arg)
 *   threading.local()                     conc_local_init(&l, dtor)
 *
 * A conc_thread is caller-allocated storage (embed it in your own struct) and
 * must stay valid until the thread has been joined, or, for a detached
 * thread, until it has finished.  conc never frees it.
 *
 * Signals: a thread started here inherits the caller's signal mask, as with
 * pthread_create.  conc's own worker threads block asynchronous signals, so
 * SIGINT and friends reach the program's threads.
 */
#ifndef CONC_THREAD_H
#define CONC_THREAD_H

#include <stdbool.h>
#include <stddef.h>
#include "conc/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Opaque, caller-allocated.  Zero-initialised storage is "not started". */
typedef struct conc_thread {
  union {
    unsigned char bytes[128];
    void *align_p_;
    long long align_ll_;
    double align_d_;
  } opaque_;
} conc_thread;

/* The run-override pattern: run receives the conc_thread it was started on;
 * use CONC_CONTAINER_OF to reach the struct that embeds it. */
typedef void *(*conc_thread_run_fn)(conc_thread *self);

#define CONC_CONTAINER_OF(ptr, type, member)                                  \
  ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

typedef struct conc_thread_options {
  size_t size;        /* sizeof(conc_thread_options); set by _init */
  const char *name;   /* copied; NULL gives "conc-thread-N".  The kernel sees
                         the first 15 bytes. */
  size_t stack_size;  /* bytes; 0 for the system default */
  bool detached;      /* Python's daemon: never joined; its storage must
                         outlive it.  Process exit ends it, as any thread. */
} conc_thread_options;

/* Fill o with defaults.  Call before setting fields, so that a newer library
 * with a larger struct still works with an older binary. */
CONC_EXTERN void conc_thread_options_init(conc_thread_options *o);

/* Start a thread running fn(arg).  opts may be NULL.  t must not be a thread
 * that is running or not yet joined.  Returns 0, CONC_EINVAL (NULL t or fn,
 * bad options, t running or not joined), CONC_EAGAIN (the system refused a
 * thread) or CONC_ENOMEM.
 * On failure nothing runs.  Any thread. */
CONC_EXTERN int conc_thread_start(conc_thread *t, conc_fn fn, void *arg,
                                  const conc_thread_options *opts);

/* Start a thread running run(t): the "override run" pattern.  Same returns
 * as conc_thread_start. */
CONC_EXTERN int conc_thread_start_run(conc_thread *t, conc_thread_run_fn run,
                                      const conc_thread_options *opts);

/* Wait for t to finish, at most timeout seconds (negative: forever).  On 0,
 * *result (if result is not NULL) holds what the thread function returned and
 * t may be started again.  Returns 0, CONC_ETIMEDOUT (still running; join
 * again later), CONC_EDEADLK (t is the calling thread), CONC_EINVAL (t was
 * never started, is detached or already joined).  Blocks.  Any thread, but
 * only one joiner at a time. */
CONC_EXTERN int conc_thread_join(conc_thread *t, double timeout,
                                 void **result);
/* The same with an absolute deadline on conc_now()'s clock. */
CONC_EXTERN int conc_thread_join_until(conc_thread *t, double deadline,
                                       void **result);

/* True from a successful start until the thread function has returned.
 * Any thread. */
CONC_EXTERN bool conc_thread_is_alive(const conc_thread *t);

/* The thread's name ("" if never started).  The string lives in t.  */
CONC_EXTERN const char *conc_thread_name(const conc_thread *t);

/* The kernel's thread id (gettid) of t, or 0 before it started running.  */
CONC_EXTERN int conc_thread_native_id(const conc_thread *t);

/* The conc_thread that runs the caller, or NULL on threads conc did not
 * start (main, foreign threads, pool workers).  Any thread. */
CONC_EXTERN conc_thread *conc_thread_current(void);

/* The kernel's thread id of the caller (threading.get_native_id()). */
CONC_EXTERN int conc_thread_get_native_id(void);

/* ---- Timer: run fn(arg) on its own thread after a delay, unless cancelled. */

typedef struct conc_timer {
  union {
    unsigned char bytes[192];
    void *align_p_;
    long long align_ll_;
    double align_d_;
  } opaque_;
} conc_timer;

/* Start t: after interval seconds (>= 0) fn(arg) runs on the timer's thread.
 * Returns 0, CONC_EINVAL, CONC_EAGAIN or CONC_ENOMEM.  Any thread. */
CONC_EXTERN int conc_timer_start(conc_timer *t, double interval, conc_fn fn,
                                 void *arg);

/* Stop t if it is still waiting.  Returns 0 if fn will not run, CONC_EBUSY if
 * fn already started (or ran), CONC_EINVAL if t was never started.  Either
 * way the timer must still be joined.  Any thread; never blocks. */
CONC_EXTERN int conc_timer_cancel(conc_timer *t);

/* Wait for the timer's thread to end.  *fired (may be NULL) tells whether fn
 * ran.  Returns as conc_thread_join.  Blocks. */
CONC_EXTERN int conc_timer_join(conc_timer *t, double timeout, bool *fired);

/* ---- Thread-local values (threading.local) ---- */

typedef struct conc_local {
  unsigned key_;
  unsigned valid_;
} conc_local;

/* Create a thread-local slot.  dtor (may be NULL) runs on a thread's non-NULL
 * value when that thread exits.  Returns 0, CONC_EAGAIN (no keys left) or
 * CONC_EINVAL. */
CONC_EXTERN int conc_local_init(conc_local *l, void (*dtor)(void *value));
/* Delete the slot; dtors do not run.  Returns 0 or CONC_EINVAL. */
CONC_EXTERN int conc_local_destroy(conc_local *l);
/* The calling thread's value, NULL if unset.  Never blocks. */
CONC_EXTERN void *conc_local_get(const conc_local *l);
/* Set the calling thread's value.  Returns 0, CONC_EINVAL or CONC_ENOMEM. */
CONC_EXTERN int conc_local_set(conc_local *l, void *value);

#ifdef __cplusplus
}
#endif
#endif
