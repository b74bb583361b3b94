/* thread_pool.c - the thread pool executor.
 *
 * DESIGN
 * Queues.  Each worker owns a Chase-Lev deque (deque.c): tasks submitted by
 * a task go to its worker's deque (pushed and taken at the bottom: LIFO,
 * good for fork-join); idle workers steal from the top.  Tasks submitted
 * from outside go to the injection queue, an intrusive multi-producer queue
 * (Vyukov's MPSC: a push is one atomic exchange, wait-free).  Its single
 * consumer is whichever worker holds `inj_lock` (a try-lock): it takes a
 * batch, runs the first task and pushes the rest onto its own deque, where
 * the other workers steal them.  Once a pool has seen a non-zero priority,
 * outside submissions go to a locked list ordered by priority with ageing
 * instead (see prio_insert); pools that never use priorities never touch
 * it.  Tasks submitted by tasks go to their worker's deque whatever their
 * priority.
 *
 * Jobs.  The ring and the deques carry two-word jobs: (fn, arg) for a
 * plain fire-and-forget task from outside the pool (out == NULL, no
 * deadline, priority, timing, bounded queue or closure), which therefore
 * costs no record, no allocation and no reference counting; or (NULL,
 * record) for everything else.  A plain task's outcome is only counted;
 * its stop request is the pool's stop word (shutdown with cancel_futures).
 * A submitter that loses a race with shutdown takes a plain job back by
 * marking its cell (RING_TOMB), a record by cancelling it.
 *
 * A worker looks for work in this order: own deque, injection queue,
 * priority list, other workers' deques.
 *
 * Parking (no lock, malloc or syscall per task while workers are busy).
 * Workers are running, searching (spinning for work) or parked, each on
 * its own futex word, on an idle stack (idle_mu).  A submitter wakes a
 * parked worker only when nobody is searching, and hands it a search
 * token (counts it as searching before it runs), so the submissions that
 * follow while it wakes up make no system call.  A searcher that finds
 * work and was the last searcher wakes or starts one more, so parallelism
 * ramps up without a thundering herd (the scheme of Go's scheduler).  At
 * most half the CPUs' worth of searchers spin; the others park at once.
 * See park() for the no-lost-wake-up argument.

 * Workers start lazily: a submission that finds nobody searching or asleep
 * starts one, up to max_workers.  If no worker exists and none can be
 * started, submit fails (the task is not queued) rather than strand it.
 *
 * Shutdown.  `state` goes OPEN -> SHUTDOWN (or BROKEN).  A submitter
 * queues its task, then reads the state again (seq_cst, against the
 * shutdown's store): still OPEN means the workers, which read the state
 * before their last look for work, will find the task; otherwise it takes
 * the task back by cancelling it and fails with CONC_ESHUTDOWN (the
 * cancelled record stays queued until a worker or destroy drops it).
 * Workers exit once the state is not OPEN and no queue holds work;
 * shutdown(wait) joins them.  cancel_futures cancels every queued
 * task and sets the stop flag of running ones; a worker's `current` is read
 * under `scanning` (worker stores current then loads scanning; the scanner
 * stores scanning then loads current), so a future is never touched after
 * its runner dropped its reference.
 *
 * Broken.  An initializer failure sets BROKEN: queued tasks fail with
 * CONC_EBROKEN, later submissions too.
 *
 * Locks: inj_lock (try-lock, never waited on), prio_mu, idle_mu and
 * start_mu are leaves: no other lock is taken while holding one.  admin_mu serialises
 * stop scans and joins; no user code runs under it.
 */
#include "executor-int.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>

#include "conc/thread_pool.h"
#include "deque.h"

enum { ST_OPEN = 0, ST_SHUTDOWN = 1, ST_BROKEN = 2 };

#define SPIN_LIMIT 2048 /* pause rounds a searcher spins before parking */
#define BATCH 32        /* tasks taken from the injection queue at once */
#define HIST_BUCKETS 40 /* log2 nanoseconds: up to ~550 s */
#define STRIPES 8       /* external submission counters */

typedef struct worker {
  conc__deque dq;
  struct pool *pool;
  pthread_t th;
  unsigned idx;
  bool started;
  uint32_t rng;
  bool in_idle;              /* on the idle stack (idle_mu) */
  struct worker *idle_next;  /* idle stack link (idle_mu) */
  CONC_ALIGNED_CL _Atomic(conc_future *) current;
  _Atomic uint32_t wake_word; /* futex: 1 when handed a search token */
  /* Statistics: written by this worker only (relaxed load + store), read by
   * conc_executor_get_stats. */
  CONC_ALIGNED_CL _Atomic uint64_t n_submitted; /* by tasks on this worker */
  _Atomic uint64_t n_popped;    /* records taken off a queue */
  _Atomic uint64_t n_finished;  /* ran to an outcome (or deadline) */
  _Atomic uint64_t n_completed, n_failed, n_cancelled, n_deadline;
  _Atomic uint32_t hist_wait[HIST_BUCKETS]; /* log2 ns, with TIMING */
  _Atomic uint32_t hist_run[HIST_BUCKETS];
} worker;

typedef struct pool {
  conc_executor base;
  char prefix[32];
  int (*initializer)(void *);
  void *initarg;
  worker *workers;
  int broken_code;
  int spin_max;
  bool joined;

  /* injection ring (bounded MPMC, Vyukov), the list below when full */
  struct ring_cell *ring;
  size_t ring_mask;
  CONC_ALIGNED_CL _Atomic size_t enq; /* producers */
  CONC_ALIGNED_CL _Atomic size_t deq; /* consumers */

  CONC_ALIGNED_CL _Atomic(conc_future *) inj_head; /* producers */
  CONC_ALIGNED_CL _Atomic(conc_future *) inj_tail; /* consumer */
  _Atomic int inj_lock;
  conc_future inj_stub;

  CONC_ALIGNED_CL _Atomic int searching;
  _Atomic int sleepers;
  pthread_mutex_t idle_mu;
  worker *idle; /* parked workers (idle_mu) */
  _Atomic unsigned nworkers;
  _Atomic int state;
  _Atomic int scanning;
  /* 1 once shutdown(cancel_futures) asked running tasks to stop: plain
   * tasks (no future) see it as their stop request; stop_seq is the futex
   * bumped with it (conc_task_wait_stop) */
  _Atomic uint64_t stop_all;
  _Atomic uint32_t stop_seq;

  pthread_mutex_t prio_mu;
  conc_future *prio_head, *prio_tail;
  uint32_t prio_seq;     /* arrival numbers (prio_mu) */
  _Atomic bool prio_mode; /* a non-zero priority was seen */
  _Atomic size_t prio_len;

  /* statistics of external submissions and of drained records */
  struct {
    CONC_ALIGNED_CL _Atomic uint64_t n;
  } ext_submitted[STRIPES];
  CONC_ALIGNED_CL _Atomic uint64_t drained_cancelled, drained_failed;

  /* backpressure (max_queued > 0) */
  size_t max_queued;
  CONC_ALIGNED_CL _Atomic long room;
  _Atomic uint32_t room_seq; /* futex: bumped when room appears */
  _Atomic int room_waiters;
  bool timing;

  pthread_mutex_t start_mu; /* spawn only */
  pthread_mutex_t admin_mu; /* cancel scans and joins; never in workers */
} pool;

static _Thread_local worker *tl_worker;

/* Tests only: when non-zero, starting a worker fails with this errno. */
_Atomic int conc__test_spawn_error;

#define RING_SIZE 4096

/* A cell holds a job: fn(arg) for a plain fire-and-forget task (no record
 * at all), or fn == NULL and the task record in arg.  32 bytes: two cells
 * per cache line. */
typedef struct ring_cell {
  _Atomic size_t seq;
  _Atomic(conc_fn) fn;
  _Atomic(void *) arg;
  size_t pad;
} ring_cell;

/* Set in a full cell's seq by a submitter that takes its plain task back
 * (it lost a race with shutdown): the consumer drops the job. */
#define RING_TOMB ((size_t)1 << (sizeof(size_t) * 8 - 1))

/* ---- injection ring (Vyukov's bounded MPMC queue, batch dequeue) ----
 * Cell i is free for the producer of position pos when seq == pos, and
 * holds the task of position pos when seq == pos + 1.  A consumer claims a
 * run of ready cells with one CAS on deq, so a batch costs one contended
 * operation, and it reads the tasks' addresses from the ring (eight per
 * cache line) and prefetches the records all at once, instead of chasing a
 * linked list one cache miss at a time. */

static bool ring_push(pool *p, conc__job j, size_t *at) {
  size_t pos = atomic_load_explicit(&p->enq, memory_order_relaxed);
  for (;;) {
    ring_cell *c = &p->ring[pos & p->ring_mask];
    /* acquire: pairs with the consumer's release of the cell */
    size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
    intptr_t dif = (intptr_t)seq - (intptr_t)pos;
    if (dif == 0) {
      /* seq_cst: also the submitter's half of the parking Dekker pair */
      if (atomic_compare_exchange_weak_explicit(&p->enq, &pos, pos + 1,
                                                memory_order_seq_cst,
                                                memory_order_relaxed)) {
        atomic_store_explicit(&c->fn, j.fn, memory_order_relaxed);
        atomic_store_explicit(&c->arg, j.arg, memory_order_relaxed);
        /* release: publishes the task (and the record) to the consumer */
        atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
        *at = pos;
        return true;
      }
    } else if (dif < 0) {
      return false; /* full */
    } else {
      pos = atomic_load_explicit(&p->enq, memory_order_relaxed);
    }
  }
}

/* A submitter takes back the job it put at pos, unless a consumer has
 * already claimed it.  Positions only grow, so the CAS cannot mistake a
 * later lap's job for ours. */
static bool ring_retract(pool *p, size_t pos) {
  ring_cell *c = &p->ring[pos & p->ring_mask];
  size_t full = pos + 1;
  return atomic_compare_exchange_strong_explicit(
      &c->seq, &full, full | RING_TOMB, memory_order_acq_rel,
      memory_order_relaxed);
}

/* Take up to max jobs into out[]; returns how many (jobs taken back by
 * their submitters are dropped on the way). */
static size_t ring_take(pool *p, conc__job *out, size_t max) {
  size_t pos = atomic_load_explicit(&p->deq, memory_order_relaxed);
  for (;;) {
    size_t k = 0;
    while (k < max) {
      ring_cell *c = &p->ring[(pos + k) & p->ring_mask];
      /* acquire: pairs with the producer's release of the cell */
      if ((atomic_load_explicit(&c->seq, memory_order_acquire) & ~RING_TOMB) !=
          pos + k + 1)
        break;
      k++;
    }
    if (k == 0) {
      size_t now = atomic_load_explicit(&p->deq, memory_order_relaxed);
      if (now == pos)
        return 0; /* empty, or the next cell is being written */
      pos = now;
      continue;
    }
    if (atomic_compare_exchange_weak_explicit(&p->deq, &pos, pos + k,
                                              memory_order_seq_cst,
                                              memory_order_relaxed)) {
      size_t n = 0;
      for (size_t i = 0; i < k; i++) {
        ring_cell *c = &p->ring[(pos + i) & p->ring_mask];
        conc__job j = {atomic_load_explicit(&c->fn, memory_order_relaxed),
                       atomic_load_explicit(&c->arg, memory_order_relaxed)};
        size_t full = pos + i + 1, next = pos + i + p->ring_mask + 1;
        /* release: the cell is free for the producer a lap later.  A plain
         * job is claimed by this CAS against its submitter's retract; a
         * record's submitter takes it back by cancelling the record
         * instead, so a store is enough. */
        if (j.fn && !atomic_compare_exchange_strong_explicit(
                        &c->seq, &full, next, memory_order_acq_rel,
                        memory_order_acquire)) {
          atomic_store_explicit(&c->seq, next, memory_order_release);
          continue; /* taken back */
        }
        if (!j.fn) {
          __builtin_prefetch(j.arg, 1);
          atomic_store_explicit(&c->seq, next, memory_order_release);
        }
        out[n++] = j;
      }
      if (n)
        return n;
      pos = atomic_load_explicit(&p->deq, memory_order_relaxed);
      continue; /* all taken back: look again */
    }
  }
}

/* A hint for spinning workers: the next cell holds a job.  It reads only
 * consumer-side lines (deq and the cell), so spinning does not pull the
 * producers' index away from them; parking decisions use ring_nonempty,
 * whose seq_cst read of enq pairs with the producers' seq_cst CAS. */
static inline bool ring_peek(pool *p) {
  size_t d = atomic_load_explicit(&p->deq, memory_order_relaxed);
  return (atomic_load_explicit(&p->ring[d & p->ring_mask].seq,
                               memory_order_relaxed) &
          ~RING_TOMB) == d + 1;
}

static inline bool ring_nonempty(pool *p) {
  return atomic_load_explicit(&p->enq, memory_order_seq_cst) !=
         atomic_load_explicit(&p->deq, memory_order_seq_cst);
}

/* ---- injection queue (Vyukov intrusive MPSC) ---- */

static inline void inj_push(pool *p, conc_future *f) {
  atomic_store_explicit(&f->next, NULL, memory_order_relaxed);
  /* seq_cst: also the submitter's half of the parking Dekker pair */
  conc_future *prev =
      atomic_exchange_explicit(&p->inj_head, f, memory_order_seq_cst);
  /* release: pairs with the consumer's acquire load of next */
  atomic_store_explicit(&prev->next, f, memory_order_release);
}

/* Not empty: a producer's exchange moved head off the stub, or the
 * consumer's cursor is on a real node.  head == stub alone is not enough:
 * when the consumer re-inserts the stub while producers push, the stub can
 * end up last (head) behind real nodes the cursor has not reached. */
static inline bool list_nonempty(pool *p) {
  return atomic_load_explicit(&p->inj_head, memory_order_seq_cst) !=
             &p->inj_stub ||
         atomic_load_explicit(&p->inj_tail, memory_order_seq_cst) !=
             &p->inj_stub;
}

static inline bool inj_nonempty(pool *p) {
  return ring_nonempty(p) || list_nonempty(p);
}

/* Consumer only (inj_lock held).  NULL if empty or a push is half done. */
static conc_future *inj_pop(pool *p) {
  conc_future *tail = atomic_load_explicit(&p->inj_tail, memory_order_relaxed);
  conc_future *next = atomic_load_explicit(&tail->next, memory_order_acquire);
  if (tail == &p->inj_stub) {
    if (!next)
      return NULL;
    atomic_store_explicit(&p->inj_tail, next, memory_order_relaxed);
    tail = next;
    next = atomic_load_explicit(&tail->next, memory_order_acquire);
  }
  if (next) {
    atomic_store_explicit(&p->inj_tail, next, memory_order_relaxed);
    return tail;
  }
  if (tail != atomic_load_explicit(&p->inj_head, memory_order_seq_cst))
    return NULL; /* a producer is between its exchange and its link */
  inj_push(p, &p->inj_stub);
  next = atomic_load_explicit(&tail->next, memory_order_acquire);
  if (next) {
    atomic_store_explicit(&p->inj_tail, next, memory_order_relaxed);
    return tail;
  }
  return NULL;
}

static void run_job(worker *w, conc__job j);

static inline conc__job rec_job(conc_future *f) {
  conc__job j = {NULL, f};
  return j;
}

/* Take a batch: the first job in *out, the rest onto w's deque (w == NULL:
 * one job only).  False if nothing was found. */
static bool inj_take(pool *p, worker *w, conc__job *out) {
  if (ring_peek(p) || (!w && ring_nonempty(p))) {
    conc__job batch[BATCH];
    size_t k = ring_take(p, batch, w ? BATCH : 1);
    if (k) {
      /* run the first; the rest go to our deque, LIFO: push them newest
       * first so that we take them back oldest first */
      for (size_t i = k; i-- > 1;) {
        if (CONC_LIKELY(conc__deque_push(&w->dq, batch[i]) == 0))
          continue;
        if (!batch[i].fn)
          inj_push(p, batch[i].arg); /* no memory to grow: the list */
        else
          run_job(w, batch[i]); /* nowhere to put it: run it now */
      }
      *out = batch[0];
      return true;
    }
  }
  if (!list_nonempty(p))
    return false;
  int expected = 0;
  if (!atomic_compare_exchange_strong_explicit(&p->inj_lock, &expected, 1,
                                               memory_order_acquire,
                                               memory_order_relaxed))
    return false;
  conc_future *first = inj_pop(p);
  if (first && w) {
    for (int i = 1; i < BATCH; i++) {
      conc_future *f = inj_pop(p);
      if (!f)
        break;
      if (conc__deque_push(&w->dq, rec_job(f)) != 0) {
        /* out of memory growing the deque: put it back at the end of the
         * queue (order among external tasks is not guaranteed anyway) */
        inj_push(p, f);
        break;
      }
    }
  }
  /* release: pairs with the acquire CAS of the next consumer */
  atomic_store_explicit(&p->inj_lock, 0, memory_order_release);
  if (!first)
    return false;
  *out = rec_job(first);
  return true;
}

/* ---- priority list ----
 * Used once a pool has seen a non-zero priority (prio_mode, sticky): from
 * then on every outside submission goes here, ordered by the key
 *   key = arrival number - priority x AGE
 * (kept in `detail` while queued), FIFO for equal keys.  So a task of
 * priority p goes ahead of lower-priority tasks that arrived up to (p - q)
 * x AGE submissions before it, and no further: a low priority waits a
 * bounded number of submissions, it is never starved.  Keys wrap; they are
 * compared by signed difference.  Pools that never use priorities never
 * touch this list or its lock. */

#define AGE 64

static void prio_insert(pool *p, conc_future *f, int prio) {
  pthread_mutex_lock(&p->prio_mu);
  int32_t key = (int32_t)(p->prio_seq++ - (uint32_t)(prio * AGE));
  f->detail = key;
  conc_future **pp = &p->prio_head;
  /* the common case, keys arriving in order: append at the tail */
  if (p->prio_tail &&
      (int32_t)((uint32_t)p->prio_tail->detail - (uint32_t)key) <= 0)
    pp = (conc_future **)&p->prio_tail->next;
  while (*pp && (int32_t)((uint32_t)(*pp)->detail - (uint32_t)key) <= 0)
    pp = (conc_future **)&(*pp)->next;
  atomic_store_explicit(&f->next, *pp, memory_order_relaxed);
  *pp = f;
  if (!atomic_load_explicit(&f->next, memory_order_relaxed))
    p->prio_tail = f;
  atomic_fetch_add_explicit(&p->prio_len, 1, memory_order_seq_cst);
  pthread_mutex_unlock(&p->prio_mu);
}

static conc_future *prio_pop(pool *p) {
  if (atomic_load_explicit(&p->prio_len, memory_order_relaxed) == 0)
    return NULL;
  pthread_mutex_lock(&p->prio_mu);
  conc_future *f = p->prio_head;
  if (f) {
    p->prio_head = atomic_load_explicit(&f->next, memory_order_relaxed);
    if (!p->prio_head)
      p->prio_tail = NULL;
    atomic_fetch_sub_explicit(&p->prio_len, 1, memory_order_relaxed);
    f->detail = 0;
  }
  pthread_mutex_unlock(&p->prio_mu);
  return f;
}

/* ---- finding work ---- */

/* Spinning: cheap look at every queue (hints, no producer line). */
static bool has_work_hint(pool *p) {
  if (ring_peek(p) || list_nonempty(p) ||
      atomic_load_explicit(&p->prio_len, memory_order_relaxed))
    return true;
  unsigned n = atomic_load_explicit(&p->nworkers, memory_order_acquire);
  for (unsigned i = 0; i < n; i++)
    if (conc__deque_size(&p->workers[i].dq))
      return true;
  return false;
}

static bool has_work(pool *p) {
  if (inj_nonempty(p) ||
      atomic_load_explicit(&p->prio_len, memory_order_seq_cst))
    return true;
  unsigned n = atomic_load_explicit(&p->nworkers, memory_order_acquire);
  for (unsigned i = 0; i < n; i++)
    if (conc__deque_size(&p->workers[i].dq))
      return true;
  return false;
}

static bool steal_any(pool *p, worker *w, conc__job *out) {
  unsigned n = atomic_load_explicit(&p->nworkers, memory_order_acquire);
  if (n == 0)
    return false;
  unsigned start = w ? (w->rng = w->rng * 1103515245u + 12345u) % n : 0;
  for (int tries = 0; tries < 2; tries++) {
    bool retry = false;
    for (unsigned k = 0; k < n; k++) {
      worker *v = &p->workers[(start + k) % n];
      if (v == w)
        continue;
      int rc = conc__deque_steal(&v->dq, out);
      if (rc == CONC__STEAL_RETRY)
        retry = true;
      else if (rc == CONC__STEAL_OK)
        return true;
    }
    if (!retry)
      break;
  }
  return false;
}

static bool find_task(worker *w, conc__job *out) {
  pool *p = w->pool;
  if (conc__deque_take(&w->dq, out))
    return true;
  /* the ring and list hold only tasks older than any in the priority list
   * (they take outside submissions until the first priority is seen) */
  if (inj_take(p, w, out))
    return true;
  conc_future *f = prio_pop(p);
  if (f) {
    *out = rec_job(f);
    return true;
  }
  return steal_any(p, w, out);
}

/* ---- statistics and backpressure ---- */

static inline void bump(_Atomic uint64_t *c) { /* owner-only counter */
  atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                        memory_order_relaxed);
}

static inline void hist_add(_Atomic uint32_t *h, double seconds) {
  double ns = seconds * 1e9;
  int b = 0;
  while (b < HIST_BUCKETS - 1 && ns >= 2.0) {
    ns /= 2;
    b++;
  }
  atomic_store_explicit(&h[b], atomic_load_explicit(&h[b],
                                                    memory_order_relaxed) +
                                   1,
                        memory_order_relaxed);
}

static void give_room(pool *p) {
  atomic_fetch_add_explicit(&p->room, 1, memory_order_seq_cst);
  if (atomic_load_explicit(&p->room_waiters, memory_order_seq_cst)) {
    atomic_fetch_add_explicit(&p->room_seq, 1, memory_order_seq_cst);
    conc__futex_wake(&p->room_seq, 1, false);
  }
}

static int state_error(int st);

/* Take a unit of the bounded queue.  Returns 0, CONC_EAGAIN (timeout 0),
 * CONC_ETIMEDOUT, or the state's error if the pool closes meanwhile. */
static int take_room(pool *p, double timeout) {
  double deadline = INFINITY;
  bool counted = false;
  int rc = 0;
  for (;;) {
    long r = atomic_load_explicit(&p->room, memory_order_relaxed);
    while (r > 0) {
      if (atomic_compare_exchange_weak_explicit(&p->room, &r, r - 1,
                                                memory_order_acquire,
                                                memory_order_relaxed))
        goto out;
    }
    int st = atomic_load_explicit(&p->state, memory_order_seq_cst);
    if (st != ST_OPEN) {
      rc = state_error(st);
      goto out;
    }
    if (timeout == 0) {
      rc = CONC_EAGAIN;
      goto out;
    }
    if (!counted) {
      deadline = conc__deadline(timeout);
      atomic_fetch_add_explicit(&p->room_waiters, 1, memory_order_seq_cst);
      counted = true;
      continue; /* re-check after announcing ourselves (Dekker) */
    }
    uint32_t seq = atomic_load_explicit(&p->room_seq, memory_order_seq_cst);
    if (atomic_load_explicit(&p->room, memory_order_seq_cst) > 0)
      continue;
    if (conc__futex_wait(&p->room_seq, seq, deadline, false) ==
            CONC_ETIMEDOUT &&
        atomic_load_explicit(&p->room, memory_order_seq_cst) <= 0) {
      rc = CONC_ETIMEDOUT;
      goto out;
    }
  }
out:
  if (counted)
    atomic_fetch_sub_explicit(&p->room_waiters, 1, memory_order_seq_cst);
  return rc;
}

static void wake_room_waiters(pool *p) {
  atomic_fetch_add_explicit(&p->room_seq, 1, memory_order_seq_cst);
  conc__futex_wake(&p->room_seq, INT_MAX, false);
}

/* ---- running ---- */

static void run(worker *w, conc_future *f) {
  pool *p = w->pool;
  bump(&w->n_popped);
  if (f->flags & FF_ROOM)
    give_room(p);
  if (CONC_UNLIKELY(atomic_load_explicit(&p->state, memory_order_relaxed) ==
                    ST_BROKEN)) {
    if (conc__future_fail(f, CONC_EBROKEN, p->broken_code,
                          conc__strdup("thread pool is broken: an "
                                       "initializer failed")))
      bump(&w->n_failed);
    else
      bump(&w->n_cancelled);
    bump(&w->n_finished);
    conc_future_release(f);
    return;
  }
  double t0 = 0, submitted = NAN;
  if (f->flags & FF_TIMED)
    t0 = conc_now();
  conc_future *prev = atomic_load_explicit(&w->current, memory_order_relaxed);
  atomic_store_explicit(&w->current, f, memory_order_relaxed);
  int outcome = conc__future_run(f, &submitted);
  if (!isnan(submitted))
    hist_add(w->hist_wait, t0 - submitted);
  /* seq_cst: the worker's half of the scan Dekker pair */
  atomic_store_explicit(&w->current, prev, memory_order_seq_cst);
  while (CONC_UNLIKELY(atomic_load_explicit(&p->scanning, memory_order_seq_cst)))
    conc__pause();
  if (f->flags & FF_TIMED && outcome != CONC__SKIPPED)
    hist_add(w->hist_run, conc_now() - t0);
  switch (outcome) {
  case 0:
    bump(&w->n_completed);
    break;
  case CONC__SKIPPED:
  case CONC_ECANCELED:
    bump(&w->n_cancelled);
    break;
  case CONC_EDEADLINE:
    bump(&w->n_deadline);
    break;
  default:
    bump(&w->n_failed);
  }
  bump(&w->n_finished);
  conc_future_release(f);
}

/* A plain fire-and-forget task: no record, no future.  Its outcome is
 * only counted; a stop request reaches it through the pool's stop word
 * (set by shutdown with cancel_futures), and once that is set, plain tasks
 * not yet started are dropped (counted as cancelled), as queued records
 * are cancelled. */
static void run_inline(worker *w, conc__job j) {
  pool *p = w->pool;
  bump(&w->n_popped);
  if (CONC_UNLIKELY(atomic_load_explicit(&p->stop_all, memory_order_relaxed) |
                    (atomic_load_explicit(&p->state, memory_order_relaxed) ==
                     ST_BROKEN))) {
    bump(atomic_load_explicit(&p->state, memory_order_relaxed) == ST_BROKEN
             ? &w->n_failed
             : &w->n_cancelled);
    bump(&w->n_finished);
    return;
  }
  conc__task_ctx ctx = {.stop_id = &p->stop_all,
                        .stop_match = 1,
                        .stop_seq = &p->stop_seq};
  conc__task_ctx *prev = conc__task_ctx_swap(&ctx);
  j.fn(j.arg);
  conc__task_ctx_swap(prev);
  if (CONC_LIKELY(ctx.outcome == 0)) {
    bump(&w->n_completed);
  } else {
    bump(ctx.outcome == CONC_ECANCELED ? &w->n_cancelled : &w->n_failed);
    conc__free(ctx.msg);
  }
  bump(&w->n_finished);
}

static void run_job(worker *w, conc__job j) {
  if (j.fn)
    run_inline(w, j);
  else
    run(w, j.arg);
}

static bool help(void *arg) {
  worker *w = arg;
  conc__job j;
  if (!find_task(w, &j))
    return false;
  run_job(w, j);
  return true;
}

/* idle_mu held.  Hand v a search token and mark it to wake. */
static void hand_token(pool *p, worker *v) {
  v->in_idle = false;
  atomic_fetch_add_explicit(&p->searching, 1, memory_order_seq_cst);
  /* release: pairs with the acquire load in park() */
  atomic_store_explicit(&v->wake_word, 1, memory_order_release);
}

/* Wake every parked worker (shutdown, broken). */
static void wake_all(pool *p) {
  pthread_mutex_lock(&p->idle_mu);
  worker *list = p->idle;
  p->idle = NULL;
  for (worker *v = list; v; v = v->idle_next)
    hand_token(p, v);
  pthread_mutex_unlock(&p->idle_mu);
  /* Wake them all.  A woken worker may re-park and reuse idle_next, so
   * wake by index rather than by walking the list. */
  (void)list;
  unsigned n = atomic_load_explicit(&p->nworkers, memory_order_acquire);
  for (unsigned i = 0; i < n; i++)
    conc__futex_wake(&p->workers[i].wake_word, 1, false);
}

static int spawn(pool *p);

/* Get one more worker looking for work: wake a parked one (handing it a
 * search token, so later submissions see a searcher and make no system
 * call while it wakes up) or start one. */
static void add_searcher(pool *p) {
  if (atomic_load_explicit(&p->sleepers, memory_order_seq_cst) > 0) {
    pthread_mutex_lock(&p->idle_mu);
    worker *v = p->idle;
    if (v) {
      p->idle = v->idle_next;
      hand_token(p, v);
    }
    pthread_mutex_unlock(&p->idle_mu);
    if (v) {
      conc__futex_wake(&v->wake_word, 1, false);
      return;
    }
  }
  if (atomic_load_explicit(&p->nworkers, memory_order_relaxed) <
      p->base.max_workers) {
    int rc = spawn(p);
    if (rc)
      conc_log(CONC_LOG_WARN, "thread pool: cannot start a worker: %s",
               conc_strerror(rc));
  }
}

/* Park w, a searcher with nothing found.  Returns false when the pool is
 * closing and no work is left (the worker exits), true to search again.
 *
 *   worker: push self on idle stack; sleepers++; searching--;
 *           read state; look for work; sleep until handed a token
 *   waker:  (after publishing work) if !searching: pop a worker from the
 *           idle stack, searching++ for it, wake it
 * All seq_cst: a waker that read searching == 0 finds this worker on the
 * stack; a waker that read searching > 0 relies on that searcher, which
 * looks for work again after its own decrement. */
static bool park(worker *w) {
  pool *p = w->pool;
  pthread_mutex_lock(&p->idle_mu);
  atomic_store_explicit(&w->wake_word, 0, memory_order_relaxed);
  w->in_idle = true;
  w->idle_next = p->idle;
  p->idle = w;
  pthread_mutex_unlock(&p->idle_mu);
  atomic_fetch_add_explicit(&p->sleepers, 1, memory_order_seq_cst);
  atomic_fetch_sub_explicit(&p->searching, 1, memory_order_seq_cst);
  /* the state first: see the comment at the end of tp_submit */
  int st = atomic_load_explicit(&p->state, memory_order_seq_cst);
  bool work = has_work(p);
  if (work || st != ST_OPEN) {
    pthread_mutex_lock(&p->idle_mu);
    bool token = !w->in_idle; /* a waker popped us already */
    if (w->in_idle) {
      worker **pp = &p->idle;
      while (*pp != w)
        pp = &(*pp)->idle_next;
      *pp = w->idle_next;
      w->in_idle = false;
    }
    pthread_mutex_unlock(&p->idle_mu);
    atomic_fetch_sub_explicit(&p->sleepers, 1, memory_order_seq_cst);
    if (!token)
      atomic_fetch_add_explicit(&p->searching, 1, memory_order_seq_cst);
    return work;
  }
  /* acquire: pairs with hand_token's release */
  while (atomic_load_explicit(&w->wake_word, memory_order_acquire) == 0)
    conc__futex_wait(&w->wake_word, 0, INFINITY, false);
  atomic_fetch_sub_explicit(&p->sleepers, 1, memory_order_seq_cst);
  return true;
}

/* After publishing work: make sure somebody will look for it. */
static void notify(pool *p) {
  if (atomic_load_explicit(&p->searching, memory_order_seq_cst) > 0)
    return;
  add_searcher(p);
}

static void fail_queued(pool *p, int outcome, int detail, const char *msg);

static void worker_init(worker *w) {
  pool *p = w->pool;
  char name[16];
  snprintf(name, sizeof name, "%.10s-%u", p->prefix, w->idx);
  pthread_setname_np(pthread_self(), name);
  if (!p->initializer)
    return;
  int rc = p->initializer(p->initarg);
  if (rc == 0)
    return;
  conc_log(CONC_LOG_ERROR, "thread pool initializer failed: %d", rc);
  int open = ST_OPEN;
  p->broken_code = rc; /* read by run() after it sees ST_BROKEN */
  if (atomic_compare_exchange_strong_explicit(&p->state, &open, ST_BROKEN,
                                              memory_order_seq_cst,
                                              memory_order_seq_cst)) {
    fail_queued(p, CONC_EBROKEN, rc,
                "thread pool is broken: an initializer failed");
  }
  wake_all(p);
}

static void *worker_main(void *arg) {
  worker *w = arg;
  pool *p = w->pool;
  tl_worker = w;
  conc__set_helper(help, w);
  worker_init(w);
  /* A new worker starts as a searcher (spawn counted it). */
  for (;;) {
    conc__job j;
    if (find_task(w, &j)) {
      /* leaving the searching state: if we were the last searcher, get
       * another one going, so queued work keeps being picked up */
      if (atomic_fetch_sub_explicit(&p->searching, 1, memory_order_seq_cst) ==
              1 &&
          has_work(p))
        add_searcher(p);
      run_job(w, j);
      while (find_task(w, &j))
        run_job(w, j);
      atomic_fetch_add_explicit(&p->searching, 1, memory_order_seq_cst);
      continue;
    }
    /* At most spin_max searchers spin (half the CPUs, at least one): on a
     * small machine more would take the CPU from the threads that submit. */
    bool found = false;
    int spin = atomic_load_explicit(&p->searching, memory_order_relaxed) <=
                       p->spin_max
                   ? SPIN_LIMIT
                   : 0;
    for (int i = 0; i < spin; i++) {
      conc__pause();
      if ((i & 3) == 3 && has_work_hint(p)) {
        found = true;
        break;
      }
      if ((i & 31) == 31) {
        /* Past the first few checks, let a thread that was just woken on
         * this CPU run (the scheduler often places the waker's wakee here,
         * e.g. the submitter waiting for the task we just finished). */
        if (i >= 256)
          sched_yield();
      }
    }
    if (found)
      continue;
    if (!park(w))
      break;
  }
  conc__set_helper(NULL, NULL);
  tl_worker = NULL;
  return NULL;
}

/* Start one more worker if below max.  Returns 0, or the error if none
 * could be started. */
static int spawn(pool *p) {
  pthread_mutex_lock(&p->start_mu);
  unsigned n = atomic_load_explicit(&p->nworkers, memory_order_relaxed);
  int rc = 0;
  if (n < p->base.max_workers &&
      atomic_load_explicit(&p->state, memory_order_relaxed) == ST_OPEN) {
    worker *w = &p->workers[n];
    if (!atomic_load_explicit(&w->dq.ring, memory_order_relaxed) &&
        conc__deque_init(&w->dq, 8) != 0) {
      pthread_mutex_unlock(&p->start_mu);
      return CONC_ENOMEM;
    }
    atomic_fetch_add_explicit(&p->searching, 1, memory_order_seq_cst);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* the worker inherits it */
    int e = atomic_load_explicit(&conc__test_spawn_error,
                                 memory_order_relaxed);
    if (CONC_LIKELY(e == 0))
      e = pthread_create(&w->th, NULL, worker_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e == 0) {
      w->started = true;
      /* release: the new worker's deque is visible to stealers */
      atomic_store_explicit(&p->nworkers, n + 1, memory_order_release);
    } else {
      atomic_fetch_sub_explicit(&p->searching, 1, memory_order_seq_cst);
      rc = e == ENOMEM ? CONC_ENOMEM : CONC_EAGAIN;
    }
  }
  pthread_mutex_unlock(&p->start_mu);
  return rc;
}

static int state_error(int st) {
  return st == ST_BROKEN ? CONC_EBROKEN : CONC_ESHUTDOWN;
}

static void free_unqueued(conc_future *f) {
  f->flags &= (uint16_t)~FF_FREE_ARG; /* the caller frees arg */
  atomic_store_explicit(&f->refs, 1, memory_order_relaxed); /* unshared */
  conc_future_release(f);
}

static int tp_submit(conc_executor *ex, conc_fn fn, void *arg,
                     const conc_submit_options *o, unsigned flags,
                     conc_future **out) {
  pool *p = (pool *)ex;
  if (CONC_UNLIKELY(!conc__executor_local(ex)))
    return CONC_EBROKEN;
  int prio = 0;
  if (o) {
    if (o->priority > INT16_MAX || o->priority < INT16_MIN)
      return CONC_EINVAL;
    prio = o->priority;
  }
  /* No worker yet: start one first, so a task is never queued with nobody
   * to run it. */
  if (CONC_UNLIKELY(atomic_load_explicit(&p->nworkers,
                                         memory_order_acquire) == 0)) {
    int st = atomic_load_explicit(&p->state, memory_order_acquire);
    if (st != ST_OPEN)
      return state_error(st);
    int rc = spawn(p);
    if (rc)
      return rc;
  }
  worker *w = tl_worker;
  bool own = w && w->pool == p;
  /* A plain fire-and-forget task from outside travels as (fn, arg) in the
   * ring: no record, no allocation.  Anything that needs a record (a
   * future, a deadline, a priority, timing, a bounded queue, a closure to
   * free) takes the path below, and so does this one if the ring is full. */
  if (!out && !own && !flags && !p->max_queued && !p->timing &&
      (!o || (o->deadline < 0 && prio == 0)) &&
      !atomic_load_explicit(&p->prio_mode, memory_order_relaxed)) {
    int st = atomic_load_explicit(&p->state, memory_order_relaxed);
    if (CONC_UNLIKELY(st != ST_OPEN))
      return state_error(st);
    conc__job j = {fn, arg};
    size_t pos;
    if (CONC_LIKELY(ring_push(p, j, &pos))) {
      /* seq_cst: as at the end of the record path below; a job taken back
       * never runs, one already claimed by a worker runs and counts as
       * submitted */
      st = atomic_load_explicit(&p->state, memory_order_seq_cst);
      if (CONC_UNLIKELY(st != ST_OPEN) && ring_retract(p, pos))
        return state_error(st);
      atomic_fetch_add_explicit(
          &p->ext_submitted[(unsigned)conc__gettid() % STRIPES].n, 1,
          memory_order_relaxed);
      notify(p);
      return 0;
    }
  }
  /* Backpressure: outside submissions take a unit of the bounded queue
   * (the pool's own tasks never wait, so they cannot deadlock it). */
  bool room = p->max_queued && !own;
  if (room) {
    int rc = take_room(p, o ? o->timeout : -1);
    if (rc)
      return rc;
  }
  /* The record carries a reference for this call (the caller's, or one
   * dropped at the end): once queued, a worker may run and release it at
   * any time, and taking it back below touches it. */
  conc_future *f = conc__future_new_task(fn, arg, 2);
  if (CONC_UNLIKELY(!f)) {
    if (room)
      give_room(p);
    return CONC_ENOMEM;
  }
  f->flags |= (uint16_t)flags;
  if (room)
    f->flags |= FF_ROOM;
  if (o && o->deadline >= 0) {
    f->flags |= FF_DEADLINE;
    f->u.deadline = o->deadline;
  } else if (p->timing) {
    f->flags |= FF_TIMED;
    f->u.submitted = conc_now();
  }
  int st = atomic_load_explicit(&p->state, memory_order_relaxed);
  if (CONC_UNLIKELY(st != ST_OPEN)) {
    if (room)
      give_room(p);
    free_unqueued(f);
    return state_error(st);
  }
  if (CONC_UNLIKELY(prio != 0) &&
      !atomic_load_explicit(&p->prio_mode, memory_order_relaxed))
    atomic_store_explicit(&p->prio_mode, true, memory_order_relaxed);
  if (!own && atomic_load_explicit(&p->prio_mode, memory_order_relaxed)) {
    prio_insert(p, f, prio);
  } else if (own) {
    if (CONC_UNLIKELY(conc__deque_push(&w->dq, rec_job(f)) != 0))
      inj_push(p, f); /* could not grow the deque: the shared queue */
  } else {
    size_t pos;
    if (!ring_push(p, rec_job(f), &pos))
      inj_push(p, f); /* the ring is full */
  }
  /* seq_cst: pairs with shutdown's store of the state.  If it still reads
   * OPEN, the push came first, and the workers (which read the state before
   * looking for work one last time) will find the task.  Otherwise they may
   * be gone: take the task back by cancelling it; it never runs, and submit
   * fails as if it came after the shutdown.  If the cancel loses, a worker
   * has already started it.  (A record taken back stays queued until a
   * worker or destroy drops it, which also returns its queue unit.) */
  st = atomic_load_explicit(&p->state, memory_order_seq_cst);
  if (CONC_UNLIKELY(st != ST_OPEN) && conc__future_cancel(f)) {
    /* the caller frees arg on error: the record must not (a cancelled
     * record's arg is read by nobody but its final release, which our
     * release below orders after this store; flags stay untouched, as a
     * worker may be reading them) */
    if (flags & FF_FREE_ARG)
      f->arg = NULL;
    conc_future_release(f); /* ours; the queue keeps its own */
    wake_all(p);
    return state_error(st);
  }
  if (own)
    bump(&w->n_submitted);
  else
    atomic_fetch_add_explicit(
        &p->ext_submitted[(unsigned)conc__gettid() % STRIPES].n, 1,
        memory_order_relaxed);
  notify(p);
  if (out)
    *out = f;
  else
    conc_future_release(f);
  return 0;
}

/* Fail (or cancel, for CONC_ECANCELED) everything queued.  Called after
 * the state left OPEN; several threads may run it
 * at once (each task is taken by exactly one). */
static void fail_queued(pool *p, int outcome, int detail, const char *msg) {
  conc_future *list = NULL, *f;
  while ((f = prio_pop(p))) {
    atomic_store_explicit(&f->next, list, memory_order_relaxed);
    list = f;
  }
  uint64_t plain = 0; /* plain jobs dropped: no future to tell */
  conc__job j;
  for (;;) {
    if (inj_take(p, NULL, &j)) {
      if (j.fn) {
        plain++;
        continue;
      }
      f = j.arg;
      atomic_store_explicit(&f->next, list, memory_order_relaxed);
      list = f;
      continue;
    }
    if (!inj_nonempty(p))
      break;
    conc__pause(); /* the consumer lock is held, or a push is half done */
  }
  unsigned n = atomic_load_explicit(&p->nworkers, memory_order_acquire);
  for (unsigned i = 0; i < n; i++) {
    int rc;
    while ((rc = conc__deque_steal(&p->workers[i].dq, &j)) !=
           CONC__STEAL_EMPTY) {
      if (rc == CONC__STEAL_RETRY)
        continue;
      if (j.fn) {
        plain++;
        continue;
      }
      f = j.arg;
      atomic_store_explicit(&f->next, list, memory_order_relaxed);
      list = f;
    }
  }
  if (plain)
    atomic_fetch_add_explicit(outcome == CONC_ECANCELED ? &p->drained_cancelled
                                                        : &p->drained_failed,
                              plain, memory_order_relaxed);
  while (list) {
    f = list;
    list = atomic_load_explicit(&f->next, memory_order_relaxed);
    if (f->flags & FF_ROOM)
      give_room(p);
    bool failed = outcome != CONC_ECANCELED &&
                  conc__future_fail(f, outcome, detail, conc__strdup(msg));
    if (!failed)
      conc__future_cancel(f); /* no-op if it was cancelled already */
    atomic_fetch_add_explicit(failed ? &p->drained_failed
                                     : &p->drained_cancelled,
                              1, memory_order_relaxed);
    conc_future_release(f);
  }
}

static bool tp_is_own_thread(const conc_executor *ex) {
  return tl_worker && tl_worker->pool == (const pool *)ex;
}

static int tp_shutdown(conc_executor *ex, bool wait, bool cancel_futures) {
  pool *p = (pool *)ex;
  if (!conc__executor_local(ex)) {
    atomic_store_explicit(&p->state, ST_SHUTDOWN, memory_order_relaxed);
    return 0;
  }
  int open = ST_OPEN;
  atomic_compare_exchange_strong_explicit(&p->state, &open, ST_SHUTDOWN,
                                          memory_order_seq_cst,
                                          memory_order_seq_cst);
  wake_room_waiters(p); /* submitters waiting for room fail now */
  if (cancel_futures) {
    /* plain tasks: their stop request, and no more of them start */
    atomic_store_explicit(&p->stop_all, 1, memory_order_seq_cst);
    atomic_fetch_add_explicit(&p->stop_seq, 1, memory_order_seq_cst);
    conc__futex_wake(&p->stop_seq, INT_MAX, true); /* waited on as shared */
    /* runs callbacks: no lock held (safe to run concurrently) */
    fail_queued(p, CONC_ECANCELED, 0, NULL);
    pthread_mutex_lock(&p->admin_mu); /* one scanner at a time */
    atomic_store_explicit(&p->scanning, 1, memory_order_seq_cst);
    unsigned n = atomic_load_explicit(&p->nworkers, memory_order_acquire);
    for (unsigned i = 0; i < n; i++) {
      conc_future *f =
          atomic_load_explicit(&p->workers[i].current, memory_order_seq_cst);
      if (f)
        conc_future_stop(f);
    }
    atomic_store_explicit(&p->scanning, 0, memory_order_seq_cst);
    pthread_mutex_unlock(&p->admin_mu);
  }
  wake_all(p);
  if (!wait)
    return 0;
  if (tp_is_own_thread(ex))
    return CONC_EDEADLK;
  /* No worker starts once the state left OPEN (spawn checks it under
   * start_mu), so nworkers read under start_mu is final. */
  pthread_mutex_lock(&p->start_mu);
  unsigned n = atomic_load_explicit(&p->nworkers, memory_order_acquire);
  pthread_mutex_unlock(&p->start_mu);
  pthread_mutex_lock(&p->admin_mu);
  if (!p->joined) {
    for (unsigned i = 0; i < n; i++)
      if (p->workers[i].started)
        pthread_join(p->workers[i].th, NULL);
    p->joined = true;
  }
  pthread_mutex_unlock(&p->admin_mu);
  return 0;
}

static void tp_free(conc_executor *ex) {
  pool *p = (pool *)ex;
  bool local = conc__executor_local(ex);
  /* Records of submissions that lost a race with shutdown (cancelled,
   * still queued).  Not in a forked child: its queue locks may be held by
   * threads that do not exist there; the copy leaks instead. */
  if (local)
    fail_queued(p, CONC_ECANCELED, 0, NULL);
  for (unsigned i = 0; i < p->base.max_workers; i++)
    conc__deque_destroy(&p->workers[i].dq);
  if (local) {
    pthread_mutex_destroy(&p->prio_mu);
    pthread_mutex_destroy(&p->idle_mu);
    pthread_mutex_destroy(&p->start_mu);
    pthread_mutex_destroy(&p->admin_mu);
  }
  conc__aligned_free(p->ring);
  conc__aligned_free(p->workers);
  conc__aligned_free(p);
}

static double hist_quantile(const uint64_t *h, uint64_t total, double q) {
  if (total == 0)
    return NAN;
  uint64_t want = (uint64_t)(q * (double)(total - 1)) + 1, acc = 0;
  for (int b = 0; b < HIST_BUCKETS; b++) {
    acc += h[b];
    if (acc >= want)
      return ldexp(1.0, b + 1) * 1e-9; /* the bucket's upper bound */
  }
  return ldexp(1.0, HIST_BUCKETS) * 1e-9;
}

static void tp_stats(conc_executor *ex, conc_executor_stats *s) {
  pool *p = (pool *)ex;
  unsigned n = atomic_load_explicit(&p->nworkers, memory_order_acquire);
  uint64_t submitted = 0, popped = 0, finished = 0;
  uint64_t hw[HIST_BUCKETS] = {0}, hr[HIST_BUCKETS] = {0};
  for (int i = 0; i < STRIPES; i++)
    submitted += atomic_load_explicit(&p->ext_submitted[i].n,
                                      memory_order_relaxed);
  for (unsigned i = 0; i < n; i++) {
    worker *w = &p->workers[i];
    submitted += atomic_load_explicit(&w->n_submitted, memory_order_relaxed);
    popped += atomic_load_explicit(&w->n_popped, memory_order_relaxed);
    finished += atomic_load_explicit(&w->n_finished, memory_order_relaxed);
    s->completed += atomic_load_explicit(&w->n_completed, memory_order_relaxed);
    s->failed += atomic_load_explicit(&w->n_failed, memory_order_relaxed);
    s->cancelled += atomic_load_explicit(&w->n_cancelled, memory_order_relaxed);
    s->deadline_missed +=
        atomic_load_explicit(&w->n_deadline, memory_order_relaxed);
    for (int b = 0; b < HIST_BUCKETS; b++) {
      hw[b] += atomic_load_explicit(&w->hist_wait[b], memory_order_relaxed);
      hr[b] += atomic_load_explicit(&w->hist_run[b], memory_order_relaxed);
    }
  }
  uint64_t dc = atomic_load_explicit(&p->drained_cancelled,
                                     memory_order_relaxed);
  uint64_t df = atomic_load_explicit(&p->drained_failed, memory_order_relaxed);
  s->cancelled += dc;
  s->failed += df;
  s->submitted = submitted;
  uint64_t gone = popped + dc + df;
  s->queued = submitted > gone ? submitted - gone : 0;
  s->running = popped > finished ? popped - finished : 0;
  s->workers = n;
  uint64_t tw = 0, tr = 0;
  for (int b = 0; b < HIST_BUCKETS; b++) {
    tw += hw[b];
    tr += hr[b];
  }
  s->timed = tr;
  s->queue_wait_p50 = hist_quantile(hw, tw, 0.50);
  s->queue_wait_p99 = hist_quantile(hw, tw, 0.99);
  s->run_time_p50 = hist_quantile(hr, tr, 0.50);
  s->run_time_p99 = hist_quantile(hr, tr, 0.99);
}

static const conc__executor_vt tp_vt = {
    "thread pool", tp_submit, tp_shutdown, tp_free, tp_is_own_thread,
    tp_stats,      NULL,
};

void conc_thread_pool_options_init(conc_thread_pool_options *o) {
  if (!o)
    return;
  memset(o, 0, sizeof *o);
  o->size = sizeof *o;
}

int conc_thread_pool_create(const conc_thread_pool_options *o,
                            conc_executor **out) {
  if (!out)
    return CONC_EINVAL;
  *out = NULL;
  conc_thread_pool_options def;
  if (!o) {
    conc_thread_pool_options_init(&def);
    o = &def;
  }
  if (o->size < offsetof(conc_thread_pool_options, flags) + sizeof(o->flags) ||
      o->max_workers > 4096 ||
      (o->flags & ~(CONC_EXECUTOR_NO_EXIT_HOOK | CONC_EXECUTOR_TIMING)))
    return CONC_EINVAL;
  size_t max_queued =
      o->size >= offsetof(conc_thread_pool_options, max_queued) +
                     sizeof(o->max_queued)
          ? o->max_queued
          : 0;
  if (max_queued > LONG_MAX)
    return CONC_EINVAL;
  unsigned max = o->max_workers;
  if (max == 0) {
    int c = conc_cpu_count() + 4;
    max = c < 32 ? (unsigned)c : 32;
  }
  pool *p = conc__aligned_alloc(sizeof *p, CONC_CACHELINE);
  if (!p)
    return CONC_ENOMEM;
  memset(p, 0, sizeof *p);
  p->workers = conc__aligned_alloc(max * sizeof *p->workers, CONC_CACHELINE);
  if (!p->workers) {
    conc__aligned_free(p);
    return CONC_ENOMEM;
  }
  memset(p->workers, 0, max * sizeof *p->workers);
  snprintf(p->prefix, sizeof p->prefix, "%s",
           o->thread_name_prefix ? o->thread_name_prefix : "conc-pool");
  p->initializer = o->initializer;
  p->initarg = o->initarg;
  p->max_queued = max_queued;
  atomic_init(&p->room, (long)max_queued);
  p->timing = o->flags & CONC_EXECUTOR_TIMING;
  p->spin_max = conc_cpu_count() / 2;
  if (p->spin_max < 1)
    p->spin_max = 1;
  for (unsigned i = 0; i < max; i++) {
    p->workers[i].pool = p;
    p->workers[i].idx = i;
    p->workers[i].rng = i * 2654435761u + 1;
    atomic_init(&p->workers[i].current, NULL);
    atomic_init(&p->workers[i].wake_word, 0);
    atomic_init(&p->workers[i].dq.ring, NULL);
  }
  p->ring = conc__aligned_alloc(RING_SIZE * sizeof *p->ring, CONC_CACHELINE);
  if (!p->ring) {
    conc__aligned_free(p->workers);
    conc__aligned_free(p);
    return CONC_ENOMEM;
  }
  p->ring_mask = RING_SIZE - 1;
  for (size_t i = 0; i < RING_SIZE; i++) {
    atomic_init(&p->ring[i].seq, i);
    atomic_init(&p->ring[i].fn, NULL);
    atomic_init(&p->ring[i].arg, NULL);
    p->ring[i].pad = 0;
  }
  atomic_init(&p->enq, 0);
  atomic_init(&p->deq, 0);
  atomic_init(&p->inj_stub.next, NULL);
  atomic_init(&p->inj_head, &p->inj_stub);
  atomic_init(&p->inj_tail, &p->inj_stub);
  pthread_mutex_init(&p->prio_mu, NULL);
  pthread_mutex_init(&p->idle_mu, NULL);
  pthread_mutex_init(&p->start_mu, NULL);
  pthread_mutex_init(&p->admin_mu, NULL);
  conc__executor_init(&p->base, &tp_vt, max,
                      o->flags & CONC_EXECUTOR_NO_EXIT_HOOK);
  *out = &p->base;
  return 0;
}
