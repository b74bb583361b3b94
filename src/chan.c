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
 * A single send or receive (conc_chan_send/recv and their _until forms)
 * takes a path of its own, chan_op, inlined: the select of one case
 * without the case array, the order shuffle or the waiter array, with
 * the same waiter records and the same rules.
 *
 * Fairness: a select scans its cases in a random order (xorshift per
 * thread; a random start beyond STACK_CASES cases), so among the cases
 * ready at once each is chosen equally often.
 */
#include "internal.h"
#include "conc/chan.h"
#include "coro-int.h"

#include <limits.h>
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

static inline __attribute__((always_inline)) void q_push(waitq *q, waiter *w) {
  w->next = NULL;
  w->prev = q->tail;
  if (q->tail)
    q->tail->next = w;
  else
    q->head = w;
  q->tail = w;
  w->linked = true;
}

static inline __attribute__((always_inline)) void q_unlink(waitq *q, waiter *w) {
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
static inline __attribute__((always_inline)) waiter *q_pop_live(waitq *q) {
  waiter *w;
  while ((w = q->head)) {
    q->head = w->next; /* unlink the head (its own links are dead now) */
    if (q->head)
      q->head->prev = NULL;
    else
      q->tail = NULL;
    w->linked = false;
    if (w->s->fired == NONE && conc__coro_parked(w->s->co))
      return w;
  }
  return NULL;
}

static inline __attribute__((always_inline)) void fire(waiter *w, int code) {
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

static inline __attribute__((always_inline)) int step_send(conc_chan *ch, void *v) {
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

static inline __attribute__((always_inline)) int step_recv(conc_chan *ch, void **v) {
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
  /* a random order (as Go's pollorder): each ready case is first equally
   * often, whatever the disabled or unready ones around it.  Beyond
   * STACK_CASES cases, a random start (cheaper, slightly biased). */
  uint16_t order[STACK_CASES];
  bool shuffled = n > 1 && n <= STACK_CASES;
  if (shuffled) {
    for (size_t i = 0; i < n; i++) {
      size_t j = (size_t)(rnd() % (i + 1)); /* inside-out Fisher-Yates */
      if (j != i)
        order[i] = order[j];
      order[j] = (uint16_t)i;
    }
  }
  size_t start = n > STACK_CASES ? (size_t)(rnd() % n) : 0;
  for (size_t k = 0; k < n; k++) {
    size_t i = shuffled ? order[k]
                        : (start + k < n ? start + k : start + k - n);
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
  if (deadline < INFINITY && deadline <= conc_now()) /* no clock read */
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

/* A single send (recv false) or receive: the select of one case, without
 * the order, the case array or the waiter array.  *v is the value to send,
 * or receives the value. */
static inline __attribute__((always_inline)) int chan_op(conc_chan *ch, bool recv, void **v, double deadline) {
  conc_coro *c = conc__coro_current();
  if (!c)
    return CONC_EPERM;
  if (!ch) /* a NaN deadline is refused by the callers */
    return CONC_EINVAL;
  int err = conc__coro_take_cancel(c);
  if (err)
    return err;
  err = recv ? step_recv(ch, v) : step_send(ch, *v);
  if (err != CONC_EAGAIN)
    return err;
  if (deadline < INFINITY && deadline <= conc_now())
    return CONC_ETIMEDOUT;
  sel s;
  s.co = c;
  s.fired = NONE;
  waiter w; /* q_push sets the links */
  w.s = &s;
  w.index = 0;
  w.value = *v;
  waitq *q = recv ? &ch->recvq : &ch->sendq;
  q_push(q, &w);
  err = conc__coro_park(c, deadline);
  if (s.fired != NONE && err == 0 && recv)
    *v = w.value;
  if (w.linked)
    q_unlink(q, &w);
  return err;
}

int conc_chan_send_until(conc_chan *ch, void *value, double deadline) {
  if (isnan(deadline))
    return conc__coro_current() ? CONC_EINVAL : CONC_EPERM;
  return chan_op(ch, false, &value, deadline);
}

int conc_chan_send(conc_chan *ch, void *value, double timeout) {
  if (isnan(timeout))
    return conc__coro_current() ? CONC_EINVAL : CONC_EPERM;
  return chan_op(ch, false, &value, conc__deadline(timeout));
}

int conc_chan_try_send(conc_chan *ch, void *value) {
  if (!ch)
    return CONC_EINVAL;
  return step_send(ch, value);
}

int conc_chan_recv_until(conc_chan *ch, void **value, double deadline) {
  if (!value || isnan(deadline))
    return conc__coro_current() ? CONC_EINVAL : CONC_EPERM;
  void *v = NULL;
  int err = chan_op(ch, true, &v, deadline);
  if (err == 0)
    *value = v;
  return err;
}

int conc_chan_recv(conc_chan *ch, void **value, double timeout) {
  if (isnan(timeout) || !value)
    return conc__coro_current() ? CONC_EINVAL : CONC_EPERM;
  void *v = NULL;
  int err = chan_op(ch, true, &v, conc__deadline(timeout));
  if (err == 0)
    *value = v;
  return err;
}

int conc_chan_try_recv(conc_chan *ch, void **value) {
  if (!ch || !value)
    return CONC_EINVAL;
  return step_recv(ch, value);
}

/* ---- coroutine-aware sync -------------------------------------------
 * Each object keeps a FIFO of cwaiter records that live on the waiting
 * coroutines' stacks (conc_coro_waitq_ holds head and tail).  A granting
 * side (release, set, add) pops the first waiter whose coroutine is still
 * parked, grants it (lock ownership, a semaphore unit) and unparks it with
 * 0; stale waiters (coroutine already woken by its deadline or a cancel)
 * are dropped on the way, and the woken coroutine unlinks its own record
 * if it is still linked.  So a grant is never lost: either the waiter got
 * it (wake code 0) or nobody did. */

typedef struct cwaiter {
  conc_coro *co;
  struct cwaiter *prev, *next;
  bool linked;
} cwaiter;

static void cq_push(conc_coro_waitq_ *q, cwaiter *w) {
  w->next = NULL;
  w->prev = q->tail_;
  if (q->tail_)
    ((cwaiter *)q->tail_)->next = w;
  else
    q->head_ = w;
  q->tail_ = w;
  w->linked = true;
}

static void cq_unlink(conc_coro_waitq_ *q, cwaiter *w) {
  if (w->prev)
    w->prev->next = w->next;
  else
    q->head_ = w->next;
  if (w->next)
    w->next->prev = w->prev;
  else
    q->tail_ = w->prev;
  w->prev = w->next = NULL;
  w->linked = false;
}

static cwaiter *cq_pop_live(conc_coro_waitq_ *q) {
  cwaiter *w;
  while ((w = q->head_)) {
    cq_unlink(q, w);
    if (conc__coro_parked(w->co))
      return w;
  }
  return NULL;
}

/* Drop stale waiters; true if a parked one remains. */
static bool cq_busy(conc_coro_waitq_ *q) {
  cwaiter *w = q->head_;
  bool busy = false;
  while (w) {
    cwaiter *n = w->next;
    if (conc__coro_parked(w->co))
      busy = true;
    else
      cq_unlink(q, w);
    w = n;
  }
  return busy;
}

/* Park c on q until granted (0) or deadline/cancel. */
static int cq_wait(conc_coro *c, conc_coro_waitq_ *q, double deadline) {
  if (deadline < INFINITY && deadline <= conc_now()) /* no clock read */
    return CONC_ETIMEDOUT;
  cwaiter w = {.co = c};
  cq_push(q, &w);
  int err = conc__coro_park(c, deadline);
  if (w.linked)
    cq_unlink(q, &w);
  return err;
}

/* Common entry of every wait: the coroutine, or NULL with *err set. */
static conc_coro *wait_entry(const void *obj, double deadline, int *err) {
  conc_coro *c = conc__coro_current();
  if (!c) {
    *err = CONC_EPERM;
    return NULL;
  }
  if (!obj || isnan(deadline)) {
    *err = CONC_EINVAL;
    return NULL;
  }
  *err = 0;
  return c;
}

/* lock */

int conc_coro_lock_init(conc_coro_lock *l) {
  if (!l)
    return CONC_EINVAL;
  memset(l, 0, sizeof *l);
  return 0;
}

int conc_coro_lock_destroy(conc_coro_lock *l) {
  if (!l)
    return CONC_EINVAL;
  return l->owner_ || cq_busy(&l->q_) ? CONC_EBUSY : 0;
}

int conc_coro_lock_acquire_until(conc_coro_lock *l, double deadline) {
  int err;
  conc_coro *c = wait_entry(l, deadline, &err);
  if (!c)
    return err;
  if (l->owner_ == c)
    return CONC_EDEADLK;
  err = conc__coro_take_cancel(c);
  if (err)
    return err;
  if (!l->owner_) {
    l->owner_ = c;
    return 0;
  }
  err = cq_wait(c, &l->q_, deadline);
  CONC_ASSERT(err != 0 || l->owner_ == c);
  return err;
}

int conc_coro_lock_acquire(conc_coro_lock *l, double timeout) {
  return conc_coro_lock_acquire_until(
      l, isnan(timeout) ? timeout : conc__deadline(timeout));
}

int conc_coro_lock_try_acquire(conc_coro_lock *l) {
  conc_coro *c = conc__coro_current();
  if (!c)
    return CONC_EPERM;
  if (!l)
    return CONC_EINVAL;
  if (l->owner_ == c)
    return CONC_EDEADLK;
  if (l->owner_)
    return CONC_EAGAIN;
  l->owner_ = c;
  return 0;
}

int conc_coro_lock_release(conc_coro_lock *l) {
  if (!l)
    return CONC_EINVAL;
  conc_coro *c = conc__coro_current();
  if (!c || l->owner_ != c)
    return CONC_EPERM;
  cwaiter *w = cq_pop_live(&l->q_);
  l->owner_ = w ? w->co : NULL;
  if (w)
    conc__coro_unpark(w->co, 0);
  return 0;
}

bool conc_coro_lock_locked(const conc_coro_lock *l) {
  return l && l->owner_;
}

/* event */

int conc_coro_event_init(conc_coro_event *e) {
  if (!e)
    return CONC_EINVAL;
  memset(e, 0, sizeof *e);
  return 0;
}

int conc_coro_event_destroy(conc_coro_event *e) {
  if (!e)
    return CONC_EINVAL;
  return cq_busy(&e->q_) ? CONC_EBUSY : 0;
}

int conc_coro_event_set(conc_coro_event *e) {
  if (!e)
    return CONC_EINVAL;
  e->set_ = 1;
  cwaiter *w;
  while ((w = cq_pop_live(&e->q_)))
    conc__coro_unpark(w->co, 0);
  return 0;
}

int conc_coro_event_clear(conc_coro_event *e) {
  if (!e)
    return CONC_EINVAL;
  e->set_ = 0;
  return 0;
}

bool conc_coro_event_is_set(const conc_coro_event *e) {
  return e && e->set_;
}

int conc_coro_event_wait_until(conc_coro_event *e, double deadline) {
  int err;
  conc_coro *c = wait_entry(e, deadline, &err);
  if (!c)
    return err;
  err = conc__coro_take_cancel(c);
  if (err)
    return err;
  return e->set_ ? 0 : cq_wait(c, &e->q_, deadline);
}

int conc_coro_event_wait(conc_coro_event *e, double timeout) {
  return conc_coro_event_wait_until(
      e, isnan(timeout) ? timeout : conc__deadline(timeout));
}

/* semaphore */

int conc_coro_semaphore_init(conc_coro_semaphore *s, unsigned value) {
  if (!s)
    return CONC_EINVAL;
  memset(s, 0, sizeof *s);
  s->value_ = value;
  return 0;
}

int conc_coro_semaphore_destroy(conc_coro_semaphore *s) {
  if (!s)
    return CONC_EINVAL;
  return cq_busy(&s->q_) ? CONC_EBUSY : 0;
}

int conc_coro_semaphore_acquire_until(conc_coro_semaphore *s,
                                      double deadline) {
  int err;
  conc_coro *c = wait_entry(s, deadline, &err);
  if (!c)
    return err;
  err = conc__coro_take_cancel(c);
  if (err)
    return err;
  if (s->value_ > 0) {
    s->value_--;
    return 0;
  }
  return cq_wait(c, &s->q_, deadline); /* 0: a release handed us a unit */
}

int conc_coro_semaphore_acquire(conc_coro_semaphore *s, double timeout) {
  return conc_coro_semaphore_acquire_until(
      s, isnan(timeout) ? timeout : conc__deadline(timeout));
}

int conc_coro_semaphore_try_acquire(conc_coro_semaphore *s) {
  if (!s)
    return CONC_EINVAL;
  if (s->value_ == 0)
    return CONC_EAGAIN;
  s->value_--;
  return 0;
}

int conc_coro_semaphore_release(conc_coro_semaphore *s, unsigned n) {
  if (!s)
    return CONC_EINVAL;
  if (UINT_MAX - s->value_ < n)
    return CONC_EOVERFLOW;
  for (; n > 0; n--) {
    cwaiter *w = cq_pop_live(&s->q_);
    if (!w)
      break;
    conc__coro_unpark(w->co, 0);
  }
  s->value_ += n;
  return 0;
}

unsigned conc_coro_semaphore_value(const conc_coro_semaphore *s) {
  return s ? s->value_ : 0;
}

/* wait group */

int conc_coro_wait_group_init(conc_coro_wait_group *wg) {
  if (!wg)
    return CONC_EINVAL;
  memset(wg, 0, sizeof *wg);
  return 0;
}

int conc_coro_wait_group_destroy(conc_coro_wait_group *wg) {
  if (!wg)
    return CONC_EINVAL;
  return cq_busy(&wg->q_) ? CONC_EBUSY : 0;
}

int conc_coro_wait_group_add(conc_coro_wait_group *wg, long delta) {
  if (!wg)
    return CONC_EINVAL;
  if (delta < 0 ? wg->count_ < -delta : LONG_MAX - wg->count_ < delta)
    return CONC_EOVERFLOW;
  wg->count_ += delta;
  if (wg->count_ == 0) {
    cwaiter *w;
    while ((w = cq_pop_live(&wg->q_)))
      conc__coro_unpark(w->co, 0);
  }
  return 0;
}

int conc_coro_wait_group_done(conc_coro_wait_group *wg) {
  return conc_coro_wait_group_add(wg, -1);
}

int conc_coro_wait_group_wait_until(conc_coro_wait_group *wg,
                                    double deadline) {
  int err;
  conc_coro *c = wait_entry(wg, deadline, &err);
  if (!c)
    return err;
  err = conc__coro_take_cancel(c);
  if (err)
    return err;
  return wg->count_ == 0 ? 0 : cq_wait(c, &wg->q_, deadline);
}

int conc_coro_wait_group_wait(conc_coro_wait_group *wg, double timeout) {
  return conc_coro_wait_group_wait_until(
      wg, isnan(timeout) ? timeout : conc__deadline(timeout));
}

long conc_coro_wait_group_count(const conc_coro_wait_group *wg) {
  return wg ? wg->count_ : 0;
}
