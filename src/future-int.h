/* future-int.h - the future record, shared by future.c, the executors and
 * the task context.  A future is also the task record that executors queue:
 * one allocation per task.
 *
 * State word (also the futex that waiters sleep on):
 *   bits 0-1  PENDING -> RUNNING -> FINISHED, or PENDING -> CANCELLED
 *   bit 2     WAITERS: somebody sleeps on the word; the next change wakes all
 *   bit 3     STOP: a stop was requested (conc_future_stop)
 * Transitions are CASes on the low bits that preserve the flag bits; the
 * thread that wins PENDING->CANCELLED or RUNNING->FINISHED owns completion
 * (writes the outcome fields before its release store, runs callbacks).
 */
#ifndef CONC_FUTURE_INT_H
#define CONC_FUTURE_INT_H

#include "internal.h"
#include "conc/future.h"
#include "conc/task.h"

#define FS_MASK 3u
#define FS_PENDING 0u
#define FS_RUNNING 1u
#define FS_FINISHED 2u
#define FS_CANCELLED 3u
#define FS_WAITERS 4u
#define FS_STOP 8u
#define FS_COMPLETING 16u /* an outcome is being written; not done yet */

/* flags */
#define FF_TASK 1u       /* bound to a task: the setters refuse it */
#define FF_DEADLINE 2u   /* u.deadline holds a deadline while pending */
#define FF_FREE_ARG 4u   /* arg is a conc__closure to free with the future */
#define FF_ROOM 8u       /* holds a unit of its pool's bounded queue */
#define FF_TIMED 16u     /* u.submitted holds the submit time (pending) */
#define FF_HELPED 32u    /* arg is a closure with a conc__helper: waiters
                            may collect results themselves */

struct conc__cb_node;

/* 56 bytes on LP64, so that a record and malloc's header fit a 64-byte
 * chunk (glibc), and a queued task costs 64 bytes.  The fork generation
 * lives in bits 8-15 of the state word (FS_GEN_*); the priority key of a
 * task queued by priority lives in `detail` until it completes. */
struct conc_future {
  _Atomic uint32_t state;
  _Atomic uint32_t refs;
  conc_fn fn;
  void *arg;
  union {
    void *result;     /* outcome 0 */
    char *msg;        /* outcome != 0: message or NULL */
    double deadline;  /* pending with FF_DEADLINE */
    double submitted; /* pending with FF_TIMED */
  } u;
  _Atomic(struct conc__cb_node *) cbs;
  _Atomic(struct conc_future *) next; /* queue link, owned by the executor */
  int32_t detail;  /* the task's own code etc.; priority key while queued */
  int16_t outcome; /* 0 or a CONC_E* code (all fit 16 bits) */
  uint16_t flags;
};

#define FS_GEN_SHIFT 8
#define FS_GEN_MASK (0xffu << FS_GEN_SHIFT)

/* The fork generation: bumped in the child after every fork(). */
uint32_t conc__fork_gen(void);

/* A task-bound future, refs = n (1: executor only; 2: executor + caller).
 * NULL on allocation failure. */
conc_future *conc__future_new_task(conc_fn fn, void *arg, uint32_t refs);

/* Run a pending task-bound future on the calling thread: PENDING->RUNNING,
 * deadline check, fn, completion.  A cancelled future is left alone.  The
 * caller keeps its reference (and drops it afterwards).  Returns the
 * outcome, or CONC__SKIPPED if the future was cancelled before it ran.
 * With FF_TIMED, *submitted receives the submit time once the task has
 * started (before that a cancel may overwrite it). */
#define CONC__SKIPPED 1
int conc__future_run(conc_future *f, double *submitted);

/* For executors that run tasks elsewhere (another process): PENDING ->
 * RUNNING.  Returns 0, CONC__SKIPPED (cancelled before it started), or
 * CONC_EDEADLINE (started, but past its deadline: the caller fails it). */
int conc__future_start(conc_future *f);
/* Complete a RUNNING future with outcome 0 and result.  False if it was
 * already done. */
bool conc__future_succeed(conc_future *f, void *result);

/* Complete a RUNNING future whose outcome, detail and u were written by
 * the caller (the only completer of a running task-bound future).  False
 * if it was already done. */
bool conc__future_finish_prepared(conc_future *f);

/* An executor whose results a waiting thread can collect itself (the
 * process pool): reference-counted apart from the executor, so that a
 * waiter holding a future may call help() even while the executor is
 * being destroyed (pool is NULL then). */
typedef struct conc__helper {
  _Atomic uint32_t refs;
  /* Collect what is ready; true if a future was completed.  Must not
   * block. */
  bool (*help)(struct conc__helper *h);
  void (*destroy)(struct conc__helper *h); /* at the last release */
  /* Optional: take a big output buffer back when its future is freed
   * (reused for the next result: no fresh pages to fault in). */
  void (*recycle)(struct conc__helper *h, conc_bytes *b);
  /* Optional: a waiter starts (true) or stops (false) calling help(), so
   * the executor need not wake its own thread for results meanwhile.
   * Calls pair up; they must not block for long. */
  void (*helping)(struct conc__helper *h, bool on);
  /* Optional: after helping(false), the waiter's future is not done and it
   * goes to sleep (the executor's own thread should collect again). */
  void (*park)(struct conc__helper *h);
  void *pool;
} conc__helper;
void conc__helper_release(conc__helper *h);

/* Complete a pending or running future with an outcome (not 0) and a
 * message (taken over; may be NULL).  Returns false if it was already done
 * (the message is freed). */
bool conc__future_fail(conc_future *f, int outcome, int detail, char *msg);

/* PENDING -> CANCELLED with callbacks.  Returns true if this call did it. */
bool conc__future_cancel(conc_future *f);

/* Per-thread hook used while a future is waited for on a pool worker: run
 * one queued task of the worker's pool; returns false if none was found.
 * Installed by the thread pool on its worker threads. */
typedef bool (*conc__help_fn)(void *worker);
void conc__set_helper(conc__help_fn fn, void *worker);

/* The task context of the calling thread (NULL outside a task). */
typedef struct conc__task_ctx {
  conc_future *future; /* NULL when run by conc_task_run */
  int outcome;         /* 0, CONC_ETASK, CONC_ECANCELED */
  int code;
  char *msg;
  /* Tasks run for another process (process pool workers): the stop
   * request lives in shared memory - requested when *stop_id equals
   * stop_match; stop_seq is the futex bumped with it. */
  const _Atomic uint64_t *stop_id;
  uint64_t stop_match;
  _Atomic uint32_t *stop_seq;
} conc__task_ctx;
conc__task_ctx *conc__task_ctx_get(void);
conc__task_ctx *conc__task_ctx_swap(conc__task_ctx *ctx);

#endif
