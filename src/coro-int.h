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

#include <stdatomic.h>
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

/* ---- the loop's I/O poller (src/io.c) ------------------------------ */

typedef struct conc__io conc__io;

/* The loop's poller slot (NULL until created; io.c creates it by
 * compare-and-swap from any thread). */
_Atomic(conc__io *) *conc__loop_io_slot(conc_loop *l);
/* The thread id of l's thread. */
int conc__loop_tid(const conc_loop *l);
/* Whether the calling thread is l's thread. */
bool conc__loop_owned(const conc_loop *l);
/* The loop running on this thread (a coroutine's, or the one whose main
 * context runs a callback), or NULL. */
conc_loop *conc__loop_current(void);
/* Whether l is being destroyed.  Loop thread only. */
bool conc__loop_closing(const conc_loop *l);
/* c's loop (NULL once it finished). */
conc_loop *conc__coro_loop(const conc_coro *c);

/* Called by the scheduler (coro.c), loop thread only:
 * busy: anything registered that may wake a coroutine or needs polling
 *   (fd waits, watches, callback timers, bridge waits, queued messages,
 *   conc_loop_ref holds unless closing); once a poller exists the loop
 *   also sleeps in it for coroutine deadlines, so that messages from other
 *   threads wake it;
 * held: conc_loop_ref holds or queued cross-thread messages keep the loop
 *   running with no coroutine left (false while closing);
 * poll: wait for events until deadline (-INFINITY: do not wait, INFINITY:
 *   no limit; the poller's own timers shorten it) and handle them: wake
 *   fd waiters, run watch and timer callbacks, run cross-thread messages;
 * can_destroy: 0, or CONC_EBUSY while callback timers exist;
 * closing: destroy began (cross-thread spawns are refused from now);
 * destroy: after the last coroutine finished: drop queued messages, close
 *   the fds, free.  */
bool conc__io_busy(conc__io *io, bool closing);
bool conc__io_held(conc__io *io, bool closing);
void conc__io_poll(conc_loop *l, conc__io *io, double deadline);
int conc__io_can_destroy(conc__io *io);
void conc__io_closing(conc__io *io);
void conc__io_destroy(conc_loop *l, conc__io *io);

#endif
