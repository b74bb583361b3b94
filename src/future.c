/* future.c - futures: states, waiting, callbacks, hand-made completion.
 *
 * DESIGN
 * A future's life is driven by CASes on its state word (see future-int.h).
 * Completion protocol, used by every path that ends a future (the task's
 * runner, cancel, set_result/set_error, executors failing a task):
 *   1. claim: CAS the state from a not-done, not-COMPLETING value to the same
 *      value | COMPLETING.  Exactly one thread wins; others see COMPLETING
 *      or a done state and back off.
 *   2. write outcome, detail and result/message (plain stores).
 *   3. exchange the state to FINISHED/CANCELLED (release): readers that
 *      acquire-load a done state see the fields.  If the old value had
 *      WAITERS, futex-wake everybody.
 *   4. take the callback list (exchange with CB_DONE, acq_rel) and run it
 *      in registration order.
 * A task's runner first moves PENDING -> RUNNING (a CAS that fails if a
 * cancel claimed it), so cancel and run never both happen; a RUNNING
 * task-bound future is then completed only by its runner, which skips
 * the claim.
 *
 * Callbacks: a lock-free stack of nodes; CB_DONE marks "taken": an add
 * that finds it, or finds the future done, runs the callback at once on
 * the caller's thread.  See publish() for the race with completion.
 *
 * Waiting: spin briefly, then set WAITERS by CAS and sleep on the state
 * word.  A pool worker (conc__set_helper) runs queued tasks of its pool
 * instead of sleeping, and sleeps in short slices, so a pool whose workers
 * all wait for futures of queued tasks still makes progress.
 *
 * Fork: task-bound futures record the fork generation.  A waiter in a child
 * whose future is not done returns CONC_EBROKEN instead of sleeping forever
 * (the threads that would complete it do not exist in the child).
 */
#include "executor-int.h"

#include <pthread.h>
#include <sched.h>

struct conc__cb_node {
  struct conc__cb_node *next;
  conc_future_cb cb;
  void *arg;
};
#define CB_DONE ((struct conc__cb_node *)(uintptr_t)1)

/* ---- fork generation ---- */

static _Atomic uint32_t fork_gen;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
static void on_fork_child(void) {
  atomic_fetch_add_explicit(&fork_gen, 1, memory_order_relaxed);
}
static void fork_init(void) { pthread_atfork(NULL, NULL, on_fork_child); }
static _Atomic bool fork_ready;
uint32_t conc__fork_gen(void) {
  /* acquire: pairs with the release below, after the handler is in place */
  if (CONC_UNLIKELY(!atomic_load_explicit(&fork_ready, memory_order_acquire))) {
    pthread_once(&fork_once, fork_init);
    atomic_store_explicit(&fork_ready, true, memory_order_release);
  }
  return atomic_load_explicit(&fork_gen, memory_order_relaxed);
}

/* ---- per-thread: task context and helper ---- */

static _Thread_local conc__task_ctx *tl_ctx;
static _Thread_local conc__help_fn tl_help;
static _Thread_local void *tl_help_worker;
/* Seconds a waiter outside the pools spins before sleeping (wait_until);
 * negative: not learnt yet. */
static _Thread_local double tl_spin_budget = -1;

/* Inside a loop executor's task the context lives with the task's
 * coroutine (tasks on one loop interleave at their waits), elsewhere with
 * the thread. */
conc__task_ctx *conc__task_ctx_get(void) {
  void **slot = conc__coro_task_slot();
  return slot ? *slot : tl_ctx;
}
conc__task_ctx *conc__task_ctx_swap(conc__task_ctx *ctx) {
  void **slot = conc__coro_task_slot();
  conc__task_ctx *old;
  if (slot) {
    old = *slot;
    *slot = ctx;
  } else {
    old = tl_ctx;
    tl_ctx = ctx;
  }
  return old;
}
void conc__set_helper(conc__help_fn fn, void *worker) {
  tl_help = fn;
  tl_help_worker = worker;
}

/* ---- creation and references ---- */

_Static_assert(sizeof(conc_future) <= 56 || sizeof(void *) != 8,
               "a future record must fit a 64-byte malloc chunk");

static inline uint32_t gen_bits(void) {
  return (conc__fork_gen() << FS_GEN_SHIFT) & FS_GEN_MASK;
}

static conc_future *future_alloc(uint32_t refs) {
  conc_future *f = conc__fcache_alloc(sizeof *f);
  if (!f)
    return NULL;
  atomic_init(&f->state, FS_PENDING | gen_bits());
  atomic_init(&f->refs, refs);
  f->fn = NULL;
  f->arg = NULL;
  f->u.result = NULL;
  f->outcome = 0;
  f->detail = 0;
  atomic_init(&f->cbs, NULL);
  atomic_init(&f->next, NULL);
  f->flags = 0;
  return f;
}

conc_future *conc__future_new_task(conc_fn fn, void *arg, uint32_t refs) {
  conc_future *f = future_alloc(refs);
  if (f) {
    f->fn = fn;
    f->arg = arg;
    f->flags = FF_TASK;
  }
  return f;
}

int conc_future_create(conc_future **out) {
  if (!out)
    return CONC_EINVAL;
  *out = future_alloc(1);
  return *out ? 0 : CONC_ENOMEM;
}

conc_future *conc_future_retain(conc_future *f) {
  if (f)
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
  return f;
}


void conc_future_release(conc_future *f) {
  if (!f)
    return;
  /* acq_rel: the last releaser must see every other owner's writes */
  uint32_t old = atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel);
  CONC_ASSERT(old > 0 && "conc_future_release: released too often");
  if (old != 1)
    return;
  uint32_t s = atomic_load_explicit(&f->state, memory_order_relaxed);
  if ((s & FS_MASK) >= FS_FINISHED && f->outcome != 0)
    conc__free(f->u.msg);
  struct conc__cb_node *n = atomic_load_explicit(&f->cbs, memory_order_relaxed);
  while (n && n != CB_DONE) { /* never completed: callbacks never run */
    struct conc__cb_node *next = n->next;
    conc__free(n);
    n = next;
  }
  if ((f->flags & FF_FREE_ARG) && f->arg) /* NULL: taken back by submit */
    conc__closure_free(f->arg);
  conc__fcache_free(f);
}

/* ---- state queries ---- */

static inline bool is_done(uint32_t s) {
  return (s & FS_MASK) >= FS_FINISHED;
}

conc_future_state conc_future_get_state(const conc_future *f) {
  if (!f)
    return CONC_FUTURE_PENDING;
  uint32_t s = atomic_load_explicit(&f->state, memory_order_acquire);
  return (conc_future_state)(s & FS_MASK);
}
bool conc_future_done(const conc_future *f) {
  return f && is_done(atomic_load_explicit(&f->state, memory_order_acquire));
}
bool conc_future_running(const conc_future *f) {
  return conc_future_get_state(f) == CONC_FUTURE_RUNNING;
}
bool conc_future_cancelled(const conc_future *f) {
  return conc_future_get_state(f) == CONC_FUTURE_CANCELLED;
}

/* ---- completion ---- */

/* Step 1: claim.  from_mask says which low states may be claimed. */
static bool claim(conc_future *f, unsigned from_mask) {
  uint32_t s = atomic_load_explicit(&f->state, memory_order_relaxed);
  for (;;) {
    if ((s & FS_COMPLETING) || !(from_mask & (1u << (s & FS_MASK))))
      return false;
    /* acquire: pairs with the release of the runner's PENDING->RUNNING */
    if (atomic_compare_exchange_weak_explicit(&f->state, &s, s | FS_COMPLETING,
                                              memory_order_acquire,
                                              memory_order_relaxed))
      return true;
  }
}

static int run_callback(conc_future *f, struct conc__cb_node *n) {
  int rc = n->cb(f, n->arg);
  if (rc != 0)
    conc_log(CONC_LOG_ERROR, "done callback %p failed: %d (%s)",
             (void *)(uintptr_t)n->cb, rc, conc_strerror(rc));
  return rc;
}

static void run_list(conc_future *f, struct conc__cb_node *n) {
  struct conc__cb_node *rev = NULL;
  while (n) { /* the stack is newest first: reverse it */
    struct conc__cb_node *next = n->next;
    n->next = rev;
    rev = n;
    n = next;
  }
  while (rev) {
    struct conc__cb_node *next = rev->next;
    run_callback(f, rev);
    conc__free(rev);
    rev = next;
  }
}

/* Take the callback list (exchange with CB_DONE) and run it, if any. */
static void take_callbacks(conc_future *f) {
  /* acq_rel: acquire the nodes pushed by adders */
  struct conc__cb_node *n =
      atomic_exchange_explicit(&f->cbs, CB_DONE, memory_order_acq_rel);
  if (n != CB_DONE)
    run_list(f, n);
}

/* Steps 3 and 4.  Callbacks: a Dekker pair with the adders (both sides
 * seq_cst): the completer stores the done state then loads the list; an
 * adder pushes its node then loads the state.  Either the completer sees
 * the node, or the adder sees the done state and takes the list itself;
 * the exchange with CB_DONE makes sure each node runs once.  A future
 * without callbacks thus costs no read-modify-write here. */
static void publish(conc_future *f, uint32_t final_state) {
  uint32_t old = atomic_load_explicit(&f->state, memory_order_relaxed);
  uint32_t want;
  do {
    want = final_state | (old & (FS_STOP | FS_GEN_MASK));
    /* seq_cst (includes release for waiters and queries) */
  } while (!atomic_compare_exchange_weak_explicit(
      &f->state, &old, want, memory_order_seq_cst, memory_order_relaxed));
  if (old & FS_WAITERS)
    conc__futex_wake(&f->state, INT_MAX, false);
  if (atomic_load_explicit(&f->cbs, memory_order_seq_cst))
    take_callbacks(f);
}

#define FROM_PENDING (1u << FS_PENDING)
#define FROM_RUNNING (1u << FS_RUNNING)

bool conc__future_fail(conc_future *f, int outcome, int detail, char *msg) {
  CONC_ASSERT(outcome != 0);
  if (!claim(f, FROM_PENDING | FROM_RUNNING)) {
    conc__free(msg);
    return false;
  }
  f->outcome = (int16_t)outcome;
  f->detail = detail;
  f->u.msg = msg;
  publish(f, FS_FINISHED);
  return true;
}

bool conc__future_cancel(conc_future *f) {
  if (!claim(f, FROM_PENDING))
    return false;
  f->outcome = CONC_ECANCELED;
  f->detail = 0;
  f->u.msg = NULL;
  publish(f, FS_CANCELLED);
  return true;
}

bool conc_future_cancel(conc_future *f) {
  if (!f)
    return false;
  if (conc__future_cancel(f))
    return true;
  for (;;) { /* lost to a concurrent completion: report its result */
    uint32_t s = atomic_load_explicit(&f->state, memory_order_acquire);
    if ((s & FS_MASK) == FS_CANCELLED)
      return true;
    if (!(s & FS_COMPLETING))
      return false;
    conc__pause();
  }
}

int conc_future_stop(conc_future *f) {
  if (!f)
    return CONC_EINVAL;
  uint32_t old = atomic_fetch_or_explicit(&f->state, FS_STOP,
                                          memory_order_acq_rel);
  if (is_done(old))
    return CONC_EINVAL;
  if (old & FS_WAITERS)
    conc__futex_wake(&f->state, INT_MAX, false);
  return 0;
}

/* ---- running a task ---- */

int conc__future_start(conc_future *f) {
  uint32_t s = atomic_load_explicit(&f->state, memory_order_acquire);
  for (;;) {
    if ((s & FS_MASK) != FS_PENDING || (s & FS_COMPLETING))
      return CONC__SKIPPED;
    if (atomic_compare_exchange_weak_explicit(
            &f->state, &s, (s & ~FS_MASK) | FS_RUNNING, memory_order_acq_rel,
            memory_order_acquire))
      break;
  }
  if ((f->flags & FF_DEADLINE) && conc_now() > f->u.deadline)
    return CONC_EDEADLINE;
  return 0;
}

void conc__helper_release(conc__helper *h) {
  if (atomic_fetch_sub_explicit(&h->refs, 1, memory_order_acq_rel) == 1)
    h->destroy(h);
}

bool conc__future_finish_prepared(conc_future *f) {
  if (!claim(f, FROM_RUNNING))
    return false;
  publish(f, FS_FINISHED);
  return true;
}

bool conc__future_succeed(conc_future *f, void *result) {
  if (!claim(f, FROM_RUNNING))
    return false;
  f->outcome = 0;
  f->u.result = result;
  publish(f, FS_FINISHED);
  return true;
}

int conc__future_run(conc_future *f, double *submitted) {
  /* acquire: a cancelled record's outcome was written by the canceller, and
   * whoever drops the last reference reads it */
  uint32_t s = atomic_load_explicit(&f->state, memory_order_acquire);
  for (;;) {
    if ((s & FS_MASK) != FS_PENDING || (s & FS_COMPLETING)) {
      return CONC__SKIPPED; /* cancelled before it started */
    }
    /* acq_rel: acquire the submitter's writes (also published by the queue),
     * release pairs with claim()'s acquire */
    if (atomic_compare_exchange_weak_explicit(
            &f->state, &s, (s & ~FS_MASK) | FS_RUNNING, memory_order_acq_rel,
            memory_order_acquire))
      break;
  }
  if ((f->flags & FF_TIMED) && submitted)
    *submitted = f->u.submitted; /* ours now: nobody else writes u */
  if ((f->flags & FF_DEADLINE) && conc_now() > f->u.deadline) {
    conc__future_fail(f, CONC_EDEADLINE, 0,
                      conc__strdup("deadline passed before the task started"));
    return CONC_EDEADLINE;
  }
  conc__task_ctx ctx = {.future = f};
  conc__task_ctx *prev = conc__task_ctx_swap(&ctx);
  void *r = f->fn(f->arg);
  conc__task_ctx_swap(prev);
  /* Only the runner completes a RUNNING task-bound future: no claim. */
  if (ctx.outcome == 0) {
    f->outcome = 0;
    f->u.result = r;
  } else {
    f->outcome = (int16_t)ctx.outcome;
    f->detail = ctx.code;
    f->u.msg = ctx.msg;
  }
  publish(f, FS_FINISHED);
  return ctx.outcome;
}

/* ---- waiting ---- */

#define SPIN_ROUNDS 256
#define WAIT_SPIN 30e-6  /* seconds a non-worker waiter spins, at most */
#define HELP_SPIN 100e-6 /* seconds a waiter collects remote results */

static int wait_until(conc_future *f, double deadline) {
  uint32_t s = atomic_load_explicit(&f->state, memory_order_acquire);
  if (is_done(s))
    return 0;
  /* A task in another process: collect results ourselves for a while
   * (no wake-up hop through the pool's collector), then sleep. */
  if (f->flags & FF_HELPED) {
    conc__helper *h = conc__closure_helper(f->arg);
    double until = conc_now() + HELP_SPIN;
    if (h && h->helping)
      h->helping(h, true);
    bool done = false;
    for (unsigned i = 0;; i++) {
      s = atomic_load_explicit(&f->state, memory_order_acquire);
      if (is_done(s)) {
        done = true;
        break;
      }
      if (h && h->help(h))
        continue;
      if ((i & 15) == 15 && conc_now() > fmin(until, deadline))
        break;
      if (i > 64)
        sched_yield();
      else
        conc__pause();
    }
    if (h && h->helping)
      h->helping(h, false);
    if (done)
      return 0;
    if (h && h->park)
      h->park(h); /* about to sleep: the executor's own thread takes over */
  }
  /* A pool worker helps at once (fork-join: the child is usually on its
   * own deque).  Another thread spins before it sleeps, for up to its spin
   * budget (at most WAIT_SPIN: longer than a parked worker takes to wake
   * up, futex ping-pong on the bench machine being ~8 us each way), so a
   * task handed to a parked worker costs one wake-up (the worker's), not
   * two.  The budget adapts per thread, like an adaptive mutex: a spin
   * that fails quarters it (a waiter whose tasks are long, or whose CPUs
   * are all busy, should not take CPU time from the workers), and a wait
   * that turns out shorter than WAIT_SPIN restores it. */
  double t_slow = 0;
  if (!tl_help) {
    for (int i = 0; i < SPIN_ROUNDS; i++) {
      conc__pause();
      s = atomic_load_explicit(&f->state, memory_order_acquire);
      if (is_done(s))
        return 0;
    }
    t_slow = conc_now();
    double budget = tl_spin_budget < 0 ? WAIT_SPIN : tl_spin_budget;
    if (budget >= 1e-6) {
      double until = fmin(t_slow + budget, deadline);
      for (unsigned i = 1;; i++) {
        /* yield now and then: the worker we woke is often placed on this
         * CPU (wake-affine), and pure spinning would keep it waiting */
        if ((i & 31) == 0)
          sched_yield();
        else
          conc__pause();
        s = atomic_load_explicit(&f->state, memory_order_acquire);
        if (is_done(s))
          return 0;
        if ((i & 63) == 0 && conc_now() >= until)
          break;
      }
      tl_spin_budget = budget / 4;
    }
  }
  double slice = 50e-6;
  for (;;) {
    s = atomic_load_explicit(&f->state, memory_order_acquire);
    if (is_done(s))
      return 0;
    if ((f->flags & FF_TASK) && (s & FS_GEN_MASK) != gen_bits())
      return CONC_EBROKEN;
    double dl = deadline;
    if (tl_help) {
      if (tl_help(tl_help_worker)) {
        slice = 50e-6;
        continue;
      }
      double now = conc_now();
      if (now >= deadline)
        return CONC_ETIMEDOUT;
      if (now + slice < dl)
        dl = now + slice;
      if (slice < 5e-3)
        slice *= 2;
    }
    if (!(s & FS_WAITERS) &&
        !atomic_compare_exchange_weak_explicit(&f->state, &s, s | FS_WAITERS,
                                               memory_order_relaxed,
                                               memory_order_relaxed))
      continue;
    int rc = conc__futex_wait(&f->state, s | FS_WAITERS, dl, false);
    if (rc == CONC_ETIMEDOUT && dl == deadline) {
      s = atomic_load_explicit(&f->state, memory_order_acquire);
      return is_done(s) ? 0 : CONC_ETIMEDOUT;
    }
    if (t_slow > 0 &&
        is_done(atomic_load_explicit(&f->state, memory_order_acquire))) {
      if (conc_now() - t_slow < WAIT_SPIN)
        tl_spin_budget = WAIT_SPIN; /* spinning would have caught it */
      return 0;
    }
  }
}

int conc_future_wait(conc_future *f, double timeout) {
  if (!f)
    return CONC_EINVAL;
  return wait_until(f, conc__deadline(timeout));
}

int conc_future_result_until(conc_future *f, double deadline, void **result) {
  if (result)
    *result = NULL;
  if (!f)
    return CONC_EINVAL;
  int rc = wait_until(f, isnan(deadline) ? INFINITY : deadline);
  if (rc)
    return rc;
  if (f->outcome == 0 && result)
    *result = f->u.result;
  return f->outcome;
}

int conc_future_result(conc_future *f, double timeout, void **result) {
  return conc_future_result_until(f, conc__deadline(timeout), result);
}

int conc_future_error(const conc_future *f, int *detail, const char **message) {
  if (detail)
    *detail = 0;
  if (message)
    *message = NULL;
  if (!f)
    return CONC_EINVAL;
  if (!is_done(atomic_load_explicit(&f->state, memory_order_acquire)))
    return CONC_EAGAIN;
  if (f->outcome != 0) {
    if (detail)
      *detail = f->detail;
    if (message)
      *message = f->u.msg ? f->u.msg : conc_strerror(f->outcome);
  }
  return f->outcome;
}

/* ---- callbacks ---- */

int conc_future_add_done_callback(conc_future *f, conc_future_cb cb,
                                  void *arg) {
  if (!f || !cb)
    return CONC_EINVAL;
  if (is_done(atomic_load_explicit(&f->state, memory_order_acquire))) {
    struct conc__cb_node n = {NULL, cb, arg};
    run_callback(f, &n);
    return 0;
  }
  struct conc__cb_node *node = conc__malloc(sizeof *node);
  if (!node)
    return CONC_ENOMEM;
  node->cb = cb;
  node->arg = arg;
  struct conc__cb_node *head =
      atomic_load_explicit(&f->cbs, memory_order_relaxed);
  for (;;) {
    if (head == CB_DONE) { /* the completer already took the list */
      conc__free(node);
      struct conc__cb_node n = {NULL, cb, arg};
      run_callback(f, &n);
      return 0;
    }
    node->next = head;
    /* seq_cst: the adder's half of publish()'s Dekker pair */
    if (atomic_compare_exchange_weak_explicit(&f->cbs, &head, node,
                                              memory_order_seq_cst,
                                              memory_order_relaxed))
      break;
  }
  if (is_done(atomic_load_explicit(&f->state, memory_order_seq_cst)))
    take_callbacks(f); /* the completer may have missed our node */
  return 0;
}

/* ---- hand-made futures ---- */

int conc_future_set_running(conc_future *f) {
  if (!f || (f->flags & FF_TASK))
    return CONC_EINVAL;
  uint32_t s = atomic_load_explicit(&f->state, memory_order_relaxed);
  for (;;) {
    if ((s & FS_MASK) == FS_CANCELLED)
      return CONC_ECANCELED;
    if ((s & FS_MASK) != FS_PENDING || (s & FS_COMPLETING)) {
      if ((s & FS_COMPLETING) && (s & FS_MASK) == FS_PENDING) {
        conc__pause(); /* a cancel is being published */
        s = atomic_load_explicit(&f->state, memory_order_relaxed);
        continue;
      }
      return CONC_EINVAL;
    }
    if (atomic_compare_exchange_weak_explicit(
            &f->state, &s, (s & ~FS_MASK) | FS_RUNNING, memory_order_acq_rel,
            memory_order_acquire))
      return 0;
  }
}

int conc_future_set_result(conc_future *f, void *result) {
  if (!f || (f->flags & FF_TASK) || !claim(f, FROM_PENDING | FROM_RUNNING))
    return CONC_EINVAL;
  f->outcome = 0;
  f->u.result = result;
  publish(f, FS_FINISHED);
  return 0;
}

int conc_future_set_error(conc_future *f, int code, const char *fmt, ...) {
  if (!f || (f->flags & FF_TASK))
    return CONC_EINVAL;
  char *msg = NULL;
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    msg = conc__vasprintf(fmt, ap);
    va_end(ap);
  }
  if (!claim(f, FROM_PENDING | FROM_RUNNING)) {
    conc__free(msg);
    return CONC_EINVAL;
  }
  f->outcome = CONC_ETASK;
  f->detail = code;
  f->u.msg = msg;
  publish(f, FS_FINISHED);
  return 0;
}
