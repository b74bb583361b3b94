/* conc/executor.h - the executor interface (concurrent.futures.Executor).
 *
 * Every pool - the thread pool now, the process pool, the coroutine loop and
 * the MPI executor - is a conc_executor, and every call here works on each.
 *
 *   with ThreadPoolExecutor(10) as t:      conc_thread_pool_create(&o, &ex);
 *       f = t.submit(fn, x)                conc_executor_submit(ex, fn, x, &f);
 *       f.result()                         conc_future_result(f, -1, &r);
 *       for r in t.map(fn, xs): ...        conc_executor_map(ex, fn, xs, n, NULL, &m);
 *                                          while (conc_map_next(m, &r) == 1) ...
 *   (leaving the with block)               conc_executor_destroy(ex);
 *
 * Lifecycle: shutdown(wait, cancel_futures) stops accepting tasks; destroy
 * is shutdown(wait=true) followed by freeing, as leaving Python's `with`.
 * Futures outlive their executor.
 *
 * Executors alive at exit() are shut down with wait by an exit hook, as
 * Python does, unless created with CONC_EXECUTOR_NO_EXIT_HOOK.  In a child
 * made by fork(), an executor inherited from the parent has no workers: its
 * submit returns CONC_EBROKEN, shutdown returns at once, destroy frees it,
 * and the exit hook leaves it alone.
 */
#ifndef CONC_EXECUTOR_H
#define CONC_EXECUTOR_H

#include <stdbool.h>
#include <stddef.h>
#include "conc/base.h"
#include "conc/future.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct conc_executor conc_executor;
struct conc_progress; /* conc/progress.h */

/* Executor creation flags: no shutdown by the exit hook; time every task's
 * queue wait and run time for conc_executor_get_stats (two clock reads per
 * task, about 20-40 ns). */
#define CONC_EXECUTOR_NO_EXIT_HOOK 1u
#define CONC_EXECUTOR_TIMING 2u

/* Per-submission options beyond Python's. */
typedef struct conc_submit_options {
  size_t size;      /* sizeof(conc_submit_options); set by _init */
  int priority;     /* -32768..32767, default 0.  Among tasks submitted from
                       outside the pool, higher runs first, FIFO within a
                       priority, with ageing: a task is passed by a
                       priority higher by d only if that task arrived
                       within 64 x d submissions after it, so no priority
                       starves.  Tasks submitted by the pool's own tasks keep
                       the pool's local (LIFO) order. */
  double deadline;  /* conc_now() time by which the task must have started,
                       else it finishes with CONC_EDEADLINE; negative: none */
  double timeout;   /* how long submit may wait for room in a bounded queue:
                       negative forever (default), 0 never (CONC_EAGAIN) */
} conc_submit_options;

CONC_EXTERN void conc_submit_options_init(conc_submit_options *o);

/* Submit fn(arg).  On 0, *out (if out is not NULL) holds a new future
 * reference for the caller to release; with out == NULL the task runs
 * without a handle (fire-and-forget; a failure is only counted).
 * Returns 0, CONC_EINVAL, CONC_ENOMEM, CONC_ESHUTDOWN (after shutdown, or
 * while waiting for room), CONC_EBROKEN (broken executor, or inherited
 * across fork).  If submit fails the task never runs.  Any thread,
 * including the executor's own tasks.  Blocks only when the executor
 * bounds its queue (conc_thread_pool_options.max_queued) and the queue is
 * full: it then waits for room, without limit (the pool's own tasks never
 * wait); use _ex with a timeout to bound the wait. */
CONC_EXTERN int conc_executor_submit(conc_executor *ex, conc_fn fn, void *arg,
                                     conc_future **out);

/* As conc_executor_submit with options (NULL: defaults).  Also returns
 * CONC_EAGAIN / CONC_ETIMEDOUT when a bounded queue stayed full. */
CONC_EXTERN int conc_executor_submit_ex(conc_executor *ex, conc_fn fn,
                                        void *arg,
                                        const conc_submit_options *opts,
                                        conc_future **out);

/* Submit the registered task `name` on a copy of in[0..len-1].  The result
 * (conc_future_result's *result) is a const conc_bytes * owned by the
 * future.  Returns as _ex, and CONC_ENOENT for an unregistered name. */
CONC_EXTERN int conc_executor_submit_task(conc_executor *ex, const char *name,
                                          const void *in, size_t len,
                                          const conc_submit_options *opts,
                                          conc_future **out);

/* Stop accepting tasks.  cancel_futures: cancel every pending task (outcome
 * CONC_ECANCELED) and ask running ones to stop (conc_future_stop).  wait:
 * block until every accepted task is done and the workers have exited.
 * Calling it again is harmless.  Returns 0, CONC_EINVAL, or CONC_EDEADLK
 * when wait is true and the caller is one of the executor's own tasks (the
 * shutdown still happens, without the wait).  Any thread. */
CONC_EXTERN int conc_executor_shutdown(conc_executor *ex, bool wait,
                                       bool cancel_futures);

/* shutdown(wait=true, cancel_futures=false), then free ex.  ex must not be
 * used afterwards; its futures stay valid.  Returns 0, CONC_EINVAL, or
 * CONC_EDEADLK from one of its own tasks (nothing is freed then).  The
 * default executor cannot be destroyed (CONC_EPERM). */
CONC_EXTERN int conc_executor_destroy(conc_executor *ex);

/* ---- statistics ---- */

typedef struct conc_executor_stats {
  size_t size;              /* sizeof(conc_executor_stats); set by _init */
  unsigned long long submitted; /* accepted by submit */
  unsigned long long queued;    /* accepted, not yet started or dropped */
  unsigned long long running;   /* started, not finished */
  unsigned long long completed; /* finished with a result */
  unsigned long long failed;    /* finished with an error (task, broken) */
  unsigned long long cancelled; /* cancelled before running, or stopped */
  unsigned long long deadline_missed; /* not started by their deadline */
  unsigned workers;             /* threads started */
  /* With CONC_EXECUTOR_TIMING: tasks timed and percentiles in seconds
   * (from log2 histograms: within a factor of 2); else 0 and NaN. */
  unsigned long long timed;
  double queue_wait_p50, queue_wait_p99;
  double run_time_p50, run_time_p99;
} conc_executor_stats;

CONC_EXTERN void conc_executor_stats_init(conc_executor_stats *s);

/* A snapshot of ex's counters.  Counters are kept per worker and merged
 * here, so a snapshot taken while tasks run is approximate (each counter is
 * exact on its own; queued and running are derived).  Returns 0 or
 * CONC_EINVAL (NULL, or s->size too small).  Any thread; never blocks. */
CONC_EXTERN int conc_executor_get_stats(conc_executor *ex,
                                        conc_executor_stats *s);

/* The number of workers ex may use (max_workers). */
CONC_EXTERN unsigned conc_executor_max_workers(const conc_executor *ex);

/* The process-wide default executor: a thread pool started on first use
 * with CONC_NUM_THREADS workers (environment; default as max_workers), shut
 * down at exit or by conc_library_shutdown().  *out is borrowed: do not
 * destroy it.  Returns 0, CONC_ENOMEM or CONC_EAGAIN.  Any thread. */
CONC_EXTERN int conc_executor_default(conc_executor **out);

/* ---- map ---- */

typedef struct conc_map_options {
  size_t size;       /* sizeof(conc_map_options); set by _init */
  size_t chunksize;  /* items per task; default 1 */
  size_t buffersize; /* chunks in flight at most; 0: 32 x max_workers */
  double timeout;    /* overall, from the map call; negative: none */
  struct conc_progress *progress; /* counts each yielded result (and the
                                     error that ends the map); NULL: none */
} conc_map_options;

CONC_EXTERN void conc_map_options_init(conc_map_options *o);

/* Ordered map (Executor.map): runs fn on each input and yields results in
 * input order with at most buffersize chunks in flight, so inputs are
 * submitted as results are consumed.  Returns 0 with *out set, CONC_EINVAL,
 * CONC_ENOMEM, CONC_ESHUTDOWN, CONC_EBROKEN.  args is read lazily: it must
 * stay valid until the map is destroyed. */
typedef struct conc_map conc_map;

CONC_EXTERN int conc_executor_map(conc_executor *ex, conc_fn fn,
                                  void *const *args, size_t n,
                                  const conc_map_options *opts,
                                  conc_map **out);

/* The same with inputs drawn from a generator: next(ctx, &arg) returns 1
 * with an input, 0 at the end, or a negative code that ends the map with
 * that error.  Called on the thread that calls conc_map_next. */
typedef int (*conc_map_source_fn)(void *ctx, void **arg);
CONC_EXTERN int conc_executor_map_source(conc_executor *ex, conc_fn fn,
                                         conc_map_source_fn next, void *ctx,
                                         const conc_map_options *opts,
                                         conc_map **out);

/* Ordered map of a registered task (conc/task.h) over byte inputs: the
 * form every executor runs, including the process pool (which refuses
 * conc_executor_map's function pointers).  inputs[i] is read lazily (as for
 * args above) and copied when submitted.  conc_map_next's *result is a
 * const conc_bytes * with the task's output, valid until the next
 * conc_map_next or conc_map_destroy.  With chunksize > 1, each chunk of
 * inputs travels as one task (the built-in task "conc.batch"), which saves
 * a round trip per item to another process; a failing item ends the map
 * at that item as with function maps.  Returns as conc_executor_map, and
 * CONC_ENOENT for an unregistered name. */
typedef struct conc_buf {
  const void *data;
  size_t len;
} conc_buf;
CONC_EXTERN int conc_executor_map_task(conc_executor *ex, const char *name,
                                       const conc_buf *inputs, size_t n,
                                       const conc_map_options *opts,
                                       conc_map **out);

/* Next result in input order.  Returns 1 with *result set, 0 when every
 * result was yielded, or an error that ends the map: the failing task's
 * outcome (CONC_ETASK ...; details by conc_map_error), CONC_ETIMEDOUT, or
 * the source's error.  After an error or the end, it keeps returning the
 * same.  Blocks.  One thread at a time. */
CONC_EXTERN int conc_map_next(conc_map *m, void **result);

/* Details of the error that ended the map, as conc_future_error (detail
 * and message; the message lives as long as m).  Returns that error, or 0
 * when the map has not failed. */
CONC_EXTERN int conc_map_error(const conc_map *m, int *detail,
                               const char **message);

/* Cancel what has not started, wait for started tasks to finish, free m.
 * NULL is ignored.  Blocks. */
CONC_EXTERN void conc_map_destroy(conc_map *m);

/* ---- bulk: a parallel loop over a range ---- */

/* Called for a chunk [begin, end).  Return 0, or non-zero to stop the loop
 * (no further chunk starts; the value is returned by conc_executor_for). */
typedef int (*conc_for_fn)(size_t begin, size_t end, void *ctx);

/* Run body over [0, n) in chunks of grain indexes (0: about n / (8 x
 * (workers + 1))), on up to max_workers - 1 (at least 1) helper tasks of ex
 * and on the calling thread, which takes chunks too (as TBB's parallel_for and
 * OpenMP's loops do), and return when every chunk has run.  Chunks are
 * handed out dynamically, so uneven chunks balance.  If helpers cannot be
 * submitted for lack of memory the caller runs more chunks itself.
 * Returns 0, the first non-zero value a body returned, CONC_EINVAL (NULL ex
 * or body), CONC_ESHUTDOWN / CONC_EBROKEN (ex refuses work; no chunk runs).
 * Blocks.  Any thread, including ex's own tasks (the waiting worker helps). */
CONC_EXTERN int conc_executor_for(conc_executor *ex, size_t n, size_t grain,
                                  conc_for_fn body, void *ctx);

#ifdef __cplusplus
}
#endif
#endif
