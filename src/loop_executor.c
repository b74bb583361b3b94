/* loop_executor.c - a coroutine loop as a conc executor
 * (conc_loop_executor_create in conc/net.h).
 *
 * DESIGN
 * A submission (any thread) makes a task-bound future and posts a message
 * to the loop's inbox (io-int.h); on the loop's thread the message spawns
 * a coroutine that runs the task (PENDING -> RUNNING, deadline check, fn,
 * completion), so fn may wait like any coroutine.  A message dropped
 * because the loop was destroyed first cancels its future, as does
 * shutdown with cancel_futures for tasks not yet started.  `outstanding`
 * counts tasks not yet finished or cancelled, under mu; shutdown with wait
 * sleeps on cv until it reaches zero (on the loop's thread, where that
 * would never happen, CONC_EDEADLK unless it is zero already).
 *
 * Task context: the task's conc__task_ctx (conc_task_fail, stop requests)
 * lives in a slot of the task's own coroutine (conc__coro_task_slot), so
 * it stays the task's across its waits while other tasks of the loop run
 * in between.
 */
#include "internal.h"
#include "executor-int.h"
#include "future-int.h"
#include "io-int.h"

#include <pthread.h>

typedef struct lexec {
  conc_executor base;
  conc__remote *remote;
  const conc_loop *loop; /* compared, never dereferenced */
  int tid;               /* the loop's thread */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  uint64_t outstanding; /* under mu */
  _Atomic bool shut;
  _Atomic bool cancel_all;
  _Atomic uint64_t submitted, completed, failed, cancelled, started;
} lexec;

typedef struct item {
  conc__msg m;
  lexec *ex;
  conc_future *f;
} item;


static void item_done(item *it, int outcome) {
  lexec *ex = it->ex;
  _Atomic uint64_t *c = outcome == 0 ? &ex->completed
                        : outcome == CONC__SKIPPED || outcome == CONC_ECANCELED
                            ? &ex->cancelled
                            : &ex->failed;
  atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
  conc_future_release(it->f);
  conc__free(it);
  pthread_mutex_lock(&ex->mu);
  if (--ex->outstanding == 0)
    pthread_cond_broadcast(&ex->cv);
  pthread_mutex_unlock(&ex->mu);
}

/* As conc__future_run, with the task context handling described above. */
static int run_task(conc_future *f) {
  uint32_t s = atomic_load_explicit(&f->state, memory_order_relaxed);
  for (;;) {
    if ((s & FS_MASK) != FS_PENDING || (s & FS_COMPLETING))
      return CONC__SKIPPED;
    if (atomic_compare_exchange_weak_explicit(
            &f->state, &s, (s & ~FS_MASK) | FS_RUNNING, memory_order_acq_rel,
            memory_order_relaxed))
      break;
  }
  if ((f->flags & FF_DEADLINE) && conc_now() > f->u.deadline) {
    conc__future_fail(f, CONC_EDEADLINE, 0,
                      conc__strdup("deadline passed before the task started"));
    return CONC_EDEADLINE;
  }
  conc__task_ctx ctx = {.future = f};
  if (conc__coro_task_slot_open(&ctx) != 0) {
    conc__future_fail(f, CONC_ENOMEM, 0,
                      conc__strdup("no memory for the task's context"));
    return CONC_ENOMEM;
  }
  void *r = f->fn(f->arg);
  conc__coro_task_slot_close();
  if (ctx.outcome == 0) {
    conc__future_succeed(f, r);
  } else {
    conc__future_fail(f, ctx.outcome, ctx.code, ctx.msg);
  }
  return ctx.outcome;
}

static int item_coro(void *arg, void **result) {
  (void)result;
  item *it = arg;
  int outcome;
  if (atomic_load_explicit(&it->ex->cancel_all, memory_order_relaxed) &&
      conc__future_cancel(it->f)) {
    outcome = CONC__SKIPPED;
  } else {
    atomic_fetch_add_explicit(&it->ex->started, 1, memory_order_relaxed);
    outcome = run_task(it->f);
  }
  item_done(it, outcome);
  return 0;
}

static void item_run(conc_loop *l, conc__msg *m, bool dropped) {
  item *it = (item *)m;
  if (!dropped && !conc__loop_closing(l) &&
      !atomic_load_explicit(&it->ex->cancel_all, memory_order_relaxed) &&
      conc_coro_spawn(l, item_coro, it, NULL, NULL) == 0)
    return;
  if (!conc__future_cancel(it->f)) /* not pending: say why it never ran */
    conc__future_fail(it->f, CONC_ESHUTDOWN, 0,
                      conc__strdup("the loop could not run the task"));
  item_done(it, CONC__SKIPPED);
}

static int le_submit(conc_executor *base, conc_fn fn, void *arg,
                     const conc_submit_options *o, unsigned flags,
                     conc_future **out) {
  lexec *ex = (lexec *)base;
  if (!conc__executor_local(base))
    return CONC_EBROKEN;
  if (atomic_load_explicit(&ex->shut, memory_order_acquire))
    return CONC_ESHUTDOWN;
  item *it = conc__malloc(sizeof *it);
  if (!it)
    return CONC_ENOMEM;
  conc_future *f = conc__future_new_task(fn, arg, out ? 2 : 1);
  if (!f) {
    conc__free(it);
    return CONC_ENOMEM;
  }
  f->flags |= (uint16_t)flags;
  if (o && o->deadline >= 0) {
    f->flags |= FF_DEADLINE;
    f->u.deadline = o->deadline;
  }
  it->m.run = item_run;
  it->ex = ex;
  it->f = f;
  pthread_mutex_lock(&ex->mu);
  bool shut = atomic_load_explicit(&ex->shut, memory_order_relaxed);
  if (!shut)
    ex->outstanding++;
  pthread_mutex_unlock(&ex->mu);
  int err = shut ? CONC_ESHUTDOWN : conc__remote_post(ex->remote, &it->m);
  if (err) {
    if (!shut) {
      pthread_mutex_lock(&ex->mu);
      if (--ex->outstanding == 0)
        pthread_cond_broadcast(&ex->cv);
      pthread_mutex_unlock(&ex->mu);
    }
    f->flags &= (uint16_t)~FF_FREE_ARG; /* the caller frees arg on error */
    atomic_store_explicit(&f->refs, 1, memory_order_relaxed);
    conc_future_release(f);
    conc__free(it);
    return err == CONC_ECLOSED ? CONC_ESHUTDOWN : err;
  }
  atomic_fetch_add_explicit(&ex->submitted, 1, memory_order_relaxed);
  if (out)
    *out = f;
  return 0;
}

/* Inside the running loop (one of its coroutines, a task among them). */
static bool le_is_own_thread(const conc_executor *base) {
  const lexec *ex = (const lexec *)base;
  return ex->tid == conc__gettid() && conc__loop_current() == ex->loop;
}

static int le_shutdown(conc_executor *base, bool wait, bool cancel_futures) {
  lexec *ex = (lexec *)base;
  pthread_mutex_lock(&ex->mu);
  atomic_store_explicit(&ex->shut, true, memory_order_release);
  if (cancel_futures)
    atomic_store_explicit(&ex->cancel_all, true, memory_order_relaxed);
  pthread_mutex_unlock(&ex->mu);
  if (!wait || !conc__executor_local(base))
    return 0;
  if (ex->tid == conc__gettid()) { /* nobody else would run them */
    pthread_mutex_lock(&ex->mu);
    bool idle = ex->outstanding == 0;
    pthread_mutex_unlock(&ex->mu);
    return idle ? 0 : CONC_EDEADLK;
  }
  pthread_mutex_lock(&ex->mu);
  while (ex->outstanding > 0)
    pthread_cond_wait(&ex->cv, &ex->mu);
  pthread_mutex_unlock(&ex->mu);
  return 0;
}

static void le_free(conc_executor *base) {
  lexec *ex = (lexec *)base;
  if (conc__executor_local(base)) {
    conc__remote_release(ex->remote);
    pthread_mutex_destroy(&ex->mu);
    pthread_cond_destroy(&ex->cv);
  }
  conc__free(ex);
}

static void le_stats(conc_executor *base, conc_executor_stats *s) {
  lexec *ex = (lexec *)base;
  uint64_t sub = atomic_load_explicit(&ex->submitted, memory_order_relaxed);
  uint64_t done = atomic_load_explicit(&ex->completed, memory_order_relaxed);
  uint64_t fail = atomic_load_explicit(&ex->failed, memory_order_relaxed);
  uint64_t canc = atomic_load_explicit(&ex->cancelled, memory_order_relaxed);
  uint64_t started = atomic_load_explicit(&ex->started, memory_order_relaxed);
  s->submitted = sub;
  s->completed = done;
  s->failed = fail;
  s->cancelled = canc;
  uint64_t finished = done + fail + canc;
  uint64_t running = started > done + fail ? started - done - fail : 0;
  s->running = running;
  s->queued = sub > finished + running ? sub - finished - running : 0;
  s->workers = 1;
}

static const conc__executor_vt le_vt = {
    "loop", le_submit, le_shutdown, le_free, le_is_own_thread, le_stats, NULL,
};

int conc_loop_executor_create(conc_loop *loop, conc_executor **out) {
  if (!loop || !out)
    return CONC_EINVAL;
  conc__io *io;
  int err = conc__io_get(loop, &io);
  if (err)
    return err;
  lexec *ex = conc__calloc(1, sizeof *ex);
  if (!ex)
    return CONC_ENOMEM;
  pthread_mutex_init(&ex->mu, NULL);
  pthread_cond_init(&ex->cv, NULL);
  ex->remote = conc__io_remote(io);
  ex->loop = loop;
  ex->tid = conc__loop_tid(loop);
  /* no exit hook: a loop that is not running would never let it return */
  conc__executor_init(&ex->base, &le_vt, 1, CONC_EXECUTOR_NO_EXIT_HOOK);
  *out = &ex->base;
  return 0;
}
