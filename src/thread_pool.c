/* thread_pool.c - the thread pool executor.
 *
 * DESIGN
 * Queues.  Tasks submitted from outside the pool go to one global FIFO
 * (q_mu), ordered by priority (FIFO within a priority).  Tasks submitted by
 * a task go to the submitting worker's own deque: the owner pushes and pops
 * at the bottom (LIFO, good for fork-join), idle workers steal from the top.
 * A worker looks for work in this order: own deque, global queue, other
 * workers' deques.
 *
 * Parking.  A worker with nothing to do spins briefly, then sleeps on the
 * pool's `epoch` futex word.  No lost wake-ups (a Dekker pair, both sides
 * seq_cst):
 *   worker:    sleepers++; e = epoch; if (work visible) {sleepers--; retry}
 *              futex_wait(epoch, e)
 *   submitter: publish task; if (sleepers > 0) {epoch++; futex_wake(1)}
 * Either the worker sees the task, or the submitter sees the sleeper and
 * changes epoch so the futex_wait returns at once.
 *
 * Workers start lazily: a submission that finds no idle worker starts one,
 * up to max_workers.  If no worker exists and none can be started, submit
 * fails (the task is not queued) rather than strand the task.
 *
 * Shutdown.  state goes OPEN -> SHUTDOWN (or BROKEN) under q_mu, so a
 * submission either is queued before it or fails.  Workers exit once the
 * state is not OPEN and no queue holds work; shutdown(wait) joins them.
 * cancel_futures cancels every queued task and sets the stop flag of the
 * running ones; `current` is read under a scan flag (Dekker again: worker
 * stores current then loads scanning; the scanner stores scanning then
 * loads current), so a future is never touched after its runner dropped
 * its reference.
 *
 * Broken.  An initializer failure sets BROKEN: queued tasks fail with
 * CONC_EBROKEN, later submissions too.
 *
 * Lock order: q_mu before a deque's mu; start_mu alone.
 */
#include "executor-int.h"

#include <pthread.h>
#include <signal.h>

#include "conc/thread_pool.h"

enum { ST_OPEN = 0, ST_SHUTDOWN = 1, ST_BROKEN = 2 };

typedef struct deque {
  pthread_mutex_t mu;
  conc_future **buf;
  size_t cap, top, bottom; /* items in [top, bottom), indexes mod cap */
  _Atomic size_t size;
} deque;

typedef struct worker {
  struct pool *pool;
  pthread_t th;
  unsigned idx;
  bool started;
  _Atomic(conc_future *) current;
  deque dq;
} worker;

typedef struct pool {
  conc_executor base;
  char prefix[32];
  int (*initializer)(void *);
  void *initarg;
  worker *workers;

  pthread_mutex_t start_mu;
  _Atomic unsigned nworkers; /* started */
  _Atomic int idle;          /* started workers looking for work */
  _Atomic int sleepers;      /* ... of which parked */
  _Atomic uint32_t epoch;

  pthread_mutex_t q_mu;
  conc_future *q_head, *q_tail;
  _Atomic size_t q_len;
  _Atomic int state;
  int broken_code;

  _Atomic int scanning;
  bool joined;
} pool;

static _Thread_local worker *tl_worker;

/* ---- deque (mutex-protected ring; the lock-free version is issue 4) ---- */

static int dq_push(deque *d, conc_future *f) {
  pthread_mutex_lock(&d->mu);
  size_t n = d->bottom - d->top;
  if (n == d->cap) {
    size_t cap = d->cap ? d->cap * 2 : 256;
    conc_future **b = conc__malloc(cap * sizeof *b);
    if (!b) {
      pthread_mutex_unlock(&d->mu);
      return CONC_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
      b[i] = d->buf[(d->top + i) % d->cap];
    conc__free(d->buf);
    d->buf = b;
    d->cap = cap;
    d->top = 0;
    d->bottom = n;
  }
  d->buf[d->bottom++ % d->cap] = f;
  atomic_store_explicit(&d->size, n + 1, memory_order_seq_cst);
  pthread_mutex_unlock(&d->mu);
  return 0;
}

static conc_future *dq_pop(deque *d, bool bottom) {
  if (atomic_load_explicit(&d->size, memory_order_relaxed) == 0)
    return NULL;
  pthread_mutex_lock(&d->mu);
  conc_future *f = NULL;
  if (d->bottom != d->top) {
    f = bottom ? d->buf[--d->bottom % d->cap] : d->buf[d->top++ % d->cap];
    atomic_store_explicit(&d->size, d->bottom - d->top, memory_order_relaxed);
  }
  pthread_mutex_unlock(&d->mu);
  return f;
}

/* ---- global queue ---- */

/* q_mu held.  Insert after the last task of priority >= f's. */
static void q_insert(pool *p, conc_future *f) {
  f->next = NULL;
  if (!p->q_tail || p->q_tail->prio >= f->prio) {
    if (p->q_tail)
      p->q_tail->next = f;
    else
      p->q_head = f;
    p->q_tail = f;
  } else if (p->q_head->prio < f->prio) {
    f->next = p->q_head;
    p->q_head = f;
  } else {
    conc_future *c = p->q_head;
    while (c->next && c->next->prio >= f->prio)
      c = c->next;
    f->next = c->next;
    c->next = f;
  }
  atomic_store_explicit(&p->q_len,
                        atomic_load_explicit(&p->q_len, memory_order_relaxed) + 1,
                        memory_order_seq_cst);
}

static conc_future *q_pop(pool *p) {
  if (atomic_load_explicit(&p->q_len, memory_order_relaxed) == 0)
    return NULL;
  pthread_mutex_lock(&p->q_mu);
  conc_future *f = p->q_head;
  if (f) {
    p->q_head = f->next;
    if (!p->q_head)
      p->q_tail = NULL;
    f->next = NULL;
    atomic_store_explicit(
        &p->q_len, atomic_load_explicit(&p->q_len, memory_order_relaxed) - 1,
        memory_order_relaxed);
  }
  pthread_mutex_unlock(&p->q_mu);
  return f;
}

static bool has_work(pool *p) {
  if (atomic_load_explicit(&p->q_len, memory_order_seq_cst))
    return true;
  unsigned n = atomic_load_explicit(&p->nworkers, memory_order_acquire);
  for (unsigned i = 0; i < n; i++)
    if (atomic_load_explicit(&p->workers[i].dq.size, memory_order_seq_cst))
      return true;
  return false;
}

static conc_future *find_task(worker *w) {
  pool *p = w->pool;
  conc_future *f = dq_pop(&w->dq, true);
  if (f)
    return f;
  f = q_pop(p);
  if (f)
    return f;
  unsigned n = atomic_load_explicit(&p->nworkers, memory_order_acquire);
  for (unsigned k = 1; k < n; k++) {
    f = dq_pop(&p->workers[(w->idx + k) % n].dq, false);
    if (f)
      return f;
  }
  return NULL;
}

/* ---- running ---- */

static void run(worker *w, conc_future *f) {
  pool *p = w->pool;
  if (CONC_UNLIKELY(atomic_load_explicit(&p->state, memory_order_relaxed) ==
                    ST_BROKEN)) {
    conc__future_fail(f, CONC_EBROKEN, p->broken_code,
                      conc__strdup("thread pool is broken: an initializer "
                                   "failed"));
    conc_future_release(f);
    return;
  }
  conc_future *prev = atomic_load_explicit(&w->current, memory_order_relaxed);
  atomic_store_explicit(&w->current, f, memory_order_seq_cst);
  conc__future_run(f);
  atomic_store_explicit(&w->current, prev, memory_order_seq_cst);
  while (atomic_load_explicit(&p->scanning, memory_order_seq_cst))
    conc__pause();
  conc_future_release(f);
}

static bool help(void *arg) {
  worker *w = arg;
  conc_future *f = find_task(w);
  if (!f)
    return false;
  run(w, f);
  return true;
}

static void wake(pool *p, int n) {
  atomic_fetch_add_explicit(&p->epoch, 1, memory_order_seq_cst);
  conc__futex_wake(&p->epoch, n, false);
}

static void fail_queued(pool *p, int outcome, int detail, const char *msg);

static void *worker_main(void *arg) {
  worker *w = arg;
  pool *p = w->pool;
  tl_worker = w;
  conc__set_helper(help, w);
  char name[16];
  snprintf(name, sizeof name, "%.10s-%u", p->prefix, w->idx);
  pthread_setname_np(pthread_self(), name);

  if (p->initializer) {
    int rc = p->initializer(p->initarg);
    if (rc) {
      conc_log(CONC_LOG_ERROR, "thread pool initializer failed: %d", rc);
      pthread_mutex_lock(&p->q_mu);
      if (atomic_load_explicit(&p->state, memory_order_relaxed) == ST_OPEN) {
        p->broken_code = rc;
        atomic_store_explicit(&p->state, ST_BROKEN, memory_order_seq_cst);
      }
      pthread_mutex_unlock(&p->q_mu);
      fail_queued(p, CONC_EBROKEN, rc,
                  "thread pool is broken: an initializer failed");
      wake(p, INT_MAX);
    }
  }

  for (;;) {
    conc_future *f = find_task(w);
    if (f) {
      run(w, f);
      continue;
    }
    atomic_fetch_add_explicit(&p->idle, 1, memory_order_seq_cst);
    for (int i = 0; i < 512 && !has_work(p); i++)
      conc__pause();
    for (;;) {
      if (has_work(p))
        break;
      if (atomic_load_explicit(&p->state, memory_order_seq_cst) != ST_OPEN)
        goto out;
      atomic_fetch_add_explicit(&p->sleepers, 1, memory_order_seq_cst);
      uint32_t e = atomic_load_explicit(&p->epoch, memory_order_seq_cst);
      if (has_work(p) ||
          atomic_load_explicit(&p->state, memory_order_seq_cst) != ST_OPEN) {
        atomic_fetch_sub_explicit(&p->sleepers, 1, memory_order_seq_cst);
        continue;
      }
      conc__futex_wait(&p->epoch, e, INFINITY, false);
      atomic_fetch_sub_explicit(&p->sleepers, 1, memory_order_seq_cst);
    }
    atomic_fetch_sub_explicit(&p->idle, 1, memory_order_seq_cst);
  }
out:
  atomic_fetch_sub_explicit(&p->idle, 1, memory_order_seq_cst);
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
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* the worker inherits it */
    int e = pthread_create(&w->th, NULL, worker_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e == 0) {
      w->started = true;
      /* release: the new worker's slot is visible to stealers */
      atomic_store_explicit(&p->nworkers, n + 1, memory_order_release);
    } else {
      rc = e == ENOMEM ? CONC_ENOMEM : CONC_EAGAIN;
    }
  }
  pthread_mutex_unlock(&p->start_mu);
  return rc;
}

/* After publishing a task: wake a parked worker or start one. */
static void notify(pool *p) {
  if (atomic_load_explicit(&p->sleepers, memory_order_seq_cst) > 0) {
    wake(p, 1);
    return;
  }
  if (atomic_load_explicit(&p->idle, memory_order_seq_cst) == 0 &&
      atomic_load_explicit(&p->nworkers, memory_order_relaxed) <
          p->base.max_workers) {
    int rc = spawn(p);
    if (rc)
      conc_log(CONC_LOG_WARN, "thread pool: cannot start a worker: %s",
               conc_strerror(rc));
  }
}

static int state_error(int st) {
  return st == ST_BROKEN ? CONC_EBROKEN : CONC_ESHUTDOWN;
}

static int tp_submit(conc_executor *ex, conc_fn fn, void *arg,
                     const conc_submit_options *o, unsigned flags,
                     conc_future **out) {
  pool *p = (pool *)ex;
  if (CONC_UNLIKELY(!conc__executor_local(ex)))
    return CONC_EBROKEN;
  int st = atomic_load_explicit(&p->state, memory_order_acquire);
  if (CONC_UNLIKELY(st != ST_OPEN))
    return state_error(st);
  /* No worker yet: start one first, so a task is never queued with nobody
   * to run it. */
  if (CONC_UNLIKELY(atomic_load_explicit(&p->nworkers,
                                         memory_order_acquire) == 0)) {
    int rc = spawn(p);
    if (rc)
      return rc;
  }
  conc_future *f = conc__future_new_task(fn, arg, out ? 2 : 1);
  if (!f)
    return CONC_ENOMEM;
  f->flags |= (uint16_t)flags;
  if (o) {
    if (o->priority > INT16_MAX || o->priority < INT16_MIN) {
      f->flags &= (uint16_t)~FF_FREE_ARG;
      conc__free(f);
      return CONC_EINVAL;
    }
    f->prio = (int16_t)o->priority;
    if (o->deadline >= 0) {
      f->flags |= FF_DEADLINE;
      f->u.deadline = o->deadline;
    }
  }
  worker *w = tl_worker;
  if (w && w->pool == p && f->prio == 0) {
    if (dq_push(&w->dq, f) != 0)
      goto fail_nomem;
  } else {
    pthread_mutex_lock(&p->q_mu);
    st = atomic_load_explicit(&p->state, memory_order_relaxed);
    if (st != ST_OPEN) {
      pthread_mutex_unlock(&p->q_mu);
      f->flags &= (uint16_t)~FF_FREE_ARG; /* the caller frees arg */
      conc__free(f);
      return state_error(st);
    }
    q_insert(p, f);
    pthread_mutex_unlock(&p->q_mu);
  }
  notify(p);
  if (out)
    *out = f;
  return 0;
fail_nomem:
  f->flags &= (uint16_t)~FF_FREE_ARG;
  conc__free(f);
  return CONC_ENOMEM;
}

/* Fail (or cancel, for CONC_ECANCELED) everything queued. */
static void fail_queued(pool *p, int outcome, int detail, const char *msg) {
  pthread_mutex_lock(&p->q_mu);
  conc_future *list = p->q_head;
  p->q_head = p->q_tail = NULL;
  atomic_store_explicit(&p->q_len, 0, memory_order_relaxed);
  pthread_mutex_unlock(&p->q_mu);
  unsigned n = atomic_load_explicit(&p->nworkers, memory_order_acquire);
  for (unsigned i = 0;; i++) {
    while (list) {
      conc_future *f = list;
      list = f->next;
      f->next = NULL;
      if (outcome == CONC_ECANCELED)
        conc__future_cancel(f);
      else
        conc__future_fail(f, outcome, detail, conc__strdup(msg));
      conc_future_release(f);
    }
    if (i >= n)
      break;
    conc_future *g;
    while ((g = dq_pop(&p->workers[i].dq, false))) {
      g->next = list;
      list = g;
    }
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
  pthread_mutex_lock(&p->q_mu);
  if (atomic_load_explicit(&p->state, memory_order_relaxed) == ST_OPEN)
    atomic_store_explicit(&p->state, ST_SHUTDOWN, memory_order_seq_cst);
  pthread_mutex_unlock(&p->q_mu);
  if (cancel_futures) {
    fail_queued(p, CONC_ECANCELED, 0, NULL);
    atomic_store_explicit(&p->scanning, 1, memory_order_seq_cst);
    unsigned n = atomic_load_explicit(&p->nworkers, memory_order_acquire);
    for (unsigned i = 0; i < n; i++) {
      conc_future *f =
          atomic_load_explicit(&p->workers[i].current, memory_order_seq_cst);
      if (f)
        conc_future_stop(f);
    }
    atomic_store_explicit(&p->scanning, 0, memory_order_seq_cst);
  }
  wake(p, INT_MAX);
  if (!wait)
    return 0;
  if (tp_is_own_thread(ex))
    return CONC_EDEADLK;
  pthread_mutex_lock(&p->start_mu);
  if (!p->joined) {
    unsigned n = atomic_load_explicit(&p->nworkers, memory_order_acquire);
    for (unsigned i = 0; i < n; i++)
      if (p->workers[i].started)
        pthread_join(p->workers[i].th, NULL);
    p->joined = true;
  }
  pthread_mutex_unlock(&p->start_mu);
  return 0;
}

static void tp_free(conc_executor *ex) {
  pool *p = (pool *)ex;
  bool local = conc__executor_local(ex);
  for (unsigned i = 0; i < p->base.max_workers; i++) {
    conc__free(p->workers[i].dq.buf);
    if (local)
      pthread_mutex_destroy(&p->workers[i].dq.mu);
  }
  if (local) {
    pthread_mutex_destroy(&p->q_mu);
    pthread_mutex_destroy(&p->start_mu);
  }
  conc__free(p->workers);
  conc__free(p);
}

static const conc__executor_vt tp_vt = {
    "thread pool", tp_submit, tp_shutdown, tp_free, tp_is_own_thread,
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
      o->max_workers > 4096 || (o->flags & ~CONC_EXECUTOR_NO_EXIT_HOOK))
    return CONC_EINVAL;
  unsigned max = o->max_workers;
  if (max == 0) {
    int c = conc_cpu_count() + 4;
    max = c < 32 ? (unsigned)c : 32;
  }
  pool *p = conc__calloc(1, sizeof *p);
  if (!p)
    return CONC_ENOMEM;
  p->workers = conc__calloc(max, sizeof *p->workers);
  if (!p->workers) {
    conc__free(p);
    return CONC_ENOMEM;
  }
  snprintf(p->prefix, sizeof p->prefix, "%s",
           o->thread_name_prefix ? o->thread_name_prefix : "conc-pool");
  p->initializer = o->initializer;
  p->initarg = o->initarg;
  for (unsigned i = 0; i < max; i++) {
    p->workers[i].pool = p;
    p->workers[i].idx = i;
    pthread_mutex_init(&p->workers[i].dq.mu, NULL);
  }
  pthread_mutex_init(&p->q_mu, NULL);
  pthread_mutex_init(&p->start_mu, NULL);
  conc__executor_init(&p->base, &tp_vt, max, o->flags);
  *out = &p->base;
  return 0;
}
