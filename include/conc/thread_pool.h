/* conc/thread_pool.h - the thread pool executor (ThreadPoolExecutor).
 *
 * Create one with conc_thread_pool_create, then use it through the executor
 * interface (conc/executor.h).  Workers start lazily, on submission, when no
 * idle worker can take the task, up to max_workers.  Tasks may submit tasks;
 * a task that waits for a future of its own pool runs queued tasks meanwhile,
 * so the pool cannot deadlock on itself.
 *
 * Worker threads block asynchronous signals (SIGINT reaches your threads).
 */
#ifndef CONC_THREAD_POOL_H
#define CONC_THREAD_POOL_H

#include "conc/executor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct conc_thread_pool_options {
  size_t size;                    /* sizeof(...); set by _init */
  unsigned max_workers;           /* 0: min(32, conc_cpu_count() + 4) */
  const char *thread_name_prefix; /* copied; NULL: "conc-pool" */
  /* Runs on each worker before its first task.  A non-zero return breaks the
   * pool: pending and later tasks fail with CONC_EBROKEN, and the failure is
   * logged. */
  int (*initializer)(void *arg);
  void *initarg;
  unsigned flags; /* CONC_EXECUTOR_NO_EXIT_HOOK, CONC_EXECUTOR_TIMING */
  /* Backpressure: at most this many tasks submitted from outside the pool
   * wait in its queue (not yet running); 0: no bound.  When full, submit
   * waits for room (conc_submit_options.timeout: negative forever, 0 never:
   * CONC_EAGAIN, else CONC_ETIMEDOUT).  Tasks submitted by the pool's own
   * tasks are not counted and never wait, so a task that submits to its
   * own full pool cannot deadlock it. */
  size_t max_queued;
} conc_thread_pool_options;

CONC_EXTERN void conc_thread_pool_options_init(conc_thread_pool_options *o);

/* Create a thread pool (opts may be NULL).  No thread starts yet.  Returns 0
 * with *out set, CONC_EINVAL (max_workers > 4096, unknown flags) or
 * CONC_ENOMEM. */
CONC_EXTERN int conc_thread_pool_create(const conc_thread_pool_options *opts,
                                        conc_executor **out);

#ifdef __cplusplus
}
#endif
#endif
