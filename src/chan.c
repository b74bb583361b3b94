/* chan.c - channels and select between coroutines of one loop.
 *
 * DESIGN
 * Everything runs on the loop's thread: no locks.  A channel is a ring
 * buffer of cap values plus two FIFO wait queues, senders and receivers.
 * Invariants: parked receivers only while the buffer is empty; parked
 * senders only while it is full (always, for cap 0); none once closed.
 *
 * Every blocking operation is a select (a single send or recv is a select
 * of one case).  The waiting coroutine puts one waiter record per enabled
 * case, on its own stack, into the channels' queues; all share one sel
 * record.  A counterpart completes a waiter directly: it moves the value,
 * sets sel.fired to the case's index and unparks the coroutine with the
 * result code (0, or CONC_ECLOSED from close).  Waiters whose select
 * already fired, or whose coroutine is no longer parked (its deadline or a
 * cancel woke it and it has not run yet), are stale: q_pop_live drops
 * them.  When the coroutine runs again it unlinks whatever waiters remain
 * linked.  So a value moves exactly once: either the counterpart completed
 * the waiter (wake code decided, a later cancel stays pending) or nothing
 * moved and the call returns its timeout/cancel code.
 *
 * Fairness: a select scans its cases from a random start (xorshift per
 * thread), so among the cases ready at once each is chosen equally often.
 */
#include "internal.h"
#include "conc/chan.h"
#include "coro-int.h"

#include <math.h>

#define NONE ((size_t)-1)
#define CAP_MAX ((size_t)1 << 30)
#define STACK_CASES 16

typedef struct sel {
  conc_coro *co;
  size_t fired; /* index of the completed case, NONE until then */
} sel;

typedef struct waiter {
  sel *s;
  size_t index;
  void *value; /* send: value offered; recv: value received */
  struct waiter *prev, *next;
  bool linked;
} waiter;

typedef struct waitq {
  waiter *head, *tail;
} waitq;

struct conc_chan {
  int refs;
  bool closed;
  size_t cap, len, head;
  waitq sendq, recvq;
  void *buf[];
};

/* ---- wait queues ---------------------------------------------------- */

static void q_push(waitq *q, waiter *w) {
  w->next = NULL;
  w->prev = q->tail;
  if (q->tail)
    q->tail->next = w;
  else
    q->head = w;
  q->tail = w;
  w->linked = true;
}

static void q_unlink(waitq *q, waiter *w) {
  if (w->prev)
    w->prev->next = w->next;
  else
    q->head = w->next;
  if (w->next)
    w->next->prev = w->prev;
  else
    q->tail = w->prev;
  w->prev = w->next = NULL;
  w->linked = false;
}

/* The first waiter that can still be completed, unlinked; stale ones are
 * dropped on the way. */
static waiter *q_pop_live(waitq *q) {
  waiter *w;
  while ((w = q->head)) {
    q_unlink(q, w);
    if (w->s->fired == NONE && conc__coro_parked(w->s->co))
      return w;
  }
  return NULL;
}

static void fire(waiter *w, int code) {
  w->s->fired = w->index;
  conc__coro_unpark(w->s->co, code);
}

/* ---- ring buffer ---------------------------------------------------- */

static void buf_push(conc_chan *ch, void *v) {
  CONC_ASSERT(ch->len < ch->cap);
  size_t i = ch->head + ch->len;
  if (i >= ch->cap)
    i -= ch->cap;
  ch->buf[i] = v;
  ch->len++;
}

static void *buf_pop(conc_chan *ch) {
  CONC_ASSERT(ch->len > 0);
  void *v = ch->buf[ch->head];
  if (++ch->head == ch->cap)
    ch->head = 0;
  ch->len--;
  return v;
}

/* ---- non-blocking steps: 0, CONC_ECLOSED or CONC_EAGAIN ------------- */

static int step_send(conc_chan *ch, void *v) {
  if (ch->closed)
    return CONC_ECLOSED;
  waiter *r = q_pop_live(&ch->recvq);
  if (r) {
    r->value = v;
    fire(r, 0);
    return 0;
  }
  if (ch->len < ch->cap) {
    buf_push(ch, v);
    return 0;
  }
  return CONC_EAGAIN;
}

static int step_recv(conc_chan *ch, void **v) {
  if (ch->len > 0) {
    *v = buf_pop(ch);
    waiter *s = q_pop_live(&ch->sendq); /* room now: take one sender */
    if (s) {
      buf_push(ch, s->value);
      fire(s, 0);
    }
    return 0;
  }
  waiter *s = q_pop_live(&ch->sendq);
  if (s) {
    *v = s->value;
    fire(s, 0);
    return 0;
  }
  return ch->closed ? CONC_ECLOSED : CONC_EAGAIN;
}

/* ---- channels ------------------------------------------------------- */

int conc_chan_create(conc_chan **out, size_t capacity) {
  if (!out || capacity > CAP_MAX)
    return CONC_EINVAL;
  conc_chan *ch = conc__calloc(1, sizeof *ch + capacity * sizeof(void *));
  if (!ch)
    return CONC_ENOMEM;
  ch->refs = 1;
  ch->cap = capacity;
  *out = ch;
  return 0;
}

conc_chan *conc_chan_retain(conc_chan *ch) {
  if (ch)
    ch->refs++;
  return ch;
}

void conc_chan_release(conc_chan *ch) {
  if (!ch)
    return;
  CONC_ASSERT(ch->refs > 0);
  if (--ch->refs > 0)
    return;
  /* Only stale waiters may remain (coroutines woken, not yet run): a
   * parked one would be a use after free. */
  CONC_MUST(!q_pop_live(&ch->sendq) && !q_pop_live(&ch->recvq));
  conc__free(ch);
}

int conc_chan_close(conc_chan *ch) {
  if (!ch)
    return CONC_EINVAL;
  if (ch->closed)
    return CONC_ECLOSED;
  ch->closed = true;
  waiter *w;
  while ((w = q_pop_live(&ch->recvq)))
    fire(w, CONC_ECLOSED);
  while ((w = q_pop_live(&ch->sendq)))
    fire(w, CONC_ECLOSED);
  return 0;
}

size_t conc_chan_len(const conc_chan *ch) { return ch ? ch->len : 0; }
size_t conc_chan_cap(const conc_chan *ch) { return ch ? ch->cap : 0; }

/* ---- select --------------------------------------------------------- */

static uint64_t rnd(void) {
  static _Thread_local uint64_t x;
  if (!x) {
    x = (uint64_t)(conc_now() * 1e9) ^ (uint64_t)(uintptr_t)&x;
    if (!x)
      x = 0x9e3779b97f4a7c15ull;
  }
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return x;
}

static int do_select(conc_chan_case *cases, size_t n, double deadline,
                     size_t *index, bool block) {
  conc_coro *c = NULL;
  if (block) {
    c = conc__coro_current();
    if (!c)
      return CONC_EPERM;
  }
  if ((!cases && n > 0) || !index || isnan(deadline))
    return CONC_EINVAL;
  for (size_t i = 0; i < n; i++)
    if (cases[i].chan && cases[i].op != CONC_CHAN_SEND &&
        cases[i].op != CONC_CHAN_RECV)
      return CONC_EINVAL;
  *index = n;
  if (block) {
    int err = conc__coro_take_cancel(c);
    if (err)
      return err;
  }
  size_t start = n > 1 ? (size_t)(rnd() % n) : 0;
  for (size_t k = 0; k < n; k++) {
    size_t i = start + k < n ? start + k : start + k - n;
    conc_chan_case *cs = &cases[i];
    if (!cs->chan)
      continue;
    int r = cs->op == CONC_CHAN_SEND ? step_send(cs->chan, cs->value)
                                     : step_recv(cs->chan, &cs->value);
    if (r != CONC_EAGAIN) {
      *index = i;
      return r;
    }
  }
  if (!block)
    return CONC_EAGAIN;
  if (deadline <= conc_now())
    return CONC_ETIMEDOUT;
  waiter local[STACK_CASES];
  waiter *w = local;
  if (n > STACK_CASES) {
    w = conc__malloc(n * sizeof *w);
    if (!w)
      return CONC_ENOMEM;
  }
  sel s = {.co = c, .fired = NONE};
  for (size_t i = 0; i < n; i++) {
    w[i] = (waiter){.s = &s, .index = i, .value = cases[i].value};
    if (!cases[i].chan)
      continue;
    q_push(cases[i].op == CONC_CHAN_SEND ? &cases[i].chan->sendq
                                         : &cases[i].chan->recvq,
           &w[i]);
  }
  int err = conc__coro_park(c, deadline);
  if (s.fired != NONE) {
    *index = s.fired;
    if (err == 0 && cases[s.fired].op == CONC_CHAN_RECV)
      cases[s.fired].value = w[s.fired].value;
  }
  for (size_t i = 0; i < n; i++)
    if (w[i].linked)
      q_unlink(cases[i].op == CONC_CHAN_SEND ? &cases[i].chan->sendq
                                             : &cases[i].chan->recvq,
               &w[i]);
  if (w != local)
    conc__free(w);
  return err;
}

int conc_chan_select_until(conc_chan_case *cases, size_t n, double deadline,
                           size_t *index) {
  return do_select(cases, n, deadline, index, true);
}

int conc_chan_select(conc_chan_case *cases, size_t n, double timeout,
                     size_t *index) {
  if (isnan(timeout))
    return conc__coro_current() ? CONC_EINVAL : CONC_EPERM;
  return do_select(cases, n, conc__deadline(timeout), index, true);
}

int conc_chan_try_select(conc_chan_case *cases, size_t n, size_t *index) {
  return do_select(cases, n, INFINITY, index, false);
}

/* ---- single operations ---------------------------------------------- */

int conc_chan_send_until(conc_chan *ch, void *value, double deadline) {
  if (!conc__coro_current())
    return CONC_EPERM;
  if (!ch)
    return CONC_EINVAL;
  conc_chan_case cs = {ch, CONC_CHAN_SEND, value};
  size_t i;
  return do_select(&cs, 1, deadline, &i, true);
}

int conc_chan_send(conc_chan *ch, void *value, double timeout) {
  if (isnan(timeout))
    return conc__coro_current() ? CONC_EINVAL : CONC_EPERM;
  return conc_chan_send_until(ch, value, conc__deadline(timeout));
}

int conc_chan_try_send(conc_chan *ch, void *value) {
  if (!ch)
    return CONC_EINVAL;
  return step_send(ch, value);
}

int conc_chan_recv_until(conc_chan *ch, void **value, double deadline) {
  if (!conc__coro_current())
    return CONC_EPERM;
  if (!ch || !value)
    return CONC_EINVAL;
  conc_chan_case cs = {ch, CONC_CHAN_RECV, NULL};
  size_t i;
  int err = do_select(&cs, 1, deadline, &i, true);
  if (err == 0)
    *value = cs.value;
  return err;
}

int conc_chan_recv(conc_chan *ch, void **value, double timeout) {
  if (isnan(timeout))
    return conc__coro_current() ? CONC_EINVAL : CONC_EPERM;
  return conc_chan_recv_until(ch, value, conc__deadline(timeout));
}

int conc_chan_try_recv(conc_chan *ch, void **value) {
  if (!ch || !value)
    return CONC_EINVAL;
  return step_recv(ch, value);
}
