/* deque.h - Chase-Lev work-stealing deque of jobs (internal).
 *
 * One owner pushes and takes at the bottom; any thread steals from the top.
 * Lock-free, after Le, Pop, Cohen, Zappa Nardelli, "Correct and Efficient
 * Work-Stealing for Weak Memory Models" (PPoPP 2013), with the standalone
 * fences replaced by seq_cst accesses on top/bottom (same cost on x86, and
 * ThreadSanitizer understands them).
 *
 * The ring grows when full (owner only); retired rings are kept until
 * destroy, because a thief may still read from one.
 */
#ifndef CONC_DEQUE_H
#define CONC_DEQUE_H

#include "internal.h"
#include "conc/task.h"

/* A job: fn(arg), or (fn == NULL) the task record arg.  Two words, so a
 * fire-and-forget task travels without a record. */
typedef struct conc__job {
  conc_fn fn;
  void *arg;
} conc__job;

/* Both words are atomics of their own: a thief may read a slot that the
 * owner is rewriting (a torn pair); its CAS on top then fails, and the pair
 * is thrown away. */
typedef struct conc__slot {
  _Atomic(conc_fn) fn;
  _Atomic(void *) arg;
} conc__slot;

typedef struct conc__ring {
  int64_t mask;
  struct conc__ring *retired; /* older ring, freed at destroy */
  conc__slot slot[];
} conc__ring;

typedef struct conc__deque {
  CONC_ALIGNED_CL _Atomic int64_t top;
  CONC_ALIGNED_CL _Atomic int64_t bottom;
  _Atomic(conc__ring *) ring;
} conc__deque;

#define CONC__STEAL_EMPTY 0
#define CONC__STEAL_OK 1
#define CONC__STEAL_RETRY 2

/* log2cap: initial capacity 2^log2cap.  Returns 0 or CONC_ENOMEM. */
int conc__deque_init(conc__deque *d, int log2cap);
void conc__deque_destroy(conc__deque *d);
/* Owner only.  Returns 0 or CONC_ENOMEM (growing failed; x not pushed). */
int conc__deque_push(conc__deque *d, conc__job x);
/* Owner only.  False when empty. */
bool conc__deque_take(conc__deque *d, conc__job *out);
/* Any thread.  CONC__STEAL_OK (*out set), CONC__STEAL_EMPTY, or
 * CONC__STEAL_RETRY (lost a race; try again or elsewhere). */
int conc__deque_steal(conc__deque *d, conc__job *out);
/* Approximate size (any thread). */
static inline int64_t conc__deque_size(conc__deque *d) {
  int64_t b = atomic_load_explicit(&d->bottom, memory_order_seq_cst);
  int64_t t = atomic_load_explicit(&d->top, memory_order_seq_cst);
  return b > t ? b - t : 0;
}

#endif
