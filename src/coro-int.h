/* coro-int.h - the scheduler's park/unpark API for other modules of conc
 * (channels and coroutine-aware sync, src/chan.c).  Loop thread only.
 *
 * A waiting primitive keeps its own wait list of coroutines; to wait it
 * links itself, calls conc__coro_park and unlinks itself again unless it
 * was woken by the primitive (wake code chosen by whoever unparked it).
 * The wake code decides: once unparked, a later cancel or deadline of the
 * coroutine no longer changes that wait's result (a cancel is then left
 * pending for the next wait).
 */
#ifndef CONC_CORO_INT_H
#define CONC_CORO_INT_H

#include <stdbool.h>
#include "conc/coro.h"

/* The running coroutine, or NULL outside one. */
conc_coro *conc__coro_current(void);

/* A waiting point's entry check for the running coroutine c: returns
 * CONC_ECANCELED (consuming a pending cancel) if c was cancelled or its
 * loop is closing, else 0. */
int conc__coro_take_cancel(conc_coro *c);

/* Park the running coroutine c until conc__coro_unpark or deadline
 * (INFINITY: none; the caller checks a past deadline first).  Returns the
 * code given to unpark, CONC_ETIMEDOUT, CONC_ECANCELED (conc_coro_cancel
 * or loop destruction) or CONC_ENOMEM (timer heap; c did not park).  Does
 * not check cancellation first: call conc__coro_take_cancel. */
int conc__coro_park(conc_coro *c, double deadline);

/* Whether c is parked (in conc__coro_park, not yet unparked, timed out
 * or cancelled): only then may conc__coro_unpark be called on it. */
bool conc__coro_parked(const conc_coro *c);

/* Make the parked coroutine c runnable; its conc__coro_park returns
 * code.  c must be parked by conc__coro_park. */
void conc__coro_unpark(conc_coro *c, int code);

#endif
