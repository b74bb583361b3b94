/* for.c - conc_executor_for: a parallel loop over a range, on any executor.
 *
 * DESIGN
 * The loop's state lives on the caller's stack: the next unclaimed index
 * (claimed `grain` at a time with fetch_add), a stop flag and the first
 * error.  The caller submits up to max_workers - 1 helper tasks (so that
 * as many threads work as the executor has workers), each of which
 * claims chunks until none is left, and claims chunks itself meanwhile.
 * When the range is exhausted the caller cancels the helpers that never
 * started (they never touch the state) and waits for the others, so the
 * stack frame outlives every reference to it.  Correctness never depends on
 * a helper running: with no helper at all the caller runs every chunk.
 */
#include "executor-int.h"

typedef struct loop {
  _Atomic size_t next;
  _Atomic int stop; /* first error, or 0 */
  size_t n, grain;
  conc_for_fn body;
  void *ctx;
} loop;

static void run_chunks(loop *l) {
  for (;;) {
    if (atomic_load_explicit(&l->stop, memory_order_relaxed))
      return;
    size_t b = atomic_fetch_add_explicit(&l->next, l->grain,
                                         memory_order_relaxed);
    if (b >= l->n)
      return;
    size_t e = l->n - b < l->grain ? l->n : b + l->grain;
    int rc = l->body(b, e, l->ctx);
    if (rc) {
      int zero = 0;
      atomic_compare_exchange_strong_explicit(&l->stop, &zero, rc,
                                              memory_order_relaxed,
                                              memory_order_relaxed);
      return;
    }
  }
}

static void *helper(void *arg) {
  run_chunks(arg);
  return NULL;
}

#define MAX_HELPERS 64

int conc_executor_for(conc_executor *ex, size_t n, size_t grain,
                      conc_for_fn body, void *ctx) {
  if (!ex || !body)
    return CONC_EINVAL;
  if (n == 0)
    return 0;
  unsigned w = ex->max_workers ? ex->max_workers : 1;
  if (grain == 0) {
    grain = n / (8 * ((size_t)w + 1));
    if (grain == 0)
      grain = 1;
  }
  loop l;
  atomic_init(&l.next, 0);
  atomic_init(&l.stop, 0);
  l.n = n;
  l.grain = grain;
  l.body = body;
  l.ctx = ctx;
  size_t chunks = (n - 1) / grain + 1;
  /* The caller works too: with max_workers - 1 helpers, as many threads
   * work as the executor has workers (at least one helper). */
  size_t want = chunks - 1;
  size_t cap = w > 1 ? w - 1 : 1;
  if (want > cap)
    want = cap;
  if (want > MAX_HELPERS)
    want = MAX_HELPERS;
  conc_future *fs[MAX_HELPERS];
  size_t nf = 0;
  for (size_t i = 0; i < want; i++) {
    int rc = conc_executor_submit(ex, helper, &l, &fs[nf]);
    if (rc == 0) {
      nf++;
      continue;
    }
    if (rc == CONC_ENOMEM || rc == CONC_EAGAIN)
      break; /* fewer helpers: the caller does more */
    if (nf == 0)
      return rc; /* shut down or broken: nothing ran */
    break;
  }
  run_chunks(&l);
  for (size_t i = 0; i < nf; i++)
    conc_future_cancel(fs[i]); /* not started: never will */
  for (size_t i = 0; i < nf; i++) {
    conc_future_wait(fs[i], -1);
    conc_future_release(fs[i]);
  }
  return atomic_load_explicit(&l.stop, memory_order_relaxed);
}
