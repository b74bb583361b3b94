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
#include <stdint.h>
#include "conc/coro.h"
#include "ctx.h"
#include "internal.h"
#include "stack.h"

typedef struct conc__io conc__io;

/* ---- the scheduler's records (coro.c owns them; here so that the hot
 * paths of chan.c inline the checks and the wake) ---------------------- */

/* States of a coroutine: see coro.c's DESIGN comment. */
enum { NEW, READY, YIELDED, RUNNING, WAITING, DONE };

#define NO_HEAP ((size_t)-1)



typedef struct conc__local {
  const void *key;
  void *value;
  void (*dtor)(void *);
  struct conc__local *next;
} conc__local;

struct conc_coro {
  conc__ctx ctx;
  conc__local *locals;      /* coroutine-local values */
  conc_loop *loop;          /* NULL once finished */
  conc_coro_fn fn;
  void *arg;
  void *result;
  int err;
  int state;
  int wake;                 /* what the current wait returns */
  bool cancel_pending;
  int refs;
  conc_coro *next;          /* run queue */
  conc_coro *all_prev, *all_next; /* loop's list of unfinished coroutines */
  /* timer */
  size_t heap_idx;
  double deadline;
  uint64_t seq;
  /* await */
  conc_coro *awaited;       /* the coroutine this one waits for */
  conc_coro *w_prev, *w_next; /* links in awaited->waiters */
  conc_coro *waiters, *waiters_tail; /* FIFO: woken in await order */
  conc__stack stack;
  conc__stack_pool *pool;
  uint64_t fp;              /* spawner's FP control state (ctx.h) */
};

typedef struct pool_entry {
  size_t stack_size;
  conc__stack_pool *pool;
  struct pool_entry *next;
} pool_entry;

struct conc_loop {
  conc__ctx main;
  /* The I/O poller (io.c): NULL until first used; created by any thread
   * and published once by compare-and-swap (release; loads acquire). */
  _Atomic(conc__io *) io;
  conc_coro *current;
  conc_coro *rq_head, *rq_tail;
  size_t rq_len;
  size_t tick_left;         /* coroutines the current tick may still run */
  size_t since_poll;        /* switches since main last polled (switch_out) */
  conc_coro **heap;
  size_t heap_len, heap_cap;
  uint64_t seq;
  conc_coro *all;           /* unfinished coroutines */
  size_t live;
  conc_coro *zombie;        /* finished, to reap from main */
  pool_entry *pools;
  conc_coro *free_recs;     /* recycled records (linked by next) */
  size_t n_free_recs;
  size_t stack_size;
  int owner_tid;
  bool running;
  bool closing;
};

/* The loop running on this thread (a coroutine's, or the one whose main
 * context runs a callback), or NULL.  Initial-exec TLS: one static slot. */
extern _Thread_local conc_loop *conc__tls_loop
    __attribute__((tls_model("initial-exec")));

/* Append c to l's run queue. */
static inline void conc__rq_push(conc_loop *l, conc_coro *c) {
  c->next = NULL;
  if (l->rq_tail)
    l->rq_tail->next = c;
  else
    l->rq_head = c;
  l->rq_tail = c;
  l->rq_len++;
}

/* The running coroutine, or NULL outside one. */
static inline conc_coro *conc__coro_current(void) {
  conc_loop *l = conc__tls_loop;
  return l ? l->current : NULL;
}

/* A waiting point's entry check for the running coroutine c: returns
 * CONC_ECANCELED (consuming a pending cancel) if c was cancelled or its
 * loop is closing, else 0. */
static inline int conc__coro_take_cancel(conc_coro *c) {
  if (c->cancel_pending || c->loop->closing) {
    c->cancel_pending = false;
    return CONC_ECANCELED;
  }
  return 0;
}

/* Park the running coroutine c until conc__coro_unpark or deadline
 * (INFINITY: none; the caller checks a past deadline first).  Returns the
 * code given to unpark, CONC_ETIMEDOUT, CONC_ECANCELED (conc_coro_cancel
 * or loop destruction) or CONC_ENOMEM (timer heap; c did not park).  Does
 * not check cancellation first: call conc__coro_take_cancel. */
int conc__coro_park_timed(conc_coro *c, double deadline);
/* Leave the running coroutine c (queued or parked already) for the next
 * runnable one; returns when c runs again (coro.c's switch_out). */
void conc__coro_switch_out(conc_loop *l, conc_coro *c);
static inline int conc__coro_park(conc_coro *c, double deadline) {
  CONC_ASSERT(c && c == conc__coro_current());
  if (deadline != INFINITY)
    return conc__coro_park_timed(c, deadline);
  c->state = WAITING;
  conc__coro_switch_out(c->loop, c);
  return c->wake;
}

/* Whether c is parked (in conc__coro_park, not yet unparked, timed out
 * or cancelled): only then may conc__coro_unpark be called on it. */
static inline bool conc__coro_parked(const conc_coro *c) {
  return c->state == WAITING && !c->awaited;
}

/* conc__coro_unpark's general case (c has a deadline armed). */
void conc__coro_wake(conc_coro *c, int code);

/* Make the parked coroutine c runnable; its conc__coro_park returns
 * code.  c must be parked by conc__coro_park. */
static inline void conc__coro_unpark(conc_coro *c, int code) {
  CONC_ASSERT(c->loop && c->state == WAITING && !c->awaited);
  if (c->heap_idx != NO_HEAP) {
    conc__coro_wake(c, code);
    return;
  }
  c->wake = code;
  c->state = READY;
  conc__rq_push(c->loop, c);
}

/* ---- the loop's I/O poller (src/io.c) ------------------------------ */

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
