/* conc/process_pool.h - a crash-proof process pool (ProcessPoolExecutor).
 *
 *   int main(int argc, char **argv) {
 *     conc_init(&argc, &argv);              // first thing: see conc/base.h
 *     conc_executor *ex;
 *     conc_process_pool_create(NULL, &ex);
 *     conc_future *f;
 *     conc_executor_submit_task(ex, "checksum", buf, len, NULL, &f);
 *     const conc_bytes *out;
 *     conc_future_result(f, -1, (void **)&out);
 *     ...
 *     conc_future_release(f);
 *     conc_executor_destroy(ex);
 *   }
 *
 * A process pool is a conc_executor: submit, map, as_completed, wait,
 * shutdown and destroy work as on the thread pool, except that a task must
 * be a registered task (CONC_TASK in conc/task.h: a name, bytes in, bytes
 * out).  conc_executor_submit / conc_executor_map with a function pointer
 * return CONC_ENOTSUP: a pointer means nothing in another process.  Use
 * conc_executor_submit_task and conc_executor_map_task.
 *
 * Workers.  The pool starts a fork server: a fresh execution of the
 * program (/proc/self/exe) that stops in conc_init and forks the workers.
 * The caller's process is never forked, however many threads it runs, and
 * forking stays cheap however much memory it holds.  Workers inherit
 * nothing from the caller: no memory, no descriptors; tasks get their data
 * from their input bytes (or named shared memory, conc/shm.h).  Code that
 * runs before conc_init in main runs again in the fork server.
 *
 * Callbacks (conc_future_add_done_callback) run on the pool's collector
 * thread.  A thread waiting for a future of the pool collects ready
 * results itself (it saves a wake-up), publishing only futures without
 * callbacks.
 *
 * Crash isolation.  A worker that dies while running a task (segfault,
 * abort, exit, killed, out of memory) fails that task alone with
 * CONC_EWORKER; conc_future_error's detail is the exit status (>= 0) or
 * minus the signal.  Tasks queued behind it run elsewhere, and a new
 * worker replaces it.  A task running longer than task_timeout is killed:
 * CONC_EKILLED.  A task asked to stop (conc_future_stop, or
 * shutdown(cancel_futures)) sees conc_task_stop_requested(); if it is
 * still running stop_grace seconds later, its worker is killed
 * (CONC_EKILLED).  shutdown never waits on a dead worker.
 *
 * Lifetime.  When the caller exits or is killed - even by SIGKILL - the
 * fork server and every worker die with it (each holds a pipe whose write
 * end only the caller holds, armed to deliver SIGKILL on end-of-file), and
 * nothing is left in /dev/shm: the rings are memfds.
 *
 * Submit options: deadline (checked when the task is handed to a worker:
 * CONC_EDEADLINE), priority (higher first among waiting tasks, with the
 * thread pool's ageing), timeout (waiting for room under max_queued).
 * Tasks with a deadline are not timed by CONC_EXECUTOR_TIMING.
 *
 * Transport.  Each worker has two rings in shared memory (ring_size bytes
 * each) and an output arena (2 x ring_size): inputs and outputs up to half
 * a ring travel inline, larger inputs in a memfd.  Big outputs (64 KiB and
 * more, once the pool has seen some) are written by the task straight into
 * the arena and handed to the caller there, without a copy: the result's
 * conc_bytes then points into shared memory, valid - like any result -
 * until the future is released, even after the pool is destroyed.  When
 * the arena is full (the caller holds many big results) outputs travel as
 * before.  Both sides spin briefly before sleeping (a worker or the
 * pool's collector thread costs CPU for up to ~50 us after its last
 * message, nothing once idle).  Design: docs/internals/process-pool.md.
 */
#ifndef CONC_PROCESS_POOL_H
#define CONC_PROCESS_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include "conc/executor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct conc_process_pool_options {
  size_t size;            /* sizeof(...); set by _init */
  unsigned max_workers;   /* 0: the usable CPUs (as the thread pool) */
  const char *initializer;  /* registered task run once in each new
                               worker, before its first task; its
                               failure breaks the pool (CONC_EBROKEN) */
  const void *initargs;   /* initializer's input (copied at create) */
  size_t initargs_len;
  unsigned max_tasks_per_child; /* replace a worker after this many tasks;
                                   0: never */
  double task_timeout;    /* kill a task running longer (seconds;
                             CONC_EKILLED); negative: no limit */
  double stop_grace;      /* after a stop request, kill the task if it
                             still runs this much later; negative: never;
                             default 5 */
  unsigned max_in_flight; /* at most this many tasks queued in a worker's
                             ring ahead of the one running (pipelining);
                             the pool queues fewer when tasks run long
                             (about 200 us of work per worker), so that
                             the load stays balanced; 0: 256 */
  size_t ring_size;       /* bytes per ring, a power of two from 64 KiB to
                             1 GiB; 0: 4 MiB (committed only when used) */
  unsigned flags;         /* CONC_EXECUTOR_* (with _TIMING the statistics
                             have queue-wait and run-time percentiles; run
                             time as measured by the worker) */
  size_t max_queued;      /* backpressure: at most this many tasks wait in
                             the pool (not yet handed to a worker); submit
                             then waits for room, as on the thread pool
                             (conc_submit_options.timeout); 0: no bound */
} conc_process_pool_options;

CONC_EXTERN void conc_process_pool_options_init(conc_process_pool_options *o);

/* Start a process pool: the fork server and max_workers workers start
 * now.  Returns 0 with *out set; CONC_EPERM if conc_init was not called;
 * CONC_EINVAL (bad options, unknown initializer); CONC_EREGISTRY (the
 * fork server's task registry differs from this process's: a task was
 * registered at run time, or another program image answered);
 * CONC_EBROKEN (the fork server did not answer within 60 s, or exited:
 * does main call conc_init first?); CONC_EPROTO (something else
 * answered); CONC_ENOMEM; CONC_EAGAIN (no thread); -errno (descriptors).
 * Blocks while the fork server starts (an exec of the program) and forks
 * the workers: a few milliseconds. */
CONC_EXTERN int conc_process_pool_create(const conc_process_pool_options *opts,
                                         conc_executor **out);

/* The pids of the pool's fork server and its live workers, for tests and
 * monitoring: up to cap pids are written to pids (server first); returns
 * how many there are (may exceed cap), or CONC_EINVAL if ex is not a
 * process pool. */
CONC_EXTERN int conc_process_pool_pids(conc_executor *ex, int *pids,
                                       size_t cap);

#ifdef __cplusplus
}
#endif
#endif
