/* wait.c - conc_wait and conc_as_completed over any futures.
 *
 * DESIGN
 * Both register done callbacks on the futures that are not done yet.  A
 * callback cannot be removed, so the shared state it points to is
 * reference-counted: one reference for the waiter, one per registered
 * callback; the last one frees it.
 *
 * as_completed: callbacks append the future's index to `ready` (slot taken
 * by fetch_add on `tail`, index stored with release, then `seq` bumped and
 * woken).  The iterator reads slots in order; a slot still holding EMPTY is
 * being written, so it waits on `seq`.
 *
 * conc_wait: callbacks count completions (and failures for
 * FIRST_EXCEPTION) in `events` and wake the waiter; the waiter re-scans the
 * futures after every wake-up.  ALL_COMPLETED waits on each future in turn
 * instead (no allocation; a pool worker helps while waiting).
 */
#include "executor-int.h"

#define EMPTY SIZE_MAX

struct conc_as_completed {
  _Atomic uint32_t refs;
  _Atomic uint32_t seq;
  _Atomic uint32_t waiting;
  _Atomic size_t tail;
  size_t head, n;
  double deadline;
  conc_future **fs;
  _Atomic size_t *ready;
};

static void ac_unref(conc_as_completed *it) {
  /* acq_rel: the last owner sees every callback's writes */
  if (atomic_fetch_sub_explicit(&it->refs, 1, memory_order_acq_rel) != 1)
    return;
  for (size_t i = 0; i < it->n; i++)
    conc_future_release(it->fs[i]);
  conc__free(it->fs);
  conc__free((void *)it->ready);
  conc__free(it);
}

struct ac_cb {
  conc_as_completed *it;
  size_t idx;
};

static void ac_push(conc_as_completed *it, size_t idx) {
  size_t slot = atomic_fetch_add_explicit(&it->tail, 1, memory_order_relaxed);
  /* release: pairs with the iterator's acquire load of the slot */
  atomic_store_explicit(&it->ready[slot], idx, memory_order_release);
  atomic_fetch_add_explicit(&it->seq, 1, memory_order_seq_cst);
  if (atomic_load_explicit(&it->waiting, memory_order_seq_cst))
    conc__futex_wake(&it->seq, 1, false);
}

static int ac_done_node(conc_future *f, void *arg) {
  (void)f;
  struct ac_cb *c = arg;
  conc_as_completed *it = c->it;
  ac_push(it, c->idx);
  conc__free(c);
  ac_unref(it);
  return 0;
}

int conc_as_completed_create(conc_future *const *fs, size_t n, double timeout,
                             conc_as_completed **out) {
  if (!out)
    return CONC_EINVAL;
  *out = NULL;
  if (!fs && n)
    return CONC_EINVAL;
  for (size_t i = 0; i < n; i++)
    if (!fs[i])
      return CONC_EINVAL;
  conc_as_completed *it = conc__calloc(1, sizeof *it);
  if (!it)
    return CONC_ENOMEM;
  it->fs = conc__calloc(n ? n : 1, sizeof *it->fs);
  it->ready = conc__malloc((n ? n : 1) * sizeof(size_t));
  if (!it->fs || !it->ready) {
    conc__free(it->fs);
    conc__free((void *)it->ready);
    conc__free(it);
    return CONC_ENOMEM;
  }
  it->n = n;
  it->deadline = conc__deadline(timeout);
  atomic_init(&it->refs, 1);
  for (size_t i = 0; i < n; i++) {
    atomic_init(&it->ready[i], EMPTY);
    it->fs[i] = conc_future_retain(fs[i]);
  }
  for (size_t i = 0; i < n; i++) {
    if (conc_future_done(fs[i])) {
      ac_push(it, i);
      continue;
    }
    struct ac_cb *c = conc__malloc(sizeof *c);
    if (!c)
      goto nomem;
    c->it = it;
    c->idx = i;
    atomic_fetch_add_explicit(&it->refs, 1, memory_order_relaxed);
    if (conc_future_add_done_callback(fs[i], ac_done_node, c) != 0) {
      atomic_fetch_sub_explicit(&it->refs, 1, memory_order_relaxed);
      conc__free(c);
      goto nomem;
    }
  }
  *out = it;
  return 0;
nomem:
  /* Callbacks already registered keep their references; they free the
   * iterator when they run. */
  ac_unref(it);
  return CONC_ENOMEM;
}

int conc_as_completed_next(conc_as_completed *it, conc_future **f) {
  if (f)
    *f = NULL;
  if (!it || !f)
    return CONC_EINVAL;
  if (it->head == it->n)
    return 0;
  for (;;) {
    uint32_t s = atomic_load_explicit(&it->seq, memory_order_seq_cst);
    size_t idx = atomic_load_explicit(&it->ready[it->head],
                                      memory_order_acquire);
    if (idx != EMPTY) {
      it->head++;
      *f = it->fs[idx];
      return 1;
    }
    atomic_store_explicit(&it->waiting, 1, memory_order_seq_cst);
    idx = atomic_load_explicit(&it->ready[it->head], memory_order_seq_cst);
    if (idx == EMPTY &&
        conc__futex_wait(&it->seq, s, it->deadline, false) == CONC_ETIMEDOUT) {
      idx = atomic_load_explicit(&it->ready[it->head], memory_order_acquire);
      if (idx == EMPTY) {
        atomic_store_explicit(&it->waiting, 0, memory_order_relaxed);
        return CONC_ETIMEDOUT;
      }
    }
    atomic_store_explicit(&it->waiting, 0, memory_order_relaxed);
  }
}

void conc_as_completed_destroy(conc_as_completed *it) {
  if (it)
    ac_unref(it);
}

/* ---- conc_wait ---- */

struct waiter {
  _Atomic uint32_t refs;
  _Atomic uint32_t events;
};

static void waiter_unref(struct waiter *w) {
  if (atomic_fetch_sub_explicit(&w->refs, 1, memory_order_acq_rel) == 1)
    conc__free(w);
}

static int wait_cb(conc_future *f, void *arg) {
  (void)f;
  struct waiter *w = arg;
  atomic_fetch_add_explicit(&w->events, 1, memory_order_seq_cst);
  conc__futex_wake(&w->events, 1, false);
  waiter_unref(w);
  return 0;
}

static bool is_exception(const conc_future *f) {
  int o = conc_future_error(f, NULL, NULL);
  return o != 0 && o != CONC_ECANCELED && o != CONC_EAGAIN;
}

/* Count done futures; true when the condition holds. */
static bool scan(conc_future *const *fs, size_t n, conc_return_when rw,
                 bool *done, size_t *n_done) {
  size_t d = 0;
  bool exc = false;
  for (size_t i = 0; i < n; i++) {
    bool x = conc_future_done(fs[i]);
    if (done)
      done[i] = x;
    if (x) {
      d++;
      if (rw == CONC_FIRST_EXCEPTION && is_exception(fs[i]))
        exc = true;
    }
  }
  if (n_done)
    *n_done = d;
  if (d == n)
    return true;
  if (rw == CONC_FIRST_COMPLETED)
    return d > 0;
  if (rw == CONC_FIRST_EXCEPTION)
    return exc;
  return false;
}

int conc_wait(conc_future *const *fs, size_t n, double timeout,
              conc_return_when rw, bool *done, size_t *n_done) {
  if (n_done)
    *n_done = 0;
  if ((!fs && n) || rw < CONC_FIRST_COMPLETED || rw > CONC_ALL_COMPLETED)
    return CONC_EINVAL;
  for (size_t i = 0; i < n; i++)
    if (!fs[i])
      return CONC_EINVAL;
  double deadline = conc__deadline(timeout);
  if (scan(fs, n, rw, done, n_done))
    return 0;
  if (rw == CONC_ALL_COMPLETED) {
    for (size_t i = 0; i < n; i++) {
      int rc = conc_future_result_until(fs[i], deadline, NULL);
      if (rc == CONC_ETIMEDOUT || rc == CONC_EBROKEN)
        break;
    }
    return scan(fs, n, rw, done, n_done) ? 0 : CONC_ETIMEDOUT;
  }
  struct waiter *w = conc__malloc(sizeof *w);
  if (!w)
    return CONC_ENOMEM;
  atomic_init(&w->refs, 1);
  atomic_init(&w->events, 0);
  for (size_t i = 0; i < n; i++) {
    if (conc_future_done(fs[i]))
      continue;
    atomic_fetch_add_explicit(&w->refs, 1, memory_order_relaxed);
    if (conc_future_add_done_callback(fs[i], wait_cb, w) != 0) {
      atomic_fetch_sub_explicit(&w->refs, 1, memory_order_relaxed);
      waiter_unref(w);
      return CONC_ENOMEM;
    }
  }
  int rc = 0;
  for (;;) {
    uint32_t e = atomic_load_explicit(&w->events, memory_order_seq_cst);
    if (scan(fs, n, rw, done, n_done))
      break;
    if (conc__futex_wait(&w->events, e, deadline, false) == CONC_ETIMEDOUT) {
      rc = scan(fs, n, rw, done, n_done) ? 0 : CONC_ETIMEDOUT;
      break;
    }
  }
  waiter_unref(w);
  return rc;
}
