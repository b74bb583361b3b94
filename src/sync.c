/* sync.c - lock, recursive lock, condition, event, semaphore, barrier.
 *
 * DESIGN
 *
 * Every object is a few 32-bit futex words in caller storage, no pointers,
 * so it works embedded in user structs and in memory shared between
 * processes.  CONC_SYNC_SHARED selects non-private futex operations (the
 * kernel then keys the futex on the physical page, not on the mm) and, for
 * locks, owner liveness checks.  No function here allocates memory or takes
 * any lock other than the object it operates on; none calls back into user
 * code.  Any thread may call any function; blocking calls are marked.
 *
 * Waits: every blocking call turns its timeout into an absolute deadline on
 * conc_now()'s clock (conc__deadline; NaN and negative mean forever) and
 * loops around conc__futex_wait, which returns 0 for a wake-up, a spurious
 * wake-up or EINTR alike: every loop re-reads its word and decides again, so
 * signals never end a wait early.  When the deadline passes, each wait makes
 * one last attempt before reporting CONC_ETIMEDOUT, so a wait never times out
 * on an object it could take right away.
 *
 * conc_lock  word = owner tid (bits 0..29) | LK_WAITERS (bit 31)
 *
 *   word                 meaning
 *   0                    unlocked
 *   tid                  held by tid, nobody sleeps
 *   tid | LK_WAITERS     held by tid, some thread may sleep on the word
 *
 *   acquire   CAS 0 -> tid (no syscall).  Contended: set LK_WAITERS and
 *             futex-wait; a thread that wins after sleeping stores
 *             tid | LK_WAITERS since it cannot know whether others sleep.
 *   release   exchange -> 0; futex-wake one only if LK_WAITERS was set.
 *   dead      (CONC_SYNC_SHARED only) a sleeper waits in slices of
 *             LK_SLICE seconds; after each slice and when its deadline
 *             passes, it checks whether the owner tid still lives
 *             (/proc/<tid>/stat missing or in state Z/X, or kill(tid, 0)
 *             failing with ESRCH).  If not, it CASes the exact word it saw
 *             to its own tid | LK_WAITERS and returns CONC_EOWNERDEAD.  The
 *             kernel robust list is not used: glibc owns it.
 *
 * conc_rlock  a conc_lock plus a level count that only the owner touches.
 *
 * conc_cond  seq (futex) + state = SHARED bit | waiters * 2.  wait: count
 *            itself in, read seq, release the lock, sleep while seq is
 *            unchanged, count itself out, re-acquire the lock (always, also
 *            after a timeout).  notify: seq++, then wake n if anyone is
 *            counted.  Both sides are seq_cst, so either the notifier sees
 *            the waiter's count or the waiter sees the new seq.
 *
 * conc_event word = EV_SET (bit 0) | EV_WAITERS (bit 1) | generation << 2
 *
 *   set       CAS to (gen + 1) | EV_SET, dropping EV_WAITERS; wake all if
 *             it was set.  Setting a set event changes nothing.
 *   clear     clear EV_SET.
 *   wait      returns 0 once EV_SET is seen or the generation moved on
 *             (the event was set while we slept, even if cleared since:
 *             Python's Event.wait behaves the same).
 *
 * conc_semaphore  count (futex) + waiters + max.  release CASes count + n
 *            (refusing to pass min(max, 2^31-1), changing nothing), then
 *            wakes n if waiters > 0; acquire CASes count - 1 while count > 0,
 *            else counts itself in waiters and sleeps on count == 0.  Both
 *            handshakes are seq_cst (Dekker: release writes count then
 *            reads waiters; acquire writes waiters then reads count).
 *
 * conc_barrier  word = count (bits 0..27) | state (bits 28..29) |
 *            BR_ENTER_WAITERS (bit 30); parties in its own word.  The state
 *            machine is Python's threading.Barrier without its lock:
 *
 *   state      count means                  arrivals          waiters
 *   FILLING    threads waiting in round     count++, or the   sleep
 *                                           last -> DRAINING
 *   DRAINING   released, not yet left       sleep until       return 0
 *                                           FILLING
 *   RESETTING  reset, not yet left          sleep until       CONC_EBROKEN
 *                                           FILLING
 *   BROKEN     broken, not yet left         CONC_EBROKEN      CONC_EBROKEN
 *
 *   Every thread counted leaves by count--; the last to leave a DRAINING
 *   or RESETTING barrier moves it to FILLING and wakes the arrivals that
 *   slept (BR_ENTER_WAITERS).  Because a counted thread must leave before
 *   the barrier can fill again, a sleeper can never miss the end of its
 *   round (no ABA, no generation needed).  A wait that times out moves
 *   FILLING (or, for an arrival still waiting to enter, DRAINING or
 *   RESETTING) to BROKEN and returns CONC_ETIMEDOUT; a counted waiter that
 *   finds its round already ended returns that outcome instead.  abort:
 *   any state -> BROKEN.  reset:
 *   count 0 -> FILLING; FILLING or BROKEN with count > 0 -> RESETTING;
 *   DRAINING and RESETTING unchanged (they end in FILLING by themselves).
 *   Index = count at arrival: 0..parties-1, distinct within a round.
 *
 * Memory order: lock acquire CAS (acquire) pairs with release exchange
 * (release); semaphore acquire CAS (acquire) pairs with release CAS
 * (seq_cst); event wait loads (acquire) pair with the set CAS (release);
 * barrier arrival and leave CASes are acq_rel, forming one RMW chain whose
 * DRAINING store every waiter reads with acquire.  Relaxed accesses name
 * what they pair with, or say why nothing is needed.
 *
 * Guarantees and limits: locks are not fair (a running thread may barge
 * ahead of a sleeper).  A shared lock's dead-owner detection relies on
 * tids: a tid recycled by a new thread before a waiter looks hides the
 * death; processes must share a pid namespace.  A shared condition,
 * semaphore, event or barrier has no owner: a process that dies while
 * counted in a barrier round leaves it unable to complete (the others time
 * out or block), and one that dies asleep on a condition or semaphore only
 * leaves a stale waiter count (extra wake-up syscalls).  See
 * docs/internals/sync.md.
 */
#include "internal.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include "conc/sync.h"

/* ---- common ---- */

#define CONC__STORAGE_FITS(priv, pub)                                         \
  _Static_assert(sizeof(priv) <= sizeof(pub), #priv " too large");            \
  _Static_assert(_Alignof(priv) <= _Alignof(pub), #priv " misaligned")

static inline uint32_t self_tid(void) { return (uint32_t)conc__gettid(); }

/* _until deadlines: NaN waits forever, like a NaN timeout. */
static inline double until(double deadline) {
  return isnan(deadline) ? INFINITY : deadline;
}

static inline bool bad_flags(unsigned flags) {
  return (flags & ~CONC_SYNC_SHARED) != 0;
}

/* ---- lock ---- */

#define LK_TID 0x3fffffffu
#define LK_WAITERS 0x80000000u
#define LK_SLICE 0.05 /* seconds between owner liveness checks (shared) */
#define LK_SPIN 100   /* spins before sleeping */

struct lock_priv {
  _Atomic uint32_t word;
  uint32_t flags; /* CONC_SYNC_SHARED; written only by init */
};
CONC__STORAGE_FITS(struct lock_priv, conc_lock);

static inline struct lock_priv *lock_of(conc_lock *l) {
  return (struct lock_priv *)(void *)l;
}

static inline bool lock_shared(const struct lock_priv *p) {
  return (p->flags & CONC_SYNC_SHARED) != 0;
}

/* Did thread tid die?  A zombie (process exited, not yet reaped) counts as
 * dead.  Errors that say nothing (no /proc, EPERM) count as alive. */
static bool owner_dead(uint32_t tid) {
  if (tid == 0)
    return false;
  char path[48];
  snprintf(path, sizeof path, "/proc/%u/stat", (unsigned)tid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    char buf[512];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    int err = errno;
    close(fd);
    if (n < 0)
      return err == ESRCH; /* the task went away between open and read */
    buf[n] = '\0';
    /* "tid (comm) S ...": comm may hold ')' itself, so take the last. */
    char *rp = strrchr(buf, ')');
    return rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
  }
  return kill((pid_t)tid, 0) == -1 && errno == ESRCH;
}

/* Shared lock, word v seen held by another thread: take it over if its
 * owner died.  Returns CONC_EOWNERDEAD (caller owns it now), or 0 if the
 * owner lives or the word changed meanwhile. */
static int lock_reclaim(struct lock_priv *p, uint32_t v, uint32_t tid) {
  if ((v & LK_TID) == 0 || !owner_dead(v & LK_TID))
    return 0;
  /* acquire: pairs with the release exchange of the previous clean owner
   * (the dead owner's writes are visible through the shared mapping but
   * unordered: the caller must repair them, which is what EOWNERDEAD says) */
  if (atomic_compare_exchange_strong_explicit(&p->word, &v,
                                              tid | (v & LK_WAITERS),
                                              memory_order_acquire,
                                              memory_order_relaxed))
    return CONC_EOWNERDEAD;
  return 0;
}

static int lock_try_impl(struct lock_priv *p) {
  uint32_t tid = self_tid();
  uint32_t v = 0;
  /* acquire: pairs with the release exchange in lock_release_impl */
  if (atomic_compare_exchange_strong_explicit(&p->word, &v, tid,
                                              memory_order_acquire,
                                              memory_order_relaxed))
    return 0;
  if ((v & LK_TID) == tid)
    return CONC_EDEADLK;
  if (lock_shared(p) && lock_reclaim(p, v, tid))
    return CONC_EOWNERDEAD;
  return CONC_EAGAIN;
}

static int lock_slow(struct lock_priv *p, uint32_t tid, double deadline) {
  bool shared = lock_shared(p);
  uint32_t v;

  /* Short spin while the holder runs and nobody sleeps. */
  for (int i = 0; i < LK_SPIN; i++) {
    v = atomic_load_explicit(&p->word, memory_order_relaxed);
    if (v == 0) {
      /* acquire: pairs with the release exchange in lock_release_impl */
      if (atomic_compare_exchange_weak_explicit(&p->word, &v, tid,
                                                memory_order_acquire,
                                                memory_order_relaxed))
        return 0;
    }
    if (v & LK_WAITERS)
      break;
    conc__pause();
  }

  double next_check = shared ? conc_now() + LK_SLICE : INFINITY;
  for (;;) {
    /* relaxed: a first look; the CASes below carry the ordering */
    v = atomic_load_explicit(&p->word, memory_order_relaxed);
    if (v == 0) {
      /* acquire: pairs with the release exchange in lock_release_impl */
      if (atomic_compare_exchange_weak_explicit(&p->word, &v,
                                                tid | LK_WAITERS,
                                                memory_order_acquire,
                                                memory_order_relaxed))
        return 0;
      continue;
    }
    if (!(v & LK_WAITERS)) {
      /* relaxed: only announces a sleeper; the exchange in
       * lock_release_impl reads it as part of the same RMW chain */
      if (!atomic_compare_exchange_weak_explicit(&p->word, &v,
                                                 v | LK_WAITERS,
                                                 memory_order_relaxed,
                                                 memory_order_relaxed))
        continue;
      v |= LK_WAITERS;
    }
    double d = deadline < next_check ? deadline : next_check;
    int r = conc__futex_wait(&p->word, v, d, shared);
    if (r != CONC_ETIMEDOUT)
      continue; /* woken, word changed, spurious or EINTR: look again */
    if (shared) {
      v = atomic_load_explicit(&p->word, memory_order_relaxed);
      if (lock_reclaim(p, v, tid))
        return CONC_EOWNERDEAD;
      next_check = conc_now() + LK_SLICE;
    }
    if (conc_now() >= deadline) {
      /* One last try: never time out on a free lock. */
      v = 0;
      /* acquire: pairs with the release exchange in lock_release_impl */
      if (atomic_compare_exchange_strong_explicit(&p->word, &v,
                                                  tid | LK_WAITERS,
                                                  memory_order_acquire,
                                                  memory_order_relaxed))
        return 0;
      return CONC_ETIMEDOUT;
    }
  }
}

static int lock_acquire_impl(struct lock_priv *p, double deadline) {
  uint32_t tid = self_tid();
  uint32_t v = 0;
  /* acquire: pairs with the release exchange in lock_release_impl */
  if (CONC_LIKELY(atomic_compare_exchange_strong_explicit(
          &p->word, &v, tid, memory_order_acquire, memory_order_relaxed)))
    return 0;
  if ((v & LK_TID) == tid)
    return CONC_EDEADLK;
  return lock_slow(p, tid, deadline);
}

static int lock_release_impl(struct lock_priv *p) {
  /* relaxed: our own tid, written by our own CAS, is visible to us by
   * program order; any other value means we are not the owner */
  uint32_t v = atomic_load_explicit(&p->word, memory_order_relaxed);
  if ((v & LK_TID) != self_tid())
    return CONC_EPERM;
  /* release: pairs with the acquire CAS of the next owner */
  v = atomic_exchange_explicit(&p->word, 0, memory_order_release);
  if (v & LK_WAITERS)
    conc__futex_wake(&p->word, 1, lock_shared(p));
  return 0;
}

static bool lock_held_by_me(const struct lock_priv *p) {
  /* relaxed: see lock_release_impl */
  uint32_t v = atomic_load_explicit(&p->word, memory_order_relaxed);
  return (v & LK_TID) == self_tid();
}

int conc_lock_init(conc_lock *l, unsigned flags) {
  if (!l || bad_flags(flags))
    return CONC_EINVAL;
  memset(l, 0, sizeof *l);
  struct lock_priv *p = lock_of(l);
  p->flags = flags;
  /* relaxed: publishing the object to other threads is the caller's job */
  atomic_store_explicit(&p->word, 0, memory_order_relaxed);
  return 0;
}

int conc_lock_destroy(conc_lock *l) {
  if (!l)
    return CONC_EINVAL;
  /* relaxed: a snapshot; destroying a lock in use is the caller's bug */
  if (atomic_load_explicit(&lock_of(l)->word, memory_order_relaxed) != 0)
    return CONC_EBUSY;
  return 0;
}

int conc_lock_acquire(conc_lock *l, double timeout) {
  if (!l)
    return CONC_EINVAL;
  return lock_acquire_impl(lock_of(l), conc__deadline(timeout));
}

int conc_lock_acquire_until(conc_lock *l, double deadline) {
  if (!l)
    return CONC_EINVAL;
  return lock_acquire_impl(lock_of(l), until(deadline));
}

int conc_lock_try_acquire(conc_lock *l) {
  if (!l)
    return CONC_EINVAL;
  return lock_try_impl(lock_of(l));
}

int conc_lock_release(conc_lock *l) {
  if (!l)
    return CONC_EINVAL;
  return lock_release_impl(lock_of(l));
}

bool conc_lock_locked(const conc_lock *l) {
  if (!l)
    return false;
  const struct lock_priv *p = (const struct lock_priv *)(const void *)l;
  /* relaxed: a snapshot, documented as such */
  return (atomic_load_explicit(&p->word, memory_order_relaxed) & LK_TID) != 0;
}

/* ---- recursive lock ---- */

struct rlock_priv {
  struct lock_priv lk;
  uint32_t count; /* levels; read and written by the owner only */
  uint32_t reserved;
};
CONC__STORAGE_FITS(struct rlock_priv, conc_rlock);

#define RL_MAX 0x7fffffffu

static inline struct rlock_priv *rlock_of(conc_rlock *l) {
  return (struct rlock_priv *)(void *)l;
}

static int rlock_acquire_impl(struct rlock_priv *p, double deadline,
                              bool try) {
  if (lock_held_by_me(&p->lk)) {
    if (p->count >= RL_MAX)
      return CONC_EOVERFLOW;
    p->count++;
    return 0;
  }
  int r = try ? lock_try_impl(&p->lk) : lock_acquire_impl(&p->lk, deadline);
  if (r == 0 || r == CONC_EOWNERDEAD)
    p->count = 1;
  return r;
}

int conc_rlock_init(conc_rlock *l, unsigned flags) {
  if (!l || bad_flags(flags))
    return CONC_EINVAL;
  memset(l, 0, sizeof *l);
  return conc_lock_init((conc_lock *)(void *)&rlock_of(l)->lk, flags);
}

int conc_rlock_destroy(conc_rlock *l) {
  if (!l)
    return CONC_EINVAL;
  return conc_lock_destroy((conc_lock *)(void *)&rlock_of(l)->lk);
}

int conc_rlock_acquire(conc_rlock *l, double timeout) {
  if (!l)
    return CONC_EINVAL;
  return rlock_acquire_impl(rlock_of(l), conc__deadline(timeout), false);
}

int conc_rlock_acquire_until(conc_rlock *l, double deadline) {
  if (!l)
    return CONC_EINVAL;
  return rlock_acquire_impl(rlock_of(l), until(deadline), false);
}

int conc_rlock_try_acquire(conc_rlock *l) {
  if (!l)
    return CONC_EINVAL;
  return rlock_acquire_impl(rlock_of(l), 0, true);
}

int conc_rlock_release(conc_rlock *l) {
  if (!l)
    return CONC_EINVAL;
  struct rlock_priv *p = rlock_of(l);
  if (!lock_held_by_me(&p->lk))
    return CONC_EPERM;
  CONC_ASSERT(p->count > 0);
  if (--p->count > 0)
    return 0;
  return lock_release_impl(&p->lk);
}

/* ---- condition ---- */

#define CV_SHARED 1u
#define CV_WAITER 2u /* one waiter's share of state */

struct cond_priv {
  _Atomic uint32_t seq;
  _Atomic uint32_t state; /* CV_SHARED | waiters * CV_WAITER */
};
CONC__STORAGE_FITS(struct cond_priv, conc_cond);

static inline struct cond_priv *cond_of(conc_cond *c) {
  return (struct cond_priv *)(void *)c;
}

int conc_cond_init(conc_cond *c, unsigned flags) {
  if (!c || bad_flags(flags))
    return CONC_EINVAL;
  struct cond_priv *p = cond_of(c);
  memset(c, 0, sizeof *c);
  /* relaxed: publishing the object is the caller's job */
  atomic_store_explicit(&p->seq, 0, memory_order_relaxed);
  atomic_store_explicit(&p->state,
                        (flags & CONC_SYNC_SHARED) ? CV_SHARED : 0,
                        memory_order_relaxed);
  return 0;
}

int conc_cond_destroy(conc_cond *c) {
  if (!c)
    return CONC_EINVAL;
  return 0;
}

static int cond_wait_impl(conc_cond *c, conc_lock *l, double deadline) {
  if (!c || !l)
    return CONC_EINVAL;
  struct cond_priv *p = cond_of(c);
  struct lock_priv *lp = lock_of(l);
  if (!lock_held_by_me(lp))
    return CONC_EPERM;
  /* seq_cst: Dekker with conc_cond_notify (count in, then read seq;
   * notify bumps seq, then reads the count) */
  uint32_t st = atomic_fetch_add_explicit(&p->state, CV_WAITER,
                                          memory_order_seq_cst);
  bool shared = (st & CV_SHARED) != 0;
  uint32_t seq = atomic_load_explicit(&p->seq, memory_order_seq_cst);
  CONC_MUST(lock_release_impl(lp) == 0);

  int r;
  for (;;) {
    r = conc__futex_wait(&p->seq, seq, deadline, shared);
    /* relaxed: the lock re-acquired below orders the protected data */
    if (atomic_load_explicit(&p->seq, memory_order_relaxed) != seq) {
      r = 0; /* notified (possibly just as the deadline passed) */
      break;
    }
    if (r == CONC_ETIMEDOUT)
      break;
    /* EINTR or spurious wake-up with seq unchanged: keep sleeping */
  }
  /* relaxed: only a hint for notify's wake-up syscall */
  atomic_fetch_sub_explicit(&p->state, CV_WAITER, memory_order_relaxed);

  int lr = lock_acquire_impl(lp, INFINITY);
  if (lr == CONC_EOWNERDEAD)
    return lr;
  CONC_ASSERT(lr == 0);
  return r;
}

int conc_cond_wait(conc_cond *c, conc_lock *l, double timeout) {
  return cond_wait_impl(c, l, conc__deadline(timeout));
}

int conc_cond_wait_until(conc_cond *c, conc_lock *l, double deadline) {
  return cond_wait_impl(c, l, until(deadline));
}

static int cond_wake(conc_cond *c, int n) {
  if (!c)
    return CONC_EINVAL;
  struct cond_priv *p = cond_of(c);
  if (n == 0)
    return 0;
  /* seq_cst: Dekker with cond_wait_impl (see there) */
  atomic_fetch_add_explicit(&p->seq, 1, memory_order_seq_cst);
  uint32_t st = atomic_load_explicit(&p->state, memory_order_seq_cst);
  if (st >= CV_WAITER)
    conc__futex_wake(&p->seq, n, (st & CV_SHARED) != 0);
  return 0;
}

int conc_cond_notify(conc_cond *c, unsigned n) {
  return cond_wake(c, n > INT_MAX ? INT_MAX : (int)n);
}

int conc_cond_notify_all(conc_cond *c) { return cond_wake(c, INT_MAX); }

/* ---- event ---- */

#define EV_SET 1u
#define EV_WAITERS 2u
#define EV_GEN 4u
#define EV_GEN_MASK (~(EV_SET | EV_WAITERS))

struct event_priv {
  _Atomic uint32_t word;
  uint32_t flags; /* CONC_SYNC_SHARED; written only by init */
};
CONC__STORAGE_FITS(struct event_priv, conc_event);

static inline struct event_priv *event_of(conc_event *e) {
  return (struct event_priv *)(void *)e;
}

int conc_event_init(conc_event *e, unsigned flags) {
  if (!e || bad_flags(flags))
    return CONC_EINVAL;
  memset(e, 0, sizeof *e);
  struct event_priv *p = event_of(e);
  p->flags = flags;
  /* relaxed: publishing the object is the caller's job */
  atomic_store_explicit(&p->word, 0, memory_order_relaxed);
  return 0;
}

int conc_event_destroy(conc_event *e) { return e ? 0 : CONC_EINVAL; }

int conc_event_set(conc_event *e) {
  if (!e)
    return CONC_EINVAL;
  struct event_priv *p = event_of(e);
  /* relaxed: the CAS below carries the ordering */
  uint32_t v = atomic_load_explicit(&p->word, memory_order_relaxed);
  uint32_t nv;
  do {
    if (v & EV_SET)
      return 0;
    nv = ((v + EV_GEN) & EV_GEN_MASK) | EV_SET;
    /* release: pairs with the acquire loads in event_wait_impl */
  } while (!atomic_compare_exchange_weak_explicit(
      &p->word, &v, nv, memory_order_release, memory_order_relaxed));
  if (v & EV_WAITERS)
    conc__futex_wake(&p->word, INT_MAX, (p->flags & CONC_SYNC_SHARED) != 0);
  return 0;
}

int conc_event_clear(conc_event *e) {
  if (!e)
    return CONC_EINVAL;
  /* relaxed: clearing publishes nothing; as an RMW it continues the
   * release sequence of the set it undoes */
  atomic_fetch_and_explicit(&event_of(e)->word, ~EV_SET,
                            memory_order_relaxed);
  return 0;
}

bool conc_event_is_set(const conc_event *e) {
  if (!e)
    return false;
  const struct event_priv *p = (const struct event_priv *)(const void *)e;
  /* acquire: pairs with the release CAS in conc_event_set */
  return (atomic_load_explicit(&p->word, memory_order_acquire) & EV_SET) != 0;
}

static int event_wait_impl(conc_event *e, double deadline) {
  if (!e)
    return CONC_EINVAL;
  struct event_priv *p = event_of(e);
  bool shared = (p->flags & CONC_SYNC_SHARED) != 0;
  /* acquire: pairs with the release CAS in conc_event_set */
  uint32_t v = atomic_load_explicit(&p->word, memory_order_acquire);
  uint32_t gen = v & EV_GEN_MASK;
  int r = 0;
  for (;;) {
    if ((v & EV_SET) || (v & EV_GEN_MASK) != gen)
      return 0;
    if (r == CONC_ETIMEDOUT)
      return CONC_ETIMEDOUT;
    if (!(v & EV_WAITERS)) {
      /* acquire on failure: v is re-examined as a fresh load */
      if (!atomic_compare_exchange_weak_explicit(&p->word, &v,
                                                 v | EV_WAITERS,
                                                 memory_order_acquire,
                                                 memory_order_acquire))
        continue;
      v |= EV_WAITERS;
    }
    r = conc__futex_wait(&p->word, v, deadline, shared);
    /* acquire: pairs with the release CAS in conc_event_set */
    v = atomic_load_explicit(&p->word, memory_order_acquire);
  }
}

int conc_event_wait(conc_event *e, double timeout) {
  return event_wait_impl(e, conc__deadline(timeout));
}

int conc_event_wait_until(conc_event *e, double deadline) {
  return event_wait_impl(e, until(deadline));
}

/* ---- semaphore ---- */

#define SEM_MAX 0x7fffffffu

struct sem_priv {
  _Atomic uint32_t count;
  _Atomic uint32_t waiters;
  uint32_t max;   /* 0: unbounded; written only by init */
  uint32_t flags; /* CONC_SYNC_SHARED; written only by init */
};
CONC__STORAGE_FITS(struct sem_priv, conc_semaphore);

static inline struct sem_priv *sem_of(conc_semaphore *s) {
  return (struct sem_priv *)(void *)s;
}

int conc_semaphore_init(conc_semaphore *s, unsigned value, unsigned max,
                        unsigned flags) {
  if (!s || bad_flags(flags) || value > SEM_MAX || (max && value > max))
    return CONC_EINVAL;
  memset(s, 0, sizeof *s);
  struct sem_priv *p = sem_of(s);
  p->max = max;
  p->flags = flags;
  /* relaxed: publishing the object is the caller's job */
  atomic_store_explicit(&p->count, value, memory_order_relaxed);
  atomic_store_explicit(&p->waiters, 0, memory_order_relaxed);
  return 0;
}

int conc_semaphore_destroy(conc_semaphore *s) { return s ? 0 : CONC_EINVAL; }

static bool sem_take(struct sem_priv *p) {
  /* relaxed: the CAS below carries the ordering */
  uint32_t v = atomic_load_explicit(&p->count, memory_order_relaxed);
  while (v > 0) {
    /* acquire: pairs with the seq_cst (release) CAS in
     * conc_semaphore_release */
    if (atomic_compare_exchange_weak_explicit(&p->count, &v, v - 1,
                                              memory_order_acquire,
                                              memory_order_relaxed))
      return true;
  }
  return false;
}

static int sem_acquire_impl(conc_semaphore *s, double deadline) {
  if (!s)
    return CONC_EINVAL;
  struct sem_priv *p = sem_of(s);
  if (sem_take(p))
    return 0;
  bool shared = (p->flags & CONC_SYNC_SHARED) != 0;
  /* seq_cst: Dekker with conc_semaphore_release (count ourselves in, then
   * read count; release adds to count, then reads waiters) */
  atomic_fetch_add_explicit(&p->waiters, 1, memory_order_seq_cst);
  int r = 0;
  for (;;) {
    if (atomic_load_explicit(&p->count, memory_order_seq_cst) > 0 &&
        sem_take(p)) {
      r = 0;
      break;
    }
    if (r == CONC_ETIMEDOUT)
      break;
    r = conc__futex_wait(&p->count, 0, deadline, shared);
    if (r == CONC_EAGAIN)
      r = 0;
  }
  /* relaxed: only a hint for release's wake-up syscall */
  atomic_fetch_sub_explicit(&p->waiters, 1, memory_order_relaxed);
  return r;
}

int conc_semaphore_acquire(conc_semaphore *s, double timeout) {
  return sem_acquire_impl(s, conc__deadline(timeout));
}

int conc_semaphore_acquire_until(conc_semaphore *s, double deadline) {
  return sem_acquire_impl(s, until(deadline));
}

int conc_semaphore_try_acquire(conc_semaphore *s) {
  if (!s)
    return CONC_EINVAL;
  return sem_take(sem_of(s)) ? 0 : CONC_EAGAIN;
}

int conc_semaphore_release(conc_semaphore *s, unsigned n) {
  if (!s || n == 0)
    return CONC_EINVAL;
  struct sem_priv *p = sem_of(s);
  uint32_t limit = (p->max && p->max < SEM_MAX) ? p->max : SEM_MAX;
  /* relaxed: the CAS below carries the ordering */
  uint32_t v = atomic_load_explicit(&p->count, memory_order_relaxed);
  do {
    if (n > limit || v > limit - n)
      return CONC_EOVERFLOW;
    /* seq_cst: release half pairs with the acquire CAS in sem_take; the
     * rest is the Dekker handshake with sem_acquire_impl */
  } while (!atomic_compare_exchange_weak_explicit(
      &p->count, &v, v + n, memory_order_seq_cst, memory_order_relaxed));
  if (atomic_load_explicit(&p->waiters, memory_order_seq_cst) > 0)
    conc__futex_wake(&p->count, n > INT_MAX ? INT_MAX : (int)n,
                     (p->flags & CONC_SYNC_SHARED) != 0);
  return 0;
}

unsigned conc_semaphore_value(const conc_semaphore *s) {
  if (!s)
    return 0;
  const struct sem_priv *p = (const struct sem_priv *)(const void *)s;
  /* relaxed: a snapshot, documented as such */
  return atomic_load_explicit(&p->count, memory_order_relaxed);
}

/* ---- barrier ---- */

#define BR_COUNT 0x0fffffffu
#define BR_STATE 0x30000000u
#define BR_FILLING 0x00000000u
#define BR_DRAINING 0x10000000u
#define BR_RESETTING 0x20000000u
#define BR_BROKEN 0x30000000u
#define BR_ENTER_WAITERS 0x40000000u
#define BR_MAX_PARTIES BR_COUNT

struct barrier_priv {
  _Atomic uint32_t word;
  uint32_t parties; /* written only by init */
  uint32_t flags;   /* CONC_SYNC_SHARED; written only by init */
  uint32_t reserved;
};
CONC__STORAGE_FITS(struct barrier_priv, conc_barrier);

static inline struct barrier_priv *barrier_of(conc_barrier *b) {
  return (struct barrier_priv *)(void *)b;
}

static inline const struct barrier_priv *
barrier_of_c(const conc_barrier *b) {
  return (const struct barrier_priv *)(const void *)b;
}

static inline bool barrier_shared(const struct barrier_priv *p) {
  return (p->flags & CONC_SYNC_SHARED) != 0;
}

static void barrier_wake(struct barrier_priv *p) {
  conc__futex_wake(&p->word, INT_MAX, barrier_shared(p));
}

/* A counted thread leaves; the last one out of a finished round opens the
 * barrier for the next. */
static void barrier_leave(struct barrier_priv *p) {
  /* relaxed: the CAS below carries the ordering */
  uint32_t v = atomic_load_explicit(&p->word, memory_order_relaxed);
  uint32_t nv;
  do {
    CONC_ASSERT((v & BR_COUNT) > 0);
    nv = v - 1;
    uint32_t st = v & BR_STATE;
    if ((nv & BR_COUNT) == 0 && (st == BR_DRAINING || st == BR_RESETTING))
      nv = BR_FILLING;
    /* acq_rel: part of the RMW chain described in the DESIGN comment;
     * the release half pairs with the acquire loads of the arrivals that
     * wait for FILLING */
  } while (!atomic_compare_exchange_weak_explicit(
      &p->word, &v, nv, memory_order_acq_rel, memory_order_relaxed));
  if (nv == BR_FILLING && (v & BR_ENTER_WAITERS))
    barrier_wake(p);
}

/* A wait timed out: break the barrier.  In a round (in_round) only a
 * FILLING barrier is broken: any other state already is the round's
 * outcome.  Before entering (!in_round) any state but FILLING is broken:
 * the caller waited for a previous round to leave and gave up.  Returns
 * the state seen when the barrier was broken, or the state that left it
 * alone. */
static uint32_t barrier_break_on_timeout(struct barrier_priv *p,
                                         bool in_round) {
  /* acquire: as the loads in barrier_wait_impl */
  uint32_t v = atomic_load_explicit(&p->word, memory_order_acquire);
  for (;;) {
    uint32_t st = v & BR_STATE;
    if (st == BR_BROKEN || (st == BR_FILLING) != in_round)
      return st;
    /* acq_rel: as barrier_leave */
    if (atomic_compare_exchange_weak_explicit(&p->word, &v, v | BR_BROKEN,
                                              memory_order_acq_rel,
                                              memory_order_acquire)) {
      barrier_wake(p);
      return st;
    }
  }
}

static int barrier_wait_impl(conc_barrier *b, double deadline,
                             unsigned *index) {
  if (!b)
    return CONC_EINVAL;
  struct barrier_priv *p = barrier_of(b);
  uint32_t parties = p->parties;
  if (parties == 0 || parties > BR_MAX_PARTIES)
    return CONC_EINVAL; /* never initialised */
  bool shared = barrier_shared(p);

  /* Enter: wait for FILLING, then count ourselves in. */
  /* acquire: pairs with the acq_rel CASes of barrier_leave / arrivals */
  uint32_t v = atomic_load_explicit(&p->word, memory_order_acquire);
  uint32_t idx;
  for (;;) {
    uint32_t st = v & BR_STATE;
    if (st == BR_BROKEN)
      return CONC_EBROKEN;
    if (st != BR_FILLING) {
      /* The previous round is still leaving. */
      if (!(v & BR_ENTER_WAITERS)) {
        if (!atomic_compare_exchange_weak_explicit(
                &p->word, &v, v | BR_ENTER_WAITERS, memory_order_acquire,
                memory_order_acquire))
          continue;
        v |= BR_ENTER_WAITERS;
      }
      int r = conc__futex_wait(&p->word, v, deadline, shared);
      if (r == CONC_ETIMEDOUT &&
          barrier_break_on_timeout(p, false) != BR_FILLING)
        return CONC_ETIMEDOUT;
      /* Woken, EINTR, or it opened as we gave up: look again (past the
       * deadline, a non-last arrival then times out inside the round). */
      v = atomic_load_explicit(&p->word, memory_order_acquire);
      continue;
    }
    uint32_t c = v & BR_COUNT;
    if (c + 1 == parties) {
      if (c == 0) { /* parties == 1: nothing to wait for */
        if (index)
          *index = 0;
        return 0;
      }
      /* Last arrival: release the round; the c waiters will leave. */
      uint32_t nv = (v & ~(BR_STATE | BR_ENTER_WAITERS)) | BR_DRAINING;
      /* acq_rel: acquire every arrival's CAS, release to every waiter */
      if (!atomic_compare_exchange_weak_explicit(
              &p->word, &v, nv, memory_order_acq_rel, memory_order_acquire))
        continue;
      barrier_wake(p);
      if (index)
        *index = c;
      return 0;
    }
    /* acq_rel: see the DESIGN comment */
    if (atomic_compare_exchange_weak_explicit(&p->word, &v, v + 1,
                                              memory_order_acq_rel,
                                              memory_order_acquire)) {
      idx = c;
      break;
    }
  }

  /* Counted in: wait for the round to end.  While we are counted the
   * barrier cannot return to FILLING, so any state but FILLING is our
   * round's outcome. */
  int ret;
  for (;;) {
    /* acquire: pairs with the last arrival's acq_rel CAS */
    v = atomic_load_explicit(&p->word, memory_order_acquire);
    uint32_t st = v & BR_STATE;
    if (st == BR_DRAINING) {
      ret = 0;
      break;
    }
    if (st != BR_FILLING) {
      ret = CONC_EBROKEN;
      break;
    }
    int r = conc__futex_wait(&p->word, v, deadline, shared);
    if (r == CONC_ETIMEDOUT) {
      uint32_t was = barrier_break_on_timeout(p, true);
      if (was == BR_FILLING) {
        ret = CONC_ETIMEDOUT;
        break;
      }
      /* The round ended (or broke) just before we could break it. */
      ret = was == BR_DRAINING ? 0 : CONC_EBROKEN;
      break;
    }
  }
  barrier_leave(p);
  if (index)
    *index = idx;
  return ret;
}

int conc_barrier_init(conc_barrier *b, unsigned parties, unsigned flags) {
  if (!b || bad_flags(flags) || parties == 0 || parties > BR_MAX_PARTIES)
    return CONC_EINVAL;
  memset(b, 0, sizeof *b);
  struct barrier_priv *p = barrier_of(b);
  p->parties = parties;
  p->flags = flags;
  /* relaxed: publishing the object is the caller's job */
  atomic_store_explicit(&p->word, BR_FILLING, memory_order_relaxed);
  return 0;
}

int conc_barrier_destroy(conc_barrier *b) { return b ? 0 : CONC_EINVAL; }

int conc_barrier_wait(conc_barrier *b, double timeout, unsigned *index) {
  return barrier_wait_impl(b, conc__deadline(timeout), index);
}

int conc_barrier_wait_until(conc_barrier *b, double deadline,
                            unsigned *index) {
  return barrier_wait_impl(b, until(deadline), index);
}

int conc_barrier_abort(conc_barrier *b) {
  if (!b)
    return CONC_EINVAL;
  struct barrier_priv *p = barrier_of(b);
  /* acq_rel: as barrier_leave */
  atomic_fetch_or_explicit(&p->word, BR_BROKEN, memory_order_acq_rel);
  barrier_wake(p);
  return 0;
}

int conc_barrier_reset(conc_barrier *b) {
  if (!b)
    return CONC_EINVAL;
  struct barrier_priv *p = barrier_of(b);
  /* relaxed: the CAS below carries the ordering */
  uint32_t v = atomic_load_explicit(&p->word, memory_order_relaxed);
  uint32_t nv;
  do {
    uint32_t st = v & BR_STATE;
    if ((v & BR_COUNT) == 0)
      nv = BR_FILLING;
    else if (st == BR_FILLING || st == BR_BROKEN)
      nv = (v & ~BR_STATE) | BR_RESETTING;
    else
      nv = v; /* DRAINING/RESETTING end in FILLING when they empty */
    /* acq_rel: as barrier_leave */
  } while (!atomic_compare_exchange_weak_explicit(
      &p->word, &v, nv, memory_order_acq_rel, memory_order_relaxed));
  if (nv != v)
    barrier_wake(p);
  return 0;
}

unsigned conc_barrier_parties(const conc_barrier *b) {
  return b ? barrier_of_c(b)->parties : 0;
}

unsigned conc_barrier_n_waiting(const conc_barrier *b) {
  if (!b)
    return 0;
  /* relaxed: a snapshot */
  uint32_t v =
      atomic_load_explicit(&barrier_of_c(b)->word, memory_order_relaxed);
  return (v & BR_STATE) == BR_FILLING ? (v & BR_COUNT) : 0;
}

bool conc_barrier_broken(const conc_barrier *b) {
  if (!b)
    return false;
  /* relaxed: a snapshot */
  uint32_t v =
      atomic_load_explicit(&barrier_of_c(b)->word, memory_order_relaxed);
  return (v & BR_STATE) == BR_BROKEN;
}
