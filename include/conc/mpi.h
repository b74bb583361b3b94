/* conc/mpi.h - an executor across machines on MPI (mpi4py.futures' model).
 *
 *   int main(int argc, char **argv) {
 *     conc_init(&argc, &argv);             // first thing: see conc/base.h
 *     conc_executor *ex;
 *     conc_mpi_executor_create(NULL, &ex); // worker ranks serve here
 *     conc_future *f;
 *     conc_executor_submit_task(ex, "checksum", buf, len, NULL, &f);
 *     ...
 *     conc_executor_destroy(ex);           // ends the worker ranks
 *   }
 *
 * Run it as `mpiexec -n N prog`: rank 0 is the client and scheduler, ranks
 * 1..N-1 are workers.  The executor runs registered tasks (CONC_TASK in
 * conc/task.h) exactly as the process pool does, with the same wire format
 * (src/wire.h), so one program moves from a process pool to MPI by
 * changing the executor it creates.  submit, map_task (chunks travel as
 * the "conc.batch" task), as_completed, wait, shutdown and destroy work as
 * on every executor; function pointers return CONC_ENOTSUP.
 *
 * Worker ranks.  On a rank other than 0, conc_mpi_executor_create never
 * returns: the rank serves tasks until rank 0's executor shuts down, then
 * finalizes MPI and exits (status 0; 1 if its registry differed or MPI
 * failed).  Code placed before the call runs on every rank.
 *
 * MPI ownership.  conc initialises MPI (MPI_Init_thread, SERIALIZED) on a
 * progress thread of its own in every rank and finalizes it there when the
 * executor shuts down.  On rank 0 MPI calls are serialized by conc's own
 * lock: a submitter that finds it free sends its task itself, and a thread
 * waiting for one of the executor's futures receives results itself (no
 * hop through the progress thread); the progress thread drives MPI when
 * nobody waits.  (If MPI grants only FUNNELED, the progress thread does
 * all of it.)  So: one MPI executor per process lifetime (MPI cannot be
 * initialised twice; a second create returns CONC_EBUSY), and the program
 * must not call MPI itself.  Submitters may use any thread.
 *
 * Callbacks.  Done callbacks run on rank 0's progress thread (or on the
 * thread adding one to a future already done).  A callback may submit to
 * the executor but must not wait for one of its futures: the progress
 * thread it blocks is the one that would receive the result.
 *
 * Start-up check.  Rank 0 sends its registry hash (HELLO frame) to every
 * worker, and each worker answers with its own: a rank whose registry
 * differs logs which rank and both hashes, every worker exits, and create
 * returns CONC_EREGISTRY on rank 0.
 *
 * Pipelining.  Up to max_in_flight tasks are sent ahead to each worker
 * rank; results come back in any order and are matched to their futures
 * by task id.  Inputs and outputs above 64 KiB travel as a separate MPI
 * message straight from the task's input buffer (submit_task copies the
 * caller's input there once) into the result buffer: no other copy.
 *
 * Idle behaviour.  The progress threads poll MPI (MPI_Improbe): after the
 * last message they spin for idle_spin seconds (a CPU pause between polls,
 * sched_yield every 20 us), then sleep with a doubling
 * back-off from 10 us up to idle_sleep_max seconds between polls.  The
 * spin is long (1 ms) because both sides poll: with a short one a worker
 * and rank 0 each sleep while the other answers, and their back-offs
 * feed each other up to idle_sleep_max per task.  On rank 0 a thread
 * waiting for a future polls MPI itself for a while before it sleeps; with
 * no task in flight the progress thread sleeps without polling (no CPU)
 * until a submission wakes it; while a bulk input is still being sent it
 * polls without sleeping (MPI moves it in fragments that each need the
 * sender's call).  A worker rank with nothing to do costs one poll per
 * idle_sleep_max
 * (about 1000 wake-ups per second by default: see docs/mpi.md for the
 * measured CPU).  The latency of a result after an idle pause is at most
 * idle_sleep_max.
 *
 * Crash isolation (isolate, the default).  Each worker rank runs its tasks
 * in a local process pool (conc/process_pool.h): its fork server is a
 * fresh execution of the program that stops in conc_init (it never calls
 * MPI), and its workers are forked from it.  A task that crashes its
 * process fails alone with CONC_EWORKER (detail: exit status, or minus
 * the signal), and the job goes on.  Without isolation tasks run on the
 * worker rank's progress thread: faster, but a crash kills the rank, and
 * a rank that dies ends the whole job (Debian's Open MPI has no
 * fault-tolerant MPI): mpiexec reports the dead rank and exits non-zero.
 *
 * Stopping.  A stop request (conc_future_stop, or shutdown with
 * cancel_futures) for a task already sent travels to its worker rank (a
 * STOP frame).  With isolation the task sees conc_task_stop_requested()
 * and, if it still runs stop_grace seconds later, its process is killed:
 * CONC_EKILLED.  Without isolation a task that has not started yet ends
 * with CONC_ECANCELED; a running one is not interrupted.
 *
 * Deadlines (conc_submit_options.deadline: by when the task must start)
 * are checked when a task is sent, and again where it starts: the frame
 * carries the time left, re-anchored on the worker rank's clock when the
 * rank receives it.  A task that starts too late ends with
 * CONC_EDEADLINE.  Not counted: time the frame waits unreceived at a rank
 * busy running a task without isolation (such a rank receives between
 * tasks); with isolation the local pool checks it when it hands the task
 * to its process.
 *
 * Limits.  Inputs and outputs are limited to INT_MAX bytes (MPI counts).
 */
#ifndef CONC_MPI_H
#define CONC_MPI_H

#include <stdbool.h>
#include <stddef.h>
#include "conc/executor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct conc_mpi_options {
  size_t size;            /* sizeof(conc_mpi_options); set by _init */
  unsigned max_in_flight; /* tasks sent ahead to each worker rank; 0: 8 */
  bool isolate;           /* run tasks in a local process pool on each
                             worker rank (crash isolation); default true */
  unsigned procs_per_rank; /* with isolate: processes per worker rank that
                              run tasks; 0: 1 */
  unsigned spawn;         /* 0: the ranks of `mpiexec -n N` (rank 0 is the
                             client).  N > 0: spawn N worker processes of
                             this program with MPI_Comm_spawn (a program
                             started alone; MPIPoolExecutor(max_workers=N)) */
  double task_timeout;    /* with isolate: kill a task running longer
                             (CONC_EKILLED); negative: no limit (default) */
  double stop_grace;      /* with isolate: a task asked to stop
                             (conc_future_stop, shutdown with
                             cancel_futures) that still runs this much
                             later is killed (CONC_EKILLED); negative:
                             never; default 5 */
  double idle_spin;       /* seconds of busy polling after the last
                             message; negative: default 1e-3 */
  double idle_sleep_max;  /* longest sleep between polls when idle
                             (seconds); 0 or negative: default 1e-3 */
  unsigned flags;         /* CONC_EXECUTOR_* */
} conc_mpi_options;

/* Defaults: max_in_flight 8, isolate true, procs_per_rank 1, spawn 0,
 * task_timeout none, stop_grace 5 s, idle_spin 1 ms, idle_sleep_max
 * 1 ms.  NULL is ignored. */
CONC_EXTERN void conc_mpi_options_init(conc_mpi_options *o);

/* Initialise MPI and create the executor (see above).  On rank 0: returns
 * 0 with *out set (max_workers is the number of worker ranks), or
 * CONC_EINVAL (bad options), CONC_EPERM (conc_init not called),
 * CONC_EBUSY (an MPI executor was already created in this process),
 * CONC_EREGISTRY (a worker rank's task registry differs), CONC_EBROKEN
 * (MPI failed to start, or fewer than 2 ranks and no spawn), CONC_ENOMEM.
 * On a worker rank it does not return.  Blocks until every worker rank
 * has answered.  Call from main (any thread, but once). */
CONC_EXTERN int conc_mpi_executor_create(const conc_mpi_options *opts,
                                         conc_executor **out);

#ifdef __cplusplus
}
#endif
#endif
