/* bridge.c - coroutines awaiting executor futures (conc/net.h):
 * conc_coro_await_future and conc_coro_run_in_executor.
 *
 * DESIGN
 * A coroutine that awaits a pending future attaches a record (fwait) to it
 * with conc_future_add_done_callback and parks.  The callback runs on
 * whichever thread completes the future; it posts the record, which starts
 * with a conc__msg, to the loop's inbox (io.c), whose eventfd wakes the
 * loop; the loop's thread runs the message, which unparks the coroutine if
 * it still waits on that record.  The record has two references, the
 * callback's (dropped after delivery, or when the loop is gone and the
 * post fails) and the waiter's (dropped when it stops waiting, for any
 * reason), so a coroutine may time out or be cancelled while the future
 * is still pending: the record outlives the wait until the future
 * completes.  The record holds a reference to the inbox, not to the loop,
 * so a future completing after the loop was destroyed is harmless.
 *
 * Fields: refs (atomic) and the message link belong to both sides (the
 * link is written under the inbox lock); co and waiting are the loop
 * thread's only.
 *
 * Shielded waits (run_in_executor once the task runs, file operations):
 * a cancel does not end the wait, because the task still uses memory of
 * the caller; the wait goes on until the future is done and then returns
 * CONC_ECANCELED.  While the loop is being destroyed such a coroutine stays
 * parked until the task finishes: destroy polls for the wake-up meanwhile.
 */
#include "internal.h"
#include "io-int.h"

typedef struct fwait {
  conc__msg m; /* first: the message is the record */
  _Atomic int refs;
  conc__remote *r;
  conc_coro *co; /* loop thread only */
  bool waiting;  /* loop thread only */
} fwait;

static void fwait_unref(fwait *w) {
  /* acq_rel: the last holder sees the other side's writes before freeing. */
  if (atomic_fetch_sub_explicit(&w->refs, 1, memory_order_acq_rel) != 1)
    return;
  conc__remote_release(w->r);
  conc__free(w);
}

/* On the loop thread (or dropped by destroy). */
static void fwait_run(conc_loop *l, conc__msg *m, bool dropped) {
  (void)l;
  fwait *w = (fwait *)m;
  if (!dropped && w->waiting && conc__coro_parked(w->co)) {
    w->waiting = false;
    conc__coro_unpark(w->co, 0);
  }
  fwait_unref(w);
}

/* The future's done callback: any thread. */
static int fwait_cb(conc_future *f, void *arg) {
  (void)f;
  fwait *w = arg;
  if (conc__remote_post(w->r, &w->m) != 0)
    fwait_unref(w); /* the loop is gone */
  return 0;
}

int conc__await_future(conc_coro *c, conc_future *f, double deadline,
                       bool shield, void **result) {
  bool cancelled = false;
  int err = conc__coro_take_cancel(c);
  if (err) {
    if (!shield)
      return err;
    cancelled = true;
  }
  if (!conc_future_done(f)) {
    if (deadline <= conc_now())
      return CONC_ETIMEDOUT;
    conc__io *io;
    err = conc__io_get(conc__coro_loop(c), &io);
    if (err)
      return err;
    fwait *w = conc__malloc(sizeof *w);
    if (!w)
      return CONC_ENOMEM;
    atomic_init(&w->refs, 2);
    w->m.run = fwait_run;
    w->m.next = NULL;
    w->co = c;
    w->waiting = true;
    w->r = conc__io_remote(io);
    err = conc_future_add_done_callback(f, fwait_cb, w);
    if (err) {
      conc__remote_release(w->r);
      conc__free(w);
      return err;
    }
    for (;;) {
      conc__io_wait_begin(io);
      err = conc__coro_park(c, deadline);
      conc__io_wait_end(io);
      if (err == CONC_ECANCELED && shield) {
        cancelled = true;
        if (!conc_future_done(f))
          continue; /* still in use: wait on */
        err = 0;
      }
      break;
    }
    w->waiting = false;
    fwait_unref(w);
    if (err)
      return err;
  }
  err = conc_future_result(f, 0, result);
  return cancelled ? CONC_ECANCELED : err;
}

int conc_coro_await_future_until(conc_future *f, double deadline,
                                 void **result) {
  conc_coro *c = conc__coro_current();
  if (!c)
    return CONC_EPERM;
  if (!f || isnan(deadline))
    return CONC_EINVAL;
  return conc__await_future(c, f, deadline, false, result);
}

int conc_coro_await_future(conc_future *f, double timeout, void **result) {
  return conc_coro_await_future_until(f, conc__timeout_deadline(timeout),
                                      result);
}

int conc_coro_run_in_executor(conc_executor *ex, conc_fn fn, void *arg,
                              void **result) {
  conc_coro *c = conc__coro_current();
  if (!c)
    return CONC_EPERM;
  if (!fn)
    return CONC_EINVAL;
  int err = conc__coro_take_cancel(c);
  if (err)
    return err;
  if (!ex) {
    err = conc_executor_default(&ex);
    if (err)
      return err;
  }
  conc_future *f;
  err = conc_executor_submit(ex, fn, arg, &f);
  if (err)
    return err;
  err = conc__await_future(c, f, INFINITY, false, result);
  if (err == CONC_ECANCELED && !conc_future_done(f) && !conc_future_cancel(f)) {
    /* Running: fn may use arg until it returns, so wait for it. */
    conc__await_future(c, f, INFINITY, true, result);
    err = CONC_ECANCELED;
  }
  conc_future_release(f);
  return err;
}
