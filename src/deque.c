/* deque.c - Chase-Lev work-stealing deque.  See deque.h.
 *
 * DESIGN
 * Indexes only grow.  Items live in [top, bottom).  The owner's take
 * decrements bottom first and then reads top (a seq_cst store then a
 * seq_cst load: the StoreLoad order the algorithm needs); a thief reads
 * top then bottom (seq_cst) and claims index top with a CAS.  When one item
 * is left, owner and thieves race on that same CAS, so it goes to exactly
 * one of them.  Item slots are relaxed atomics published by the release
 * (seq_cst) store of bottom in push and read after the acquiring load of
 * bottom in steal.
 */
#include "deque.h"

static conc__ring *ring_new(int64_t cap) {
  conc__ring *r = conc__malloc(sizeof *r + (size_t)cap * sizeof(r->slot[0]));
  if (!r)
    return NULL;
  r->mask = cap - 1;
  r->retired = NULL;
  for (int64_t i = 0; i < cap; i++) {
    atomic_init(&r->slot[i].fn, NULL);
    atomic_init(&r->slot[i].arg, NULL);
  }
  return r;
}

int conc__deque_init(conc__deque *d, int log2cap) {
  atomic_init(&d->top, 0);
  atomic_init(&d->bottom, 0);
  conc__ring *r = ring_new((int64_t)1 << log2cap);
  atomic_init(&d->ring, r);
  return r ? 0 : CONC_ENOMEM;
}

void conc__deque_destroy(conc__deque *d) {
  conc__ring *r = atomic_load_explicit(&d->ring, memory_order_relaxed);
  while (r) {
    conc__ring *next = r->retired;
    conc__free(r);
    r = next;
  }
  atomic_store_explicit(&d->ring, NULL, memory_order_relaxed);
}

static inline void slot_put(conc__slot *s, conc__job x) {
  atomic_store_explicit(&s->fn, x.fn, memory_order_relaxed);
  atomic_store_explicit(&s->arg, x.arg, memory_order_relaxed);
}

static inline conc__job slot_get(conc__slot *s) {
  conc__job x = {atomic_load_explicit(&s->fn, memory_order_relaxed),
                 atomic_load_explicit(&s->arg, memory_order_relaxed)};
  return x;
}

int conc__deque_push(conc__deque *d, conc__job x) {
  int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed);
  /* acquire: pairs with thieves' CAS on top, so their slot reads are done */
  int64_t t = atomic_load_explicit(&d->top, memory_order_acquire);
  conc__ring *r = atomic_load_explicit(&d->ring, memory_order_relaxed);
  if (CONC_UNLIKELY(b - t > r->mask)) {
    conc__ring *n = ring_new((r->mask + 1) * 2);
    if (!n)
      return CONC_ENOMEM;
    for (int64_t i = t; i < b; i++)
      slot_put(&n->slot[i & n->mask], slot_get(&r->slot[i & r->mask]));
    n->retired = r;
    /* release: thieves that load the new ring see its slots */
    atomic_store_explicit(&d->ring, n, memory_order_release);
    r = n;
  }
  slot_put(&r->slot[b & r->mask], x);
  /* seq_cst (includes release): publishes the slot to thieves */
  atomic_store_explicit(&d->bottom, b + 1, memory_order_seq_cst);
  return 0;
}

bool conc__deque_take(conc__deque *d, conc__job *out) {
  int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed) - 1;
  conc__ring *r = atomic_load_explicit(&d->ring, memory_order_relaxed);
  atomic_store_explicit(&d->bottom, b, memory_order_seq_cst);
  int64_t t = atomic_load_explicit(&d->top, memory_order_seq_cst);
  if (t > b) { /* empty */
    atomic_store_explicit(&d->bottom, b + 1, memory_order_relaxed);
    return false;
  }
  *out = slot_get(&r->slot[b & r->mask]);
  bool got = true;
  if (t == b) { /* last item: race the thieves for it */
    got = atomic_compare_exchange_strong_explicit(
        &d->top, &t, t + 1, memory_order_seq_cst, memory_order_relaxed);
    atomic_store_explicit(&d->bottom, b + 1, memory_order_relaxed);
  }
  return got;
}

int conc__deque_steal(conc__deque *d, conc__job *out) {
  int64_t t = atomic_load_explicit(&d->top, memory_order_seq_cst);
  int64_t b = atomic_load_explicit(&d->bottom, memory_order_seq_cst);
  if (t >= b)
    return CONC__STEAL_EMPTY;
  /* acquire: pairs with the release store of a grown ring */
  conc__ring *r = atomic_load_explicit(&d->ring, memory_order_acquire);
  conc__job x = slot_get(&r->slot[t & r->mask]);
  if (!atomic_compare_exchange_strong_explicit(
          &d->top, &t, t + 1, memory_order_seq_cst, memory_order_relaxed))
    return CONC__STEAL_RETRY;
  *out = x;
  return CONC__STEAL_OK;
}
