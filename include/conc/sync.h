/* conc/sync.h - locks, conditions, events, semaphores, barriers.
 *
 * Every type here is caller-allocated storage holding futex words and
 * plain integers - no pointers - so it can be embedded in your structs or
 * placed in memory shared between processes (init with CONC_SYNC_SHARED).
 * Python equivalents: Lock, RLock, Condition, Event, Semaphore,
 * BoundedSemaphore, Barrier.
 *
 * Waiting calls take a timeout in seconds (negative: forever, 0: poll) or, in
 * their _until twin, a deadline on conc_now()'s clock.  They retry across
 * EINTR.  try_ calls never block and return CONC_EAGAIN when they would.
 *
 * Dead owners: a conc_lock's word holds its owner's kernel thread id.  In a
 * CONC_SYNC_SHARED lock, a waiter re-checks now and then whether the owner
 * is still alive; if it died, the waiter takes the lock and gets
 * CONC_EOWNERDEAD: it owns the lock and must repair the protected data.
 *
 * Misuse that cannot be checked cheaply (using an object that was never
 * initialised, destroying one with waiters) is a debug assertion.
 */
#ifndef CONC_SYNC_H
#define CONC_SYNC_H

#include <stdbool.h>
#include "conc/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Flag for every _init: the object lives in shared memory and is used by
 * several processes (non-private futexes, owner liveness checks). */
#define CONC_SYNC_SHARED 1u

#define CONC__SYNC_STORAGE(n)                                                 \
  union {                                                                     \
    unsigned char bytes[n];                                                   \
    unsigned int align_u_;                                                    \
    long long align_ll_;                                                      \
  } opaque_

/* ---- Lock (threading.Lock), non-recursive ---- */
typedef struct conc_lock { CONC__SYNC_STORAGE(8); } conc_lock;

/* Initialise unlocked.  flags: 0 or CONC_SYNC_SHARED.  Returns 0 or
 * CONC_EINVAL.  A zero-filled conc_lock is also a valid private lock. */
CONC_EXTERN int conc_lock_init(conc_lock *l, unsigned flags);
/* Returns 0, or CONC_EBUSY if it is held. */
CONC_EXTERN int conc_lock_destroy(conc_lock *l);
/* Acquire, waiting at most timeout seconds.  Returns 0, CONC_ETIMEDOUT,
 * CONC_EDEADLK (the caller already holds it), CONC_EOWNERDEAD (shared lock
 * whose owner died: the caller now holds it), CONC_EINVAL.  Blocks. */
CONC_EXTERN int conc_lock_acquire(conc_lock *l, double timeout);
CONC_EXTERN int conc_lock_acquire_until(conc_lock *l, double deadline);
/* Returns 0, CONC_EAGAIN (held by another thread), CONC_EDEADLK (held by the
 * caller), CONC_EOWNERDEAD as above.  Never blocks. */
CONC_EXTERN int conc_lock_try_acquire(conc_lock *l);
/* Returns 0, or CONC_EPERM if the caller does not hold the lock. */
CONC_EXTERN int conc_lock_release(conc_lock *l);
/* True if some thread holds it (a snapshot). */
CONC_EXTERN bool conc_lock_locked(const conc_lock *l);

/* ---- Recursive lock (threading.RLock) ---- */
typedef struct conc_rlock { CONC__SYNC_STORAGE(16); } conc_rlock;

/* Returns as conc_lock_init / conc_lock_destroy. */
CONC_EXTERN int conc_rlock_init(conc_rlock *l, unsigned flags);
CONC_EXTERN int conc_rlock_destroy(conc_rlock *l);
/* As conc_lock_acquire, but the owner may acquire again (counted); never
 * CONC_EDEADLK.  Returns CONC_EOVERFLOW past 2^31-1 levels. */
CONC_EXTERN int conc_rlock_acquire(conc_rlock *l, double timeout);
CONC_EXTERN int conc_rlock_acquire_until(conc_rlock *l, double deadline);
CONC_EXTERN int conc_rlock_try_acquire(conc_rlock *l);
/* Drop one level.  Returns 0 or CONC_EPERM if not the owner. */
CONC_EXTERN int conc_rlock_release(conc_rlock *l);

/* ---- Condition variable (threading.Condition), used with a conc_lock ---- */
typedef struct conc_cond { CONC__SYNC_STORAGE(8); } conc_cond;

CONC_EXTERN int conc_cond_init(conc_cond *c, unsigned flags);
CONC_EXTERN int conc_cond_destroy(conc_cond *c);
/* Release l (held by the caller), wait for a notify or the timeout, acquire
 * l again (even on timeout).  Spurious wake-ups may happen: re-check your
 * predicate.  Returns 0, CONC_ETIMEDOUT, CONC_EPERM (l not held),
 * CONC_EOWNERDEAD (as conc_lock_acquire).  Blocks. */
CONC_EXTERN int conc_cond_wait(conc_cond *c, conc_lock *l, double timeout);
CONC_EXTERN int conc_cond_wait_until(conc_cond *c, conc_lock *l,
                                     double deadline);
/* Wake up to n waiters / all waiters.  Returns 0 or CONC_EINVAL. */
CONC_EXTERN int conc_cond_notify(conc_cond *c, unsigned n);
CONC_EXTERN int conc_cond_notify_all(conc_cond *c);

/* ---- Event (threading.Event) ---- */
typedef struct conc_event { CONC__SYNC_STORAGE(8); } conc_event;

/* Initialise clear.  A zero-filled conc_event is a valid clear private event. */
CONC_EXTERN int conc_event_init(conc_event *e, unsigned flags);
CONC_EXTERN int conc_event_destroy(conc_event *e);
/* Set the flag and wake every waiter. */
CONC_EXTERN int conc_event_set(conc_event *e);
CONC_EXTERN int conc_event_clear(conc_event *e);
CONC_EXTERN bool conc_event_is_set(const conc_event *e);
/* Wait until set.  Returns 0 (set) or CONC_ETIMEDOUT.  Blocks. */
CONC_EXTERN int conc_event_wait(conc_event *e, double timeout);
CONC_EXTERN int conc_event_wait_until(conc_event *e, double deadline);

/* ---- Semaphore and BoundedSemaphore ---- */
typedef struct conc_semaphore { CONC__SYNC_STORAGE(16); } conc_semaphore;

/* value: initial count.  max: 0 for a plain Semaphore, else the bound of a
 * BoundedSemaphore (value must be <= max).  Returns 0 or CONC_EINVAL. */
CONC_EXTERN int conc_semaphore_init(conc_semaphore *s, unsigned value,
                                    unsigned max, unsigned flags);
CONC_EXTERN int conc_semaphore_destroy(conc_semaphore *s);
/* Take one unit.  Returns 0 or CONC_ETIMEDOUT.  Blocks. */
CONC_EXTERN int conc_semaphore_acquire(conc_semaphore *s, double timeout);
CONC_EXTERN int conc_semaphore_acquire_until(conc_semaphore *s,
                                             double deadline);
/* Returns 0 or CONC_EAGAIN.  Never blocks. */
CONC_EXTERN int conc_semaphore_try_acquire(conc_semaphore *s);
/* Give back n units (n >= 1).  Returns 0, CONC_EINVAL (n == 0), or
 * CONC_EOVERFLOW when the count would pass the bound (nothing changes) or
 * 2^31-1. */
CONC_EXTERN int conc_semaphore_release(conc_semaphore *s, unsigned n);
/* The current count (a snapshot). */
CONC_EXTERN unsigned conc_semaphore_value(const conc_semaphore *s);

/* ---- Barrier (threading.Barrier) ---- */
typedef struct conc_barrier { CONC__SYNC_STORAGE(16); } conc_barrier;

/* parties in 1..2^28-1.  Returns 0 or CONC_EINVAL. */
CONC_EXTERN int conc_barrier_init(conc_barrier *b, unsigned parties,
                                  unsigned flags);
CONC_EXTERN int conc_barrier_destroy(conc_barrier *b);
/* Wait until parties threads have called wait.  *index (may be NULL)
 * receives 0..parties-1, distinct per thread of the round (Python's return
 * value).  Returns 0; CONC_ETIMEDOUT for the caller whose wait timed out,
 * which breaks the barrier; CONC_EBROKEN for every other waiter, and for any
 * wait on a broken barrier, until conc_barrier_reset.  Blocks. */
CONC_EXTERN int conc_barrier_wait(conc_barrier *b, double timeout,
                                  unsigned *index);
CONC_EXTERN int conc_barrier_wait_until(conc_barrier *b, double deadline,
                                        unsigned *index);
/* Break the barrier: current and future waiters get CONC_EBROKEN. */
CONC_EXTERN int conc_barrier_abort(conc_barrier *b);
/* Back to the initial state; threads waiting now get CONC_EBROKEN. */
CONC_EXTERN int conc_barrier_reset(conc_barrier *b);
CONC_EXTERN unsigned conc_barrier_parties(const conc_barrier *b);
CONC_EXTERN unsigned conc_barrier_n_waiting(const conc_barrier *b);
CONC_EXTERN bool conc_barrier_broken(const conc_barrier *b);

#ifdef __cplusplus
}
#endif
#endif
