/* conc/chan.h - channels and select between coroutines of one loop, and
 * coroutine-aware lock, event, semaphore and wait group (at the end).
 *
 * A channel carries void * values between coroutines of one loop
 * (conc/coro.h), in FIFO order.  With capacity 0 it is unbuffered: a send
 * completes only when a receiver takes the value (rendezvous).  With
 * capacity n a send completes at once while fewer than n values are
 * buffered.
 *
 *   conc_chan *ch;
 *   conc_chan_create(&ch, 0);
 *   // producer coroutine             // consumer coroutine
 *   conc_chan_send(ch, item, -1);      void *v;
 *   conc_chan_close(ch);               while (conc_chan_recv(ch, &v, -1) == 0)
 *                                        use(v);   // then CONC_ECLOSED
 *   conc_chan_release(ch);
 *
 * Values: the channel stores the pointers only and never frees what they
 * point to.  A value belongs to the channel from a successful send to the
 * recv that returns it; a send that fails (timeout, cancel, closed) leaves
 * it with the sender.  Values still buffered when the last reference goes
 * are dropped (not freed).
 *
 * Close: conc_chan_close stops sends (CONC_ECLOSED, also to senders parked
 * at that moment); receivers first drain the buffered values, then get
 * CONC_ECLOSED.
 *
 * Blocking calls (send, recv, select and their _until twins) are
 * "coroutine only": from outside a coroutine they return CONC_EPERM.
 * They park the coroutine, never the thread.  Each is a waiting point:
 * when the coroutine is cancelled (conc_coro_cancel) before or while it
 * waits, the call returns CONC_ECANCELED and has done nothing (no value
 * sent or taken); a cancel that arrives after the operation completed is
 * left pending for the next wait.  Timeouts are relative seconds
 * (negative waits forever, 0 polls), _until deadlines are absolute on
 * conc_now().
 *
 * Threads: a channel belongs to the loop thread of the coroutines using
 * it ("loop thread only"); it does no locking and must not be used by two
 * loops.  The try_ calls, close, retain and release may also run on that
 * thread outside a coroutine (before or between loop runs).
 */
#ifndef CONC_CHAN_H
#define CONC_CHAN_H

#include <stdbool.h>
#include <stddef.h>
#include "conc/visibility.h"
#include "conc/coro.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct conc_chan conc_chan;

/* Create a channel holding up to capacity buffered values (0:
 * unbuffered).  Returns 0 with *out holding one reference (drop it with
 * conc_chan_release), CONC_EINVAL (NULL out, capacity over 2^30),
 * CONC_ENOMEM.  Any thread; never blocks. */
CONC_EXTERN int conc_chan_create(conc_chan **out, size_t capacity);

/* Add a reference; returns ch (NULL is passed through).  Never fails. */
CONC_EXTERN conc_chan *conc_chan_retain(conc_chan *ch);

/* Drop a reference; the last one frees the channel, which must then have
 * no coroutine waiting on it (asserted).  NULL is ignored. */
CONC_EXTERN void conc_chan_release(conc_chan *ch);

/* Close the channel: parked senders wake with CONC_ECLOSED (their values
 * stay theirs), parked receivers (nothing buffered then) wake with
 * CONC_ECLOSED; later sends fail with CONC_ECLOSED, later receives drain
 * the buffer first.  Returns 0, CONC_ECLOSED if already closed,
 * CONC_EINVAL for NULL.  Loop thread only; never blocks. */
CONC_EXTERN int conc_chan_close(conc_chan *ch);

/* Send value, waiting at most timeout seconds for a receiver or buffer
 * room.  Returns 0 (the value now belongs to the channel/receiver),
 * CONC_ECLOSED (closed before or while waiting), CONC_ETIMEDOUT,
 * CONC_ECANCELED, CONC_EINVAL (NULL ch, NaN timeout), CONC_ENOMEM (timer
 * heap), CONC_EPERM outside a coroutine.  On any error the value was not
 * sent.  Coroutine only; parks the coroutine. */
CONC_EXTERN int conc_chan_send(conc_chan *ch, void *value, double timeout);
/* As conc_chan_send with an absolute deadline on conc_now(). */
CONC_EXTERN int conc_chan_send_until(conc_chan *ch, void *value,
                                     double deadline);
/* Send only if a receiver is waiting or the buffer has room.  Returns 0,
 * CONC_EAGAIN (would block), CONC_ECLOSED, CONC_EINVAL.  Loop thread
 * only; never blocks. */
CONC_EXTERN int conc_chan_try_send(conc_chan *ch, void *value);

/* Receive the next value into *value, waiting at most timeout seconds.
 * Returns 0 with *value set, CONC_ECLOSED (closed and drained: no value
 * will ever come; *value untouched), CONC_ETIMEDOUT, CONC_ECANCELED,
 * CONC_EINVAL (NULL ch or value, NaN timeout), CONC_ENOMEM (timer heap),
 * CONC_EPERM outside a coroutine.  Coroutine only; parks the coroutine. */
CONC_EXTERN int conc_chan_recv(conc_chan *ch, void **value, double timeout);
/* As conc_chan_recv with an absolute deadline on conc_now(). */
CONC_EXTERN int conc_chan_recv_until(conc_chan *ch, void **value,
                                     double deadline);
/* Receive only if a value is buffered or a sender is waiting.  Returns 0
 * with *value set, CONC_EAGAIN (nothing now), CONC_ECLOSED (closed and
 * drained), CONC_EINVAL.  Loop thread only; never blocks. */
CONC_EXTERN int conc_chan_try_recv(conc_chan *ch, void **value);

/* Buffered values now (0 for unbuffered) and the capacity; 0 for NULL.
 * Loop thread only; never fail. */
CONC_EXTERN size_t conc_chan_len(const conc_chan *ch);
CONC_EXTERN size_t conc_chan_cap(const conc_chan *ch);

/* ---- select --------------------------------------------------------- */

typedef enum conc_chan_op {
  CONC_CHAN_SEND = 1, /* send case.value */
  CONC_CHAN_RECV = 2  /* receive into case.value */
} conc_chan_op;

/* One case of a select.  A case with a NULL chan is disabled (skipped). */
typedef struct conc_chan_case {
  conc_chan *chan;
  conc_chan_op op;
  void *value; /* SEND: the value to send; RECV: set to the value received */
} conc_chan_case;

/* Wait until one of the n cases can proceed, at most timeout seconds, and
 * perform exactly that one; *index is its position.  When several can
 * proceed at once, the one chosen is random (each ready case equally
 * likely over many calls: no case starves another).  Returns:
 *   0             cases[*index] done (RECV: its value set);
 *   CONC_ECLOSED  cases[*index]'s channel is closed (a SEND case, or a
 *                 RECV case with nothing left to drain): nothing done;
 *   CONC_ETIMEDOUT, CONC_ECANCELED: no case done, *index = n;
 *   CONC_EINVAL   (NULL cases with n > 0, NULL index, bad op, NaN),
 *   CONC_ENOMEM   (more than 16 cases need a heap block; timer heap),
 *   CONC_EPERM    outside a coroutine.
 * With no enabled case it waits for the timeout (or a cancel).
 * Coroutine only; parks the coroutine. */
CONC_EXTERN int conc_chan_select(conc_chan_case *cases, size_t n,
                                 double timeout, size_t *index);
/* As conc_chan_select with an absolute deadline on conc_now(). */
CONC_EXTERN int conc_chan_select_until(conc_chan_case *cases, size_t n,
                                       double deadline, size_t *index);
/* As conc_chan_select without waiting: CONC_EAGAIN when no case can
 * proceed now.  Loop thread only; never blocks. */
CONC_EXTERN int conc_chan_try_select(conc_chan_case *cases, size_t n,
                                     size_t *index);

/* ---- coroutine-aware sync ------------------------------------------- */

/* Lock, event, semaphore and wait group for coroutines of one loop: a
 * wait parks the coroutine, never the thread (unlike conc/sync.h, whose
 * waits block the whole loop thread).  They mirror conc/sync.h's verbs.
 *
 * Memory: caller-allocated and embeddable; init before use, destroy when
 * done (destroy frees nothing; it returns CONC_EBUSY while a coroutine
 * waits or, for the lock, while it is held).  The fields are private.
 * Threads: loop thread only, no locking; waits are coroutine only
 * (CONC_EPERM elsewhere).  Waiters wake in FIFO order.  Each wait is a
 * waiting point: a cancel before or during it returns CONC_ECANCELED with
 * nothing acquired; a cancel after the wake-up was granted stays pending
 * for the next wait.  Timeouts are relative seconds (negative forever, 0
 * polls), _until deadlines absolute on conc_now(); a wait that times out
 * returns CONC_ETIMEDOUT.  Every wait can also return CONC_ENOMEM (timer
 * heap) and CONC_EINVAL (NULL object, NaN time). */

typedef struct conc_coro_waitq_ {
  void *head_, *tail_;
} conc_coro_waitq_;

typedef struct conc_coro_lock {
  conc_coro *owner_;
  conc_coro_waitq_ q_;
} conc_coro_lock;

typedef struct conc_coro_event {
  int set_;
  conc_coro_waitq_ q_;
} conc_coro_event;

typedef struct conc_coro_semaphore {
  unsigned value_;
  conc_coro_waitq_ q_;
} conc_coro_semaphore;

typedef struct conc_coro_wait_group {
  long count_;
  conc_coro_waitq_ q_;
} conc_coro_wait_group;

/* Lock (non-recursive, owned by a coroutine).  init: 0 or CONC_EINVAL for
 * NULL.  destroy: 0, CONC_EBUSY (held or waited on), CONC_EINVAL.
 * acquire: 0 (the caller owns it), CONC_EDEADLK (the caller already owns
 * it), CONC_ETIMEDOUT, CONC_ECANCELED, CONC_EPERM outside a coroutine.
 * try_acquire: 0, CONC_EAGAIN (held), CONC_EDEADLK, CONC_EPERM outside a
 * coroutine; never blocks.  release: hands the lock to the first waiter;
 * 0, CONC_EPERM (the caller is not the owner); never blocks.  locked:
 * whether held (false for NULL). */
CONC_EXTERN int conc_coro_lock_init(conc_coro_lock *l);
CONC_EXTERN int conc_coro_lock_destroy(conc_coro_lock *l);
CONC_EXTERN int conc_coro_lock_acquire(conc_coro_lock *l, double timeout);
CONC_EXTERN int conc_coro_lock_acquire_until(conc_coro_lock *l,
                                             double deadline);
CONC_EXTERN int conc_coro_lock_try_acquire(conc_coro_lock *l);
CONC_EXTERN int conc_coro_lock_release(conc_coro_lock *l);
CONC_EXTERN bool conc_coro_lock_locked(const conc_coro_lock *l);

/* Event (manual reset).  set wakes every waiter and lets later waits pass
 * until clear.  init/set/clear: 0 or CONC_EINVAL; destroy: 0, CONC_EBUSY,
 * CONC_EINVAL; never block (set/clear callable outside a coroutine on the
 * loop thread).  wait: 0 once set, CONC_ETIMEDOUT, CONC_ECANCELED,
 * CONC_EPERM outside a coroutine.  is_set: false for NULL. */
CONC_EXTERN int conc_coro_event_init(conc_coro_event *e);
CONC_EXTERN int conc_coro_event_destroy(conc_coro_event *e);
CONC_EXTERN int conc_coro_event_set(conc_coro_event *e);
CONC_EXTERN int conc_coro_event_clear(conc_coro_event *e);
CONC_EXTERN bool conc_coro_event_is_set(const conc_coro_event *e);
CONC_EXTERN int conc_coro_event_wait(conc_coro_event *e, double timeout);
CONC_EXTERN int conc_coro_event_wait_until(conc_coro_event *e,
                                           double deadline);

/* Counting semaphore.  init(value): 0 or CONC_EINVAL.  destroy: 0,
 * CONC_EBUSY, CONC_EINVAL.  acquire: 0 (one unit taken), CONC_ETIMEDOUT,
 * CONC_ECANCELED, CONC_EPERM outside a coroutine.  try_acquire: 0 or
 * CONC_EAGAIN; never blocks.  release(n): gives n units, first to waiters
 * in FIFO order; 0, CONC_EOVERFLOW (value would pass UINT_MAX; nothing
 * changed), CONC_EINVAL; never blocks.  value: units available (0 for
 * NULL). */
CONC_EXTERN int conc_coro_semaphore_init(conc_coro_semaphore *s,
                                         unsigned value);
CONC_EXTERN int conc_coro_semaphore_destroy(conc_coro_semaphore *s);
CONC_EXTERN int conc_coro_semaphore_acquire(conc_coro_semaphore *s,
                                            double timeout);
CONC_EXTERN int conc_coro_semaphore_acquire_until(conc_coro_semaphore *s,
                                                  double deadline);
CONC_EXTERN int conc_coro_semaphore_try_acquire(conc_coro_semaphore *s);
CONC_EXTERN int conc_coro_semaphore_release(conc_coro_semaphore *s,
                                            unsigned n);
CONC_EXTERN unsigned conc_coro_semaphore_value(const conc_coro_semaphore *s);

/* Wait group (Go's sync.WaitGroup).  add(delta) changes the counter;
 * when it reaches 0 every waiter wakes.  init: 0 or CONC_EINVAL.  destroy:
 * 0, CONC_EBUSY, CONC_EINVAL.  add/done (= add -1): 0, CONC_EOVERFLOW
 * (counter would go negative; nothing changed), CONC_EINVAL; never block.
 * wait: 0 once the counter is 0 (at once if it is), CONC_ETIMEDOUT,
 * CONC_ECANCELED, CONC_EPERM outside a coroutine.  count: the counter (0
 * for NULL). */
CONC_EXTERN int conc_coro_wait_group_init(conc_coro_wait_group *wg);
CONC_EXTERN int conc_coro_wait_group_destroy(conc_coro_wait_group *wg);
CONC_EXTERN int conc_coro_wait_group_add(conc_coro_wait_group *wg,
                                         long delta);
CONC_EXTERN int conc_coro_wait_group_done(conc_coro_wait_group *wg);
CONC_EXTERN int conc_coro_wait_group_wait(conc_coro_wait_group *wg,
                                          double timeout);
CONC_EXTERN int conc_coro_wait_group_wait_until(conc_coro_wait_group *wg,
                                                double deadline);
CONC_EXTERN long conc_coro_wait_group_count(const conc_coro_wait_group *wg);

#ifdef __cplusplus
}
#endif
#endif
