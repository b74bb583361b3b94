/* bench/pthread-pool.h - the plain pool that people write by hand: one
 * mutex and one condition variable guard a FIFO of malloc'd task records;
 * each record doubles as the task's future (its own mutex + condvar), and
 * is reference-counted between the pool and the caller.  It is an anchor,
 * not a library: no error paths beyond returning -1, no fork handling. */
#ifndef CONC_BENCH_PTHREAD_POOL_H
#define CONC_BENCH_PTHREAD_POOL_H

typedef struct ppool ppool;
typedef struct pfuture pfuture;
typedef void *(*ppool_fn)(void *arg);

/* Start a pool with n worker threads; NULL on failure. */
ppool *ppool_create(int n);
/* Queue fn(arg).  With out != NULL, *out receives a future to wait on and
 * release; with out == NULL nobody waits (fire-and-forget).  0 or -1. */
int ppool_submit(ppool *p, ppool_fn fn, void *arg, pfuture **out);
/* Wait for f and return the task's result. */
void *pfuture_result(pfuture *f);
void pfuture_release(pfuture *f);
/* Finish the queued tasks, join the workers, free the pool. */
void ppool_destroy(ppool *p);

#endif
