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
  for (int64_t i = 0; i < cap; i++)
    atomic_init(&r->slot[i], NULL);
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

int conc__deque_push(conc__deque *d, void *x) {
  int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed);
  /* acquire: pairs with thieves' CAS on top, so their slot reads are done */
  int64_t t = atomic_load_explicit(&d->top, memory_order_acquire);
  conc__ring *r = atomic_load_explicit(&d->ring, memory_order_relaxed);
  if (CONC_UNLIKELY(b - t > r->mask)) {
    conc__ring *n = ring_new((r->mask + 1) * 2);
    if (!n)
      return CONC_ENOMEM;
    for (int64_t i = t; i < b; i++)
      atomic_store_explicit(&n->slot[i & n->mask],
                            atomic_load_explicit(&r->slot[i & r->mask],
                                                 memory_order_relaxed),
                            memory_order_relaxed);
    n->retired = r;
    /* release: thieves that load the new ring see its slots */
    atomic_store_explicit(&d->ring, n, memory_order_release);
    r = n;
  }
  atomic_store_explicit(&r->slot[b & r->mask], x, memory_order_relaxed);
  /* seq_cst (includes release): publishes the slot to thieves */
  atomic_store_explicit(&d->bottom, b + 1, memory_order_seq_cst);
  return 0;
}

void *conc__deque_take(conc__deque *d) {
  int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed) - 1;
  conc__ring *r = atomic_load_explicit(&d->ring, memory_order_relaxed);
  atomic_store_explicit(&d->bottom, b, memory_order_seq_cst);
  int64_t t = atomic_load_explicit(&d->top, memory_order_seq_cst);
  if (t > b) { /* empty */
    atomic_store_explicit(&d->bottom, b + 1, memory_order_relaxed);
    return NULL;
  }
  void *x = atomic_load_explicit(&r->slot[b & r->mask], memory_order_relaxed);
  if (t == b) { /* last item: race the thieves for it */
    if (!atomic_compare_exchange_strong_explicit(
            &d->top, &t, t + 1, memory_order_seq_cst, memory_order_relaxed))
      x = NULL;
    atomic_store_explicit(&d->bottom, b + 1, memory_order_relaxed);
  }
  return x;
}

void *conc__deque_steal(conc__deque *d) {
  int64_t t = atomic_load_explicit(&d->top, memory_order_seq_cst);
  int64_t b = atomic_load_explicit(&d->bottom, memory_order_seq_cst);
  if (t >= b)
    return CONC__STEAL_EMPTY;
  /* acquire: pairs with the release store of a grown ring */
  conc__ring *r = atomic_load_explicit(&d->ring, memory_order_acquire);
  void *x = atomic_load_explicit(&r->slot[t & r->mask], memory_order_relaxed);
  if (!atomic_compare_exchange_strong_explicit(
          &d->top, &t, t + 1, memory_order_seq_cst, memory_order_relaxed))
    return CONC__STEAL_RETRY;
  return x;
}
