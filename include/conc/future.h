/* conc/future.h - futures (concurrent.futures.Future).
 *
 * A future is the result of one task: pending, then running, then finished
 * with a result or an error, or cancelled while still pending.  Futures are
 * reference-counted: submit hands the caller one reference, which the caller
 * drops with conc_future_release().  A future stays valid after its executor
 * is destroyed.
 *
 * Outcomes, as returned by conc_future_result() and conc_future_error():
 *   0                the task returned a result
 *   CONC_ETASK       the task failed with its own code and message
 *                    (conc_task_fail); see conc_future_error()
 *   CONC_ECANCELED   cancelled while pending (conc_future_cancelled() is
 *                    true), or the task honoured a stop request (false)
 *   CONC_EBROKEN     the executor broke (initializer failed) before it ran
 *   CONC_EWORKER     the worker process died under the task
 *   CONC_EKILLED     the task was killed after its run timeout
 *   CONC_EDEADLINE   the task had not started by its deadline
 *   CONC_ENOMEM      the executor could not allocate what the task needed
 *
 * After fork(), a future of an executor created in the parent that is not
 * done in the child never completes there: waiting on it in the child
 * returns CONC_EBROKEN at once instead of hanging.
 */
#ifndef CONC_FUTURE_H
#define CONC_FUTURE_H

#include <stdbool.h>
#include <stddef.h>
#include "conc/base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct conc_future conc_future;

typedef enum conc_future_state {
  CONC_FUTURE_PENDING = 0,
  CONC_FUTURE_RUNNING = 1,
  CONC_FUTURE_FINISHED = 2,
  CONC_FUTURE_CANCELLED = 3
} conc_future_state;

/* A done callback.  It runs once, when f finishes (any outcome), on the
 * thread that completed f, or at once on the caller's thread if f is already
 * done.  Return 0; a non-zero return is reported through the log handler and
 * changes nothing else.  It must not block for long. */
typedef int (*conc_future_cb)(conc_future *f, void *arg);

/* A future not bound to any task, completed by hand with
 * conc_future_set_result/_set_error (for adapters, as Python's Future()).
 * *out holds one reference.  Returns 0, CONC_EINVAL or CONC_ENOMEM. */
CONC_EXTERN int conc_future_create(conc_future **out);

/* Take one more reference; returns f.  Any thread. */
CONC_EXTERN conc_future *conc_future_retain(conc_future *f);
/* Drop one reference; the last one frees f.  NULL is ignored.  Releasing
 * more often than retained is a debug assertion.  Any thread. */
CONC_EXTERN void conc_future_release(conc_future *f);

/* Snapshot of the state.  Any thread; never blocks. */
CONC_EXTERN conc_future_state conc_future_get_state(const conc_future *f);
CONC_EXTERN bool conc_future_done(const conc_future *f);      /* finished or cancelled */
CONC_EXTERN bool conc_future_running(const conc_future *f);
CONC_EXTERN bool conc_future_cancelled(const conc_future *f); /* cancelled while pending */

/* Cancel f if it is still pending: it will never run, its outcome is
 * CONC_ECANCELED and its callbacks run.  Returns true if f is now cancelled
 * (also if it already was), false if it is running or finished (use
 * conc_future_stop for a running task).  Any thread; never blocks. */
CONC_EXTERN bool conc_future_cancel(conc_future *f);

/* Ask the task to stop: it sees the request through conc_task_stop_requested
 * or conc_task_wait_stop and may honour it (its outcome is then
 * CONC_ECANCELED with cancelled() false) or ignore it.  A pending task sees
 * the request as soon as it starts.  Returns 0, or CONC_EINVAL if f is done.
 * Any thread; never blocks. */
CONC_EXTERN int conc_future_stop(conc_future *f);

/* Wait at most timeout seconds for f to be done and return its outcome (see
 * the top of this file), *result (may be NULL) receiving the task's result
 * on 0 (NULL otherwise).  CONC_ETIMEDOUT if not done in time.  A pool worker
 * that waits runs other queued tasks of its pool meanwhile.  Blocks. */
CONC_EXTERN int conc_future_result(conc_future *f, double timeout,
                                   void **result);
CONC_EXTERN int conc_future_result_until(conc_future *f, double deadline,
                                         void **result);

/* Wait for f to be done without taking its outcome.  Returns 0 or
 * CONC_ETIMEDOUT (or CONC_EBROKEN in a forked child, see above). */
CONC_EXTERN int conc_future_wait(conc_future *f, double timeout);

/* Outcome of a done future without waiting: returns its outcome code, or
 * CONC_EAGAIN if f is not done.  detail (may be NULL) receives, for
 * CONC_ETASK, the task's own code; for CONC_EWORKER and CONC_EKILLED, how
 * the worker ended: its exit status (>= 0) or minus the signal that ended
 * it (Python's exitcode; 0 also when unknown, the message says so); else
 * 0.  message (may be NULL)
 * receives a description owned by f (valid while you hold a reference), or
 * NULL on success.  Any thread; never blocks. */
CONC_EXTERN int conc_future_error(const conc_future *f, int *detail,
                                  const char **message);

/* Call cb(f, arg) when f is done; callbacks run in the order they were
 * added.  If f is already done cb runs now, on the caller's thread.
 * Returns 0 (cb will run exactly once), CONC_EINVAL or CONC_ENOMEM (cb will
 * never run).  Any thread. */
CONC_EXTERN int conc_future_add_done_callback(conc_future *f,
                                              conc_future_cb cb, void *arg);

/* ---- Completing a hand-made future ---- */

/* Python's set_running_or_notify_cancel: returns 0 if f is now running,
 * CONC_ECANCELED if it was cancelled (do not run the work), CONC_EINVAL if
 * it was not pending or is bound to a task. */
CONC_EXTERN int conc_future_set_running(conc_future *f);
/* Finish f with a result / with a task error (CONC_ETASK with the given code
 * and printf-style message).  Waiters wake and callbacks run on this thread.
 * Returns 0, or CONC_EINVAL if f is already done or bound to a task
 * (Python's InvalidStateError). */
CONC_EXTERN int conc_future_set_result(conc_future *f, void *result);
CONC_EXTERN int conc_future_set_error(conc_future *f, int code,
                                      const char *fmt, ...) CONC_PRINTF(3, 4);

/* ---- Waiting on several futures ---- */

typedef enum conc_return_when {
  CONC_FIRST_COMPLETED = 1,
  CONC_FIRST_EXCEPTION = 2, /* an outcome other than 0 and CONC_ECANCELED */
  CONC_ALL_COMPLETED = 3
} conc_return_when;

/* concurrent.futures.wait: wait until the condition holds for fs[0..n-1] or
 * timeout seconds pass.  done (may be NULL, else n entries) receives
 * whether each future is done; *n_done (may be NULL) how many are.  Returns
 * 0 if the condition holds, CONC_ETIMEDOUT if not (done/n_done still
 * filled), CONC_EINVAL (NULL fs with n > 0, NULL entry, bad return_when).
 * Blocks.  Any thread. */
CONC_EXTERN int conc_wait(conc_future *const *fs, size_t n, double timeout,
                          conc_return_when return_when, bool *done,
                          size_t *n_done);

/* concurrent.futures.as_completed: an iterator over fs yielding each future
 * as it becomes done (those done already first).  The timeout counts from
 * creation (negative: none).  fs is copied; the futures are retained by the
 * iterator until it is destroyed. */
typedef struct conc_as_completed conc_as_completed;

/* Returns 0, CONC_EINVAL or CONC_ENOMEM. */
CONC_EXTERN int conc_as_completed_create(conc_future *const *fs, size_t n,
                                         double timeout,
                                         conc_as_completed **out);
/* Next done future in *f (a borrowed reference, valid while the iterator
 * lives; retain it to keep it longer).  Returns 1 with *f set, 0 once every
 * future was yielded, or CONC_ETIMEDOUT.  Blocks.  One thread at a time. */
CONC_EXTERN int conc_as_completed_next(conc_as_completed *it,
                                       conc_future **f);
/* Free the iterator (the futures are released, not cancelled). */
CONC_EXTERN void conc_as_completed_destroy(conc_as_completed *it);

#ifdef __cplusplus
}
#endif
#endif
