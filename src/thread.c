/* thread.c - conc_thread, conc_timer, conc_local.
 *
 * DESIGN
 *
 * conc_thread wraps a pthread in caller storage (struct thread_priv below).
 * The starter fills the struct and calls pthread_create; the new thread runs
 * trampoline(), which records its tid, sets conc_thread_current()'s
 * thread-local pointer and the kernel name, runs the user function, stores
 * the result and publishes "finished" in the state word.  The joiner waits
 * on that word as a futex (so join can time out, which pthread_join cannot)
 * and then calls pthread_join, which returns at once or nearly so.  After
 * publishing "finished" the thread touches the storage no more except for a
 * futex wake on the word when a joiner sleeps there (harmless if the word
 * was reused: a spurious wake-up).
 *
 * state word (futex): low byte = phase, plus flag bits
 *
 *   phase     set by        meaning
 *   NEW       zeroed store  never started
 *   RUNNING   start         the thread function has not returned
 *   DONE      trampoline    returned; joinable threads wait for join
 *   JOINED    join          joined; the storage may be started again
 *
 *   TH_DETACHED  the thread is detached (join gives CONC_EINVAL); a
 *                detached DONE thread may be started again.
 *   TH_JOINER    a joiner sleeps on the word; DONE wakes it.
 *
 * The magic field (storage address ^ TH_MAGIC, written by start) tells a
 * started thread from uninitialised or zeroed storage, so that join on
 * storage that was never started reports CONC_EINVAL instead of reading
 * garbage.  Only start and join (one caller at a time, per thread.h) write
 * it and the non-atomic fields; the thread writes result and tid before
 * its release store of DONE, which the joiner reads with acquire.
 *
 * conc_timer: a conc_thread running timer_run, which waits on a conc_event
 * (the cancel signal) with the interval as timeout.  A single state word
 * decides the race between cancel and firing: WAITING -> FIRED (the timer
 * thread, on timeout, before calling fn) or WAITING -> CANCELLED (cancel,
 * which then sets the event).  The timer thread blocks asynchronous
 * signals: it is the library's thread, not the caller's.
 *
 * conc_local wraps a pthread key; its valid_ field holds LOCAL_MAGIC while
 * the key exists.
 *
 * Fork: a conc_thread copied into a fork child names a thread that does not
 * exist there; do not join it in the child.  Nothing here allocates through
 * conc's allocator (glibc allocates thread stacks itself).
 */
#include "internal.h"

#include <pthread.h>
#include <signal.h>

#include "conc/sync.h"
#include "conc/thread.h"

#define TH_NEW 0u
#define TH_RUNNING 1u
#define TH_DONE 2u
#define TH_JOINED 3u
#define TH_PHASE 0xffu
#define TH_DETACHED 0x100u
#define TH_JOINER 0x200u

#define TH_MAGIC ((uintptr_t)0x636f6e6374687264ull) /* "concthrd" */
#define TH_NAME_MAX 32

struct thread_priv {
  pthread_t pt;
  conc_fn fn;
  conc_thread_run_fn run;
  void *arg;
  void *result;
  uintptr_t magic;
  _Atomic uint32_t state;
  _Atomic int tid;
  char name[TH_NAME_MAX];
};
_Static_assert(sizeof(struct thread_priv) <= sizeof(conc_thread),
               "thread_priv too large");
_Static_assert(_Alignof(struct thread_priv) <= _Alignof(conc_thread),
               "thread_priv misaligned");

static _Thread_local conc_thread *tl_current;
static atomic_uint thread_counter; /* for "conc-thread-N" */

static inline struct thread_priv *thread_of(conc_thread *t) {
  return (struct thread_priv *)(void *)t;
}

static inline const struct thread_priv *thread_of_c(const conc_thread *t) {
  return (const struct thread_priv *)(const void *)t;
}

static inline bool thread_started(const struct thread_priv *p) {
  return p->magic == ((uintptr_t)p ^ TH_MAGIC);
}

/* Running, or finished but not joined: the storage may not be restarted. */
static bool thread_busy(const struct thread_priv *p) {
  if (!thread_started(p))
    return false;
  /* acquire: pairs with the release CAS in trampoline (a detached
   * thread's storage is reusable once it is DONE) */
  uint32_t s = atomic_load_explicit(&p->state, memory_order_acquire);
  uint32_t ph = s & TH_PHASE;
  return ph == TH_RUNNING || (ph == TH_DONE && !(s & TH_DETACHED));
}

static void *trampoline(void *a) {
  conc_thread *t = a;
  struct thread_priv *p = thread_of(t);
  /* relaxed: read by native_id (a snapshot) and by join (self check),
   * which only compares it with the joiner's own tid */
  atomic_store_explicit(&p->tid, conc__gettid(), memory_order_relaxed);
  tl_current = t;

  char kname[16];
  memcpy(kname, p->name, 15);
  kname[15] = '\0';
  pthread_setname_np(pthread_self(), kname); /* cosmetic: failure is fine */

  void *res = p->run ? p->run(t) : p->fn(p->arg);

  tl_current = NULL;
  p->result = res;
  uint32_t s = atomic_load_explicit(&p->state, memory_order_relaxed);
  uint32_t ns;
  do {
    ns = (s & TH_DETACHED) | TH_DONE;
    /* release: pairs with the acquire loads in thread_join_impl */
  } while (!atomic_compare_exchange_weak_explicit(
      &p->state, &s, ns, memory_order_release, memory_order_relaxed));
  if (s & TH_JOINER)
    conc__futex_wake(&p->state, INT_MAX, false);
  return NULL;
}

void conc_thread_options_init(conc_thread_options *o) {
  if (!o)
    return;
  memset(o, 0, sizeof *o);
  o->size = sizeof *o;
  o->name = NULL;
  o->stack_size = 0;
  o->detached = false;
}

/* Is field [off, off+len) inside what the caller's options struct has? */
#define OPT_HAS(o, field)                                                     \
  ((o)->size >= offsetof(conc_thread_options, field) +                        \
                    sizeof(((conc_thread_options *)0)->field))

static int map_pthread_error(int err) {
  switch (err) {
  case 0:
    return 0;
  case ENOMEM:
    return CONC_ENOMEM;
  case EINVAL:
    return CONC_EINVAL;
  default: /* EAGAIN, EPERM: the system refused a thread */
    return CONC_EAGAIN;
  }
}

static int thread_start_impl(conc_thread *t, conc_fn fn, void *arg,
                             conc_thread_run_fn run,
                             const conc_thread_options *opts) {
  if (!t || (!fn && !run))
    return CONC_EINVAL;
  const char *name = NULL;
  size_t stack_size = 0;
  bool detached = false;
  if (opts) {
    if (!OPT_HAS(opts, name))
      return CONC_EINVAL;
    name = opts->name;
    if (OPT_HAS(opts, stack_size))
      stack_size = opts->stack_size;
    if (OPT_HAS(opts, detached))
      detached = opts->detached;
  }

  struct thread_priv *p = thread_of(t);
  if (thread_busy(p))
    return CONC_EINVAL;

  pthread_attr_t attr;
  int err = pthread_attr_init(&attr);
  if (err)
    return map_pthread_error(err);
  if (stack_size) {
    err = pthread_attr_setstacksize(&attr, stack_size);
    if (err)
      goto fail;
  }
  if (detached) {
    err = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (err)
      goto fail;
  }

  memset(p, 0, sizeof *p);
  p->fn = fn;
  p->run = run;
  p->arg = arg;
  if (name) {
    snprintf(p->name, sizeof p->name, "%s", name);
  } else {
    /* relaxed: only needs distinct values */
    unsigned n = atomic_fetch_add_explicit(&thread_counter, 1,
                                           memory_order_relaxed) + 1;
    snprintf(p->name, sizeof p->name, "conc-thread-%u", n);
  }
  p->magic = (uintptr_t)p ^ TH_MAGIC;
  /* relaxed: pthread_create orders it before the new thread; other
   * readers (is_alive) take a snapshot */
  atomic_store_explicit(&p->state,
                        TH_RUNNING | (detached ? TH_DETACHED : 0u),
                        memory_order_relaxed);
  err = pthread_create(&p->pt, &attr, trampoline, t);
  if (err) {
    atomic_store_explicit(&p->state, TH_NEW, memory_order_relaxed);
    p->magic = 0;
    goto fail;
  }
  pthread_attr_destroy(&attr);
  return 0;

fail:
  pthread_attr_destroy(&attr);
  return map_pthread_error(err);
}

int conc_thread_start(conc_thread *t, conc_fn fn, void *arg,
                      const conc_thread_options *opts) {
  if (!fn)
    return CONC_EINVAL;
  return thread_start_impl(t, fn, arg, NULL, opts);
}

int conc_thread_start_run(conc_thread *t, conc_thread_run_fn run,
                          const conc_thread_options *opts) {
  if (!run)
    return CONC_EINVAL;
  return thread_start_impl(t, NULL, NULL, run, opts);
}

static int thread_join_impl(conc_thread *t, double deadline, void **result) {
  if (!t)
    return CONC_EINVAL;
  struct thread_priv *p = thread_of(t);
  if (!thread_started(p))
    return CONC_EINVAL;
  /* acquire: pairs with the release CAS in trampoline */
  uint32_t s = atomic_load_explicit(&p->state, memory_order_acquire);
  uint32_t ph = s & TH_PHASE;
  if ((s & TH_DETACHED) || ph == TH_NEW || ph == TH_JOINED)
    return CONC_EINVAL;
  /* relaxed: see trampoline; only our own tid can compare equal while the
   * thread runs (a finished thread's tid may be recycled: not checked) */
  if (ph == TH_RUNNING &&
      atomic_load_explicit(&p->tid, memory_order_relaxed) == conc__gettid())
    return CONC_EDEADLK;

  int r = 0;
  while ((s & TH_PHASE) == TH_RUNNING) {
    if (r == CONC_ETIMEDOUT)
      return CONC_ETIMEDOUT;
    if (!(s & TH_JOINER)) {
      /* acquire: pairs with the release CAS in trampoline when the CAS
       * fails because the thread finished */
      if (!atomic_compare_exchange_weak_explicit(&p->state, &s,
                                                 s | TH_JOINER,
                                                 memory_order_acquire,
                                                 memory_order_acquire))
        continue;
      s |= TH_JOINER;
    }
    r = conc__futex_wait(&p->state, s, deadline, false);
    /* acquire: pairs with the release CAS in trampoline */
    s = atomic_load_explicit(&p->state, memory_order_acquire);
  }
  CONC_ASSERT((s & TH_PHASE) == TH_DONE);
  CONC_MUST(pthread_join(p->pt, NULL) == 0);
  if (result)
    *result = p->result;
  /* relaxed: the thread is gone; later starts happen on this thread or
   * are ordered by the caller */
  atomic_store_explicit(&p->state, TH_JOINED, memory_order_relaxed);
  return 0;
}

int conc_thread_join(conc_thread *t, double timeout, void **result) {
  return thread_join_impl(t, conc__deadline(timeout), result);
}

int conc_thread_join_until(conc_thread *t, double deadline, void **result) {
  return thread_join_impl(t, isnan(deadline) ? INFINITY : deadline, result);
}

bool conc_thread_is_alive(const conc_thread *t) {
  if (!t)
    return false;
  const struct thread_priv *p = thread_of_c(t);
  if (!thread_started(p))
    return false;
  /* acquire: pairs with the release CAS in trampoline, so a caller that
   * sees "not alive" also sees what the thread wrote */
  uint32_t s = atomic_load_explicit(&p->state, memory_order_acquire);
  return (s & TH_PHASE) == TH_RUNNING;
}

const char *conc_thread_name(const conc_thread *t) {
  if (!t)
    return "";
  const struct thread_priv *p = thread_of_c(t);
  return thread_started(p) ? p->name : "";
}

int conc_thread_native_id(const conc_thread *t) {
  if (!t)
    return 0;
  const struct thread_priv *p = thread_of_c(t);
  if (!thread_started(p))
    return 0;
  /* relaxed: a snapshot; see trampoline */
  return atomic_load_explicit(&p->tid, memory_order_relaxed);
}

conc_thread *conc_thread_current(void) { return tl_current; }

int conc_thread_get_native_id(void) { return conc__gettid(); }

/* ---- timer ---- */

#define TM_WAITING 0u
#define TM_FIRED 1u
#define TM_CANCELLED 2u

struct timer_priv {
  conc_thread th;
  conc_event cancel;
  _Atomic uint32_t state;
  double interval;
  conc_fn fn;
  void *arg;
};
_Static_assert(sizeof(struct timer_priv) <= sizeof(conc_timer),
               "timer_priv too large");
_Static_assert(_Alignof(struct timer_priv) <= _Alignof(conc_timer),
               "timer_priv misaligned");

static inline struct timer_priv *timer_of(conc_timer *t) {
  return (struct timer_priv *)(void *)t;
}

static void *timer_run(conc_thread *self) {
  struct timer_priv *p = CONC_CONTAINER_OF(self, struct timer_priv, th);
  conc__block_signals();
  if (conc_event_wait(&p->cancel, p->interval) == 0)
    return NULL; /* cancelled */
  uint32_t expect = TM_WAITING;
  /* relaxed: decides the race with conc_timer_cancel only; fn and arg
   * were published by pthread_create, and cancel publishes nothing */
  if (atomic_compare_exchange_strong_explicit(&p->state, &expect, TM_FIRED,
                                              memory_order_relaxed,
                                              memory_order_relaxed))
    p->fn(p->arg);
  return NULL;
}

int conc_timer_start(conc_timer *t, double interval, conc_fn fn, void *arg) {
  if (!t || !fn || !(interval >= 0))
    return CONC_EINVAL;
  struct timer_priv *p = timer_of(t);
  if (thread_busy(thread_of(&p->th)))
    return CONC_EINVAL; /* running or not joined yet */
  CONC_MUST(conc_event_init(&p->cancel, 0) == 0);
  /* relaxed: pthread_create orders it before the timer thread */
  atomic_store_explicit(&p->state, TM_WAITING, memory_order_relaxed);
  p->interval = interval;
  p->fn = fn;
  p->arg = arg;
  conc_thread_options o;
  conc_thread_options_init(&o);
  o.name = "conc-timer";
  return conc_thread_start_run(&p->th, timer_run, &o);
}

int conc_timer_cancel(conc_timer *t) {
  if (!t)
    return CONC_EINVAL;
  struct timer_priv *p = timer_of(t);
  if (!thread_started(thread_of(&p->th)))
    return CONC_EINVAL;
  uint32_t expect = TM_WAITING;
  /* relaxed: the event's set/wait pair orders what the timer needs */
  if (atomic_compare_exchange_strong_explicit(&p->state, &expect,
                                              TM_CANCELLED,
                                              memory_order_relaxed,
                                              memory_order_relaxed)) {
    conc_event_set(&p->cancel);
    return 0;
  }
  return expect == TM_CANCELLED ? 0 : CONC_EBUSY;
}

int conc_timer_join(conc_timer *t, double timeout, bool *fired) {
  if (!t)
    return CONC_EINVAL;
  struct timer_priv *p = timer_of(t);
  int r = conc_thread_join(&p->th, timeout, NULL);
  if (r == 0 && fired)
    /* relaxed: the join ordered the timer thread's writes before us */
    *fired = atomic_load_explicit(&p->state, memory_order_relaxed) ==
             TM_FIRED;
  return r;
}

/* ---- thread-local values ---- */

#define LOCAL_MAGIC 0x6c6f636cu /* "locl" */

_Static_assert(sizeof(pthread_key_t) <= sizeof(unsigned),
               "pthread_key_t does not fit conc_local");

int conc_local_init(conc_local *l, void (*dtor)(void *value)) {
  if (!l)
    return CONC_EINVAL;
  pthread_key_t k;
  int err = pthread_key_create(&k, dtor);
  if (err) {
    l->valid_ = 0;
    return err == ENOMEM ? CONC_ENOMEM : CONC_EAGAIN;
  }
  l->key_ = (unsigned)k;
  l->valid_ = LOCAL_MAGIC;
  return 0;
}

int conc_local_destroy(conc_local *l) {
  if (!l || l->valid_ != LOCAL_MAGIC)
    return CONC_EINVAL;
  CONC_MUST(pthread_key_delete((pthread_key_t)l->key_) == 0);
  l->valid_ = 0;
  return 0;
}

void *conc_local_get(const conc_local *l) {
  if (!l || l->valid_ != LOCAL_MAGIC)
    return NULL;
  return pthread_getspecific((pthread_key_t)l->key_);
}

int conc_local_set(conc_local *l, void *value) {
  if (!l || l->valid_ != LOCAL_MAGIC)
    return CONC_EINVAL;
  int err = pthread_setspecific((pthread_key_t)l->key_, value);
  if (err)
    return err == ENOMEM ? CONC_ENOMEM : CONC_EINVAL;
  return 0;
}
