/* test-sync.c - locks, conditions, events, semaphores, barriers.
 *
 * Ordering between threads uses events, latches, barriers and joins; where a
 * test must know that a thread is asleep inside a wait it polls the object's
 * documented word layout (docs/internals/sync.md) or the thread's state in
 * /proc, yielding, never sleeping.  Timeout tests only check that at least
 * the timeout elapsed (upper bounds are generous).  Fork tests fork the
 * single-threaded test process, or are marked #ifndef CONC_TEST_TSAN.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers ---- */

static double since(double t0) { return conc_now() - t0; }

static void *shm_alloc(size_t n) {
  void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                 -1, 0);
  ck_assert_ptr_ne(p, MAP_FAILED);
  return p;
}

static int child_status(pid_t pid) {
  int st = 0;
  ck_assert_int_eq(waitpid(pid, &st, 0), pid);
  return st;
}

/* In a forked child: no Check calls, just an exit code naming the line. */
#define ASSERT_CHILD_OK(pid)                                                  \
  do {                                                                        \
    int st_ = child_status(pid);                                              \
    ck_assert_msg(WIFEXITED(st_) && WEXITSTATUS(st_) == 0,                    \
                  "child failed (status %#x)", st_);                          \
  } while (0)

static void start(conc_thread *t, conc_fn fn, void *arg) {
  ck_assert_int_eq(conc_thread_start(t, fn, arg, NULL), 0);
}

static void *join(conc_thread *t) {
  void *r = NULL;
  ck_assert_int_eq(conc_thread_join(t, -1, &r), 0);
  return r;
}

static intptr_t join_int(conc_thread *t) { return (intptr_t)join(t); }

/* The first 32-bit word of a sync object (see docs/internals/sync.md). */
static uint32_t word0(const void *obj) {
  return atomic_load((_Atomic uint32_t *)(uintptr_t)obj);
}

/* Wait until thread tid sleeps in the kernel (state S).  False if the
 * thread is gone. */
static bool wait_sleeping(int tid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
  for (;;) {
    FILE *f = fopen(path, "r");
    if (!f)
      return false;
    char buf[512];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *rp = strrchr(buf, ')');
    if (!rp)
      return false;
    if (rp[2] == 'S')
      return true;
    if (rp[2] == 'Z' || rp[2] == 'X')
      return false;
    sched_yield();
  }
}

static int wait_native_id(conc_thread *t) {
  int tid;
  while ((tid = conc_thread_native_id(t)) == 0)
    sched_yield();
  return tid;
}

/* ---- lock ---- */

START_TEST(lock_basic) {
  conc_lock l;
  memset(&l, 0, sizeof l); /* zero-filled: a valid private lock */
  ck_assert(!conc_lock_locked(&l));
  ck_assert_int_eq(conc_lock_try_acquire(&l), 0);
  ck_assert(conc_lock_locked(&l));
  ck_assert_int_eq(conc_lock_try_acquire(&l), CONC_EDEADLK);
  ck_assert_int_eq(conc_lock_acquire(&l, -1), CONC_EDEADLK);
  ck_assert_int_eq(conc_lock_acquire_until(&l, conc_now() + 1), CONC_EDEADLK);
  ck_assert_int_eq(conc_lock_destroy(&l), CONC_EBUSY);
  ck_assert_int_eq(conc_lock_release(&l), 0);
  ck_assert(!conc_lock_locked(&l));
  ck_assert_int_eq(conc_lock_release(&l), CONC_EPERM);
  ck_assert_int_eq(conc_lock_acquire(&l, 0), 0);
  ck_assert_int_eq(conc_lock_release(&l), 0);
  ck_assert_int_eq(conc_lock_acquire_until(&l, conc_now() - 1), 0);
  ck_assert_int_eq(conc_lock_release(&l), 0);
  ck_assert_int_eq(conc_lock_acquire(&l, NAN), 0);
  ck_assert_int_eq(conc_lock_release(&l), 0);
  ck_assert_int_eq(conc_lock_destroy(&l), 0);

  ck_assert_int_eq(conc_lock_init(&l, 0x80), CONC_EINVAL);
  ck_assert_int_eq(conc_lock_init(NULL, 0), CONC_EINVAL);
  ck_assert_int_eq(conc_lock_acquire(NULL, 0), CONC_EINVAL);
  ck_assert_int_eq(conc_lock_acquire_until(NULL, 0), CONC_EINVAL);
  ck_assert_int_eq(conc_lock_try_acquire(NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_lock_release(NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_lock_destroy(NULL), CONC_EINVAL);
  for (unsigned f = 0; f <= CONC_SYNC_SHARED; f++) {
    ck_assert_int_eq(conc_lock_init(&l, f), 0);
    ck_assert_int_eq(conc_lock_acquire(&l, 1), 0);
    ck_assert_int_eq(conc_lock_release(&l), 0);
    ck_assert_int_eq(conc_lock_destroy(&l), 0);
  }
}
END_TEST

struct holder {
  conc_lock *lock;
  conc_rlock *rlock;
  conc_event held, go;
};

static void *hold_lock(void *a) {
  struct holder *h = a;
  int r = h->lock ? conc_lock_acquire(h->lock, -1)
                  : conc_rlock_acquire(h->rlock, -1);
  conc_event_set(&h->held);
  conc_event_wait(&h->go, -1);
  int r2 = h->lock ? conc_lock_release(h->lock) : conc_rlock_release(h->rlock);
  return (void *)(intptr_t)(r ? r : r2);
}

START_TEST(lock_contended_timeout) {
  conc_lock l;
  ck_assert_int_eq(conc_lock_init(&l, 0), 0);
  struct holder h = {.lock = &l};
  conc_event_init(&h.held, 0);
  conc_event_init(&h.go, 0);
  conc_thread t = {0};
  start(&t, hold_lock, &h);
  ck_assert_int_eq(conc_event_wait(&h.held, -1), 0);

  ck_assert(conc_lock_locked(&l));
  ck_assert_int_eq(conc_lock_try_acquire(&l), CONC_EAGAIN);
  double t0 = conc_now();
  ck_assert_int_eq(conc_lock_acquire(&l, 0.1), CONC_ETIMEDOUT);
  ck_assert(since(t0) >= 0.1 && since(t0) < 10);
  t0 = conc_now();
  ck_assert_int_eq(conc_lock_acquire_until(&l, t0 + 0.05), CONC_ETIMEDOUT);
  ck_assert(since(t0) >= 0.05);
  ck_assert_int_eq(conc_lock_acquire(&l, 0), CONC_ETIMEDOUT);
  ck_assert_int_eq(conc_lock_release(&l), CONC_EPERM);
  ck_assert_int_eq(conc_lock_destroy(&l), CONC_EBUSY);

  conc_event_set(&h.go);
  ck_assert_int_eq(conc_lock_acquire(&l, -1), 0); /* sleeps until released */
  ck_assert_int_eq(join_int(&t), 0);
  ck_assert_int_eq(conc_lock_release(&l), 0);
  ck_assert_int_eq(conc_lock_destroy(&l), 0);
}
END_TEST

#define STRESS_THREADS 4
#define STRESS_ITERS 100000

struct stress {
  conc_lock lock;
  conc_barrier start;
  long counter;
};

static void *stress_fn(void *a) {
  struct stress *s = a;
  conc_barrier_wait(&s->start, -1, NULL);
  for (int i = 0; i < STRESS_ITERS; i++) {
    if (i % 16 == 0) {
      int r;
      while ((r = conc_lock_try_acquire(&s->lock)) == CONC_EAGAIN)
        sched_yield();
      if (r)
        return (void *)(intptr_t)r;
    } else if (i % 16 == 1) {
      int r = conc_lock_acquire(&s->lock, 30);
      if (r)
        return (void *)(intptr_t)r;
    } else {
      int r = conc_lock_acquire(&s->lock, -1);
      if (r)
        return (void *)(intptr_t)r;
    }
    s->counter++;
    conc_lock_release(&s->lock);
  }
  return NULL;
}

/* Private and shared (non-private futexes, liveness slices) locks. */
START_TEST(lock_stress) {
  for (unsigned flags = 0; flags <= CONC_SYNC_SHARED; flags++) {
    struct stress s = {0};
    ck_assert_int_eq(conc_lock_init(&s.lock, flags), 0);
    conc_barrier_init(&s.start, STRESS_THREADS, 0);
    conc_thread t[STRESS_THREADS];
    memset(t, 0, sizeof t);
    for (int i = 0; i < STRESS_THREADS; i++)
      start(&t[i], stress_fn, &s);
    for (int i = 0; i < STRESS_THREADS; i++)
      ck_assert_int_eq(join_int(&t[i]), 0);
    ck_assert_int_eq(s.counter, (long)STRESS_THREADS * STRESS_ITERS);
    ck_assert(!conc_lock_locked(&s.lock));
  }
}
END_TEST

/* ---- recursive lock ---- */

START_TEST(rlock_basic) {
  conc_rlock l;
  ck_assert_int_eq(conc_rlock_init(&l, 0x40), CONC_EINVAL);
  ck_assert_int_eq(conc_rlock_init(&l, 0), 0);
  ck_assert_int_eq(conc_rlock_release(&l), CONC_EPERM);
  ck_assert_int_eq(conc_rlock_acquire(&l, -1), 0);
  ck_assert_int_eq(conc_rlock_acquire_until(&l, conc_now() + 1), 0);
  ck_assert_int_eq(conc_rlock_try_acquire(&l), 0);
  ck_assert_int_eq(conc_rlock_destroy(&l), CONC_EBUSY);
  ck_assert_int_eq(conc_rlock_release(&l), 0);
  ck_assert_int_eq(conc_rlock_release(&l), 0);
  ck_assert_int_eq(conc_rlock_release(&l), 0);
  ck_assert_int_eq(conc_rlock_release(&l), CONC_EPERM);

  /* Level overflow: set the level count (word 2, see sync.md) near the
   * limit instead of acquiring 2^31 times. */
  ck_assert_int_eq(conc_rlock_acquire(&l, -1), 0);
  uint32_t lv = 0x7fffffffu;
  memcpy(l.opaque_.bytes + 8, &lv, sizeof lv);
  ck_assert_int_eq(conc_rlock_acquire(&l, -1), CONC_EOVERFLOW);
  ck_assert_int_eq(conc_rlock_try_acquire(&l), CONC_EOVERFLOW);
  lv = 1;
  memcpy(l.opaque_.bytes + 8, &lv, sizeof lv);
  ck_assert_int_eq(conc_rlock_release(&l), 0);
  ck_assert_int_eq(conc_rlock_release(&l), CONC_EPERM);

  /* Held by another thread. */
  struct holder h = {.rlock = &l};
  conc_event_init(&h.held, 0);
  conc_event_init(&h.go, 0);
  conc_thread t = {0};
  start(&t, hold_lock, &h);
  ck_assert_int_eq(conc_event_wait(&h.held, -1), 0);
  ck_assert_int_eq(conc_rlock_try_acquire(&l), CONC_EAGAIN);
  double t0 = conc_now();
  ck_assert_int_eq(conc_rlock_acquire(&l, 0.05), CONC_ETIMEDOUT);
  ck_assert(since(t0) >= 0.05);
  ck_assert_int_eq(conc_rlock_acquire_until(&l, conc_now() + 0.02),
                   CONC_ETIMEDOUT);
  ck_assert_int_eq(conc_rlock_release(&l), CONC_EPERM);
  conc_event_set(&h.go);
  ck_assert_int_eq(conc_rlock_acquire(&l, -1), 0);
  ck_assert_int_eq(join_int(&t), 0);
  ck_assert_int_eq(conc_rlock_release(&l), 0);
  ck_assert_int_eq(conc_rlock_destroy(&l), 0);
  ck_assert_int_eq(conc_rlock_acquire(NULL, 0), CONC_EINVAL);
  ck_assert_int_eq(conc_rlock_destroy(NULL), CONC_EINVAL);
}
END_TEST

/* ---- shared lock, dead owner ---- */

struct shm_lock {
  conc_lock lock;
  conc_rlock rlock;
  conc_cond cond;
  conc_event held, never;
};

static struct shm_lock *shm_lock_new(void) {
  struct shm_lock *s = shm_alloc(sizeof *s);
  ck_assert_int_eq(conc_lock_init(&s->lock, CONC_SYNC_SHARED), 0);
  ck_assert_int_eq(conc_rlock_init(&s->rlock, CONC_SYNC_SHARED), 0);
  ck_assert_int_eq(conc_cond_init(&s->cond, CONC_SYNC_SHARED), 0);
  ck_assert_int_eq(conc_event_init(&s->held, CONC_SYNC_SHARED), 0);
  ck_assert_int_eq(conc_event_init(&s->never, CONC_SYNC_SHARED), 0);
  return s;
}

START_TEST(lock_shared_owner_exits) {
  struct shm_lock *s = shm_lock_new();
  /* The parent used the lock before forking: the child must get its own
   * tid, not the parent's cached one. */
  ck_assert_int_eq(conc_lock_acquire(&s->lock, -1), 0);
  ck_assert_int_eq(conc_lock_release(&s->lock), 0);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    CHILD_CHECK(conc_lock_acquire(&s->lock, -1) == 0);
    CHILD_CHECK(conc_event_set(&s->held) == 0);
    _exit(0); /* dies holding the lock */
  }
  ck_assert_int_eq(conc_event_wait(&s->held, 30), 0);
  /* The child is a zombie (not reaped yet) or gone: either way dead. */
  double t0 = conc_now();
  ck_assert_int_eq(conc_lock_acquire(&s->lock, 30), CONC_EOWNERDEAD);
  ck_assert(since(t0) < 10);
  ck_assert(conc_lock_locked(&s->lock));
  ck_assert_int_eq(conc_lock_try_acquire(&s->lock), CONC_EDEADLK);
  ck_assert_int_eq(conc_lock_release(&s->lock), 0);
  ASSERT_CHILD_OK(pid);
  ck_assert_int_eq(conc_lock_acquire(&s->lock, 0), 0);
  ck_assert_int_eq(conc_lock_release(&s->lock), 0);
  munmap(s, sizeof *s);
}
END_TEST

START_TEST(lock_shared_owner_killed) {
  struct shm_lock *s = shm_lock_new();
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    CHILD_CHECK(conc_lock_acquire(&s->lock, -1) == 0);
    CHILD_CHECK(conc_rlock_acquire(&s->rlock, -1) == 0);
    CHILD_CHECK(conc_rlock_acquire(&s->rlock, -1) == 0);
    CHILD_CHECK(conc_event_set(&s->held) == 0);
    conc_event_wait(&s->never, -1);
    _exit(1);
  }
  ck_assert_int_eq(conc_event_wait(&s->held, 30), 0);
  /* Alive owner: nothing to take over. */
  ck_assert_int_eq(conc_lock_try_acquire(&s->lock), CONC_EAGAIN);
  ck_assert_int_eq(conc_rlock_try_acquire(&s->rlock), CONC_EAGAIN);
  ck_assert_int_eq(conc_lock_acquire(&s->lock, 0.1), CONC_ETIMEDOUT);
  ck_assert_int_eq(conc_lock_release(&s->lock), CONC_EPERM);
  ck_assert_int_eq(kill(pid, SIGKILL), 0);
  int st = child_status(pid);
  ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  ck_assert_int_eq(conc_lock_try_acquire(&s->lock), CONC_EOWNERDEAD);
  ck_assert_int_eq(conc_lock_release(&s->lock), 0);
  ck_assert_int_eq(conc_rlock_acquire(&s->rlock, 30), CONC_EOWNERDEAD);
  /* One level, whatever the dead owner had. */
  ck_assert_int_eq(conc_rlock_release(&s->rlock), 0);
  ck_assert_int_eq(conc_rlock_release(&s->rlock), CONC_EPERM);
  munmap(s, sizeof *s);
}
END_TEST

START_TEST(cond_shared_owner_died) {
  struct shm_lock *s = shm_lock_new();
  ck_assert_int_eq(conc_lock_acquire(&s->lock, -1), 0);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    /* Gets the lock once the parent waits on the condition. */
    CHILD_CHECK(conc_lock_acquire(&s->lock, -1) == 0);
    CHILD_CHECK(conc_cond_notify(&s->cond, 1) == 0);
    _exit(0); /* dies holding the lock */
  }
  ck_assert_int_eq(conc_cond_wait(&s->cond, &s->lock, 30), CONC_EOWNERDEAD);
  ck_assert(conc_lock_locked(&s->lock));
  ck_assert_int_eq(conc_lock_release(&s->lock), 0);
  ASSERT_CHILD_OK(pid);
  munmap(s, sizeof *s);
}
END_TEST

/* ---- condition ---- */

#define PC_CAP 8
#define PC_PER_PRODUCER 20000
#define PC_PRODUCERS 2
#define PC_CONSUMERS 2

struct pc {
  conc_lock lock;
  conc_cond not_full, not_empty;
  long buf[PC_CAP];
  int head, len;
  long consumed, sum;
};

static void *producer(void *a) {
  struct pc *q = a;
  for (long i = 1; i <= PC_PER_PRODUCER; i++) {
    conc_lock_acquire(&q->lock, -1);
    while (q->len == PC_CAP)
      if (conc_cond_wait(&q->not_full, &q->lock, -1) != 0)
        return (void *)1;
    q->buf[(q->head + q->len) % PC_CAP] = i;
    q->len++;
    conc_cond_notify(&q->not_empty, 1);
    conc_lock_release(&q->lock);
  }
  return NULL;
}

static void *consumer(void *a) {
  struct pc *q = a;
  const long total = (long)PC_PER_PRODUCER * PC_PRODUCERS;
  for (;;) {
    conc_lock_acquire(&q->lock, -1);
    while (q->len == 0 && q->consumed < total)
      if (conc_cond_wait(&q->not_empty, &q->lock, -1) != 0)
        return (void *)1;
    if (q->len == 0) {
      conc_lock_release(&q->lock);
      return NULL;
    }
    q->sum += q->buf[q->head];
    q->head = (q->head + 1) % PC_CAP;
    q->len--;
    if (++q->consumed == total)
      conc_cond_notify_all(&q->not_empty);
    conc_cond_notify(&q->not_full, 1);
    conc_lock_release(&q->lock);
  }
}

START_TEST(cond_producer_consumer) {
  struct pc q = {0};
  conc_lock_init(&q.lock, 0);
  conc_cond_init(&q.not_full, 0);
  conc_cond_init(&q.not_empty, 0);
  conc_thread p[PC_PRODUCERS], c[PC_CONSUMERS];
  memset(p, 0, sizeof p);
  memset(c, 0, sizeof c);
  for (int i = 0; i < PC_CONSUMERS; i++)
    start(&c[i], consumer, &q);
  for (int i = 0; i < PC_PRODUCERS; i++)
    start(&p[i], producer, &q);
  for (int i = 0; i < PC_PRODUCERS; i++)
    ck_assert_int_eq(join_int(&p[i]), 0);
  for (int i = 0; i < PC_CONSUMERS; i++)
    ck_assert_int_eq(join_int(&c[i]), 0);
  long n = PC_PER_PRODUCER;
  ck_assert_int_eq(q.sum, PC_PRODUCERS * n * (n + 1) / 2);
  ck_assert_int_eq(conc_cond_destroy(&q.not_full), 0);
  ck_assert_int_eq(conc_cond_destroy(&q.not_empty), 0);
  ck_assert_int_eq(conc_lock_destroy(&q.lock), 0);
}
END_TEST

START_TEST(cond_timeout_and_errors) {
  conc_lock l;
  conc_cond c;
  conc_lock_init(&l, 0);
  ck_assert_int_eq(conc_cond_init(&c, 4), CONC_EINVAL);
  ck_assert_int_eq(conc_cond_init(&c, 0), 0);
  ck_assert_int_eq(conc_cond_wait(&c, &l, 0), CONC_EPERM);
  ck_assert_int_eq(conc_cond_wait_until(&c, &l, 0), CONC_EPERM);
  ck_assert_int_eq(conc_cond_notify(NULL, 1), CONC_EINVAL);
  ck_assert_int_eq(conc_cond_notify_all(NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_cond_wait(NULL, &l, 0), CONC_EINVAL);

  ck_assert_int_eq(conc_lock_acquire(&l, -1), 0);
  double t0 = conc_now();
  ck_assert_int_eq(conc_cond_wait(&c, &l, 0.1), CONC_ETIMEDOUT);
  ck_assert(since(t0) >= 0.1 && since(t0) < 10);
  ck_assert_int_eq(conc_lock_try_acquire(&l), CONC_EDEADLK); /* held again */
  t0 = conc_now();
  ck_assert_int_eq(conc_cond_wait_until(&c, &l, t0 + 0.05), CONC_ETIMEDOUT);
  ck_assert(since(t0) >= 0.05);
  ck_assert_int_eq(conc_cond_wait(&c, &l, 0), CONC_ETIMEDOUT);
  ck_assert_int_eq(conc_lock_try_acquire(&l), CONC_EDEADLK);
  ck_assert_int_eq(conc_cond_notify(&c, 0), 0);
  ck_assert_int_eq(conc_cond_notify(&c, 1), 0); /* nobody waits */
  ck_assert_int_eq(conc_lock_release(&l), 0);
  ck_assert_int_eq(conc_cond_destroy(&c), 0);
}
END_TEST

#define NW 4

struct tickets {
  conc_lock lock;
  conc_cond cond;
  int waiting, tickets, taken, go;
};

static void *ticket_taker(void *a) {
  struct tickets *k = a;
  conc_lock_acquire(&k->lock, -1);
  k->waiting++;
  while (k->tickets == 0 && !k->go)
    if (conc_cond_wait(&k->cond, &k->lock, -1) != 0)
      return (void *)1;
  if (k->tickets > 0)
    k->tickets--;
  k->taken++;
  k->waiting--;
  conc_lock_release(&k->lock);
  return NULL;
}

/* Wait until every taker sleeps in conc_cond_wait: a taker counts itself
 * under the lock and releases it only inside the wait. */
static void wait_waiting(struct tickets *k, int n) {
  for (;;) {
    conc_lock_acquire(&k->lock, -1);
    int w = k->waiting;
    conc_lock_release(&k->lock);
    if (w == n)
      return;
    sched_yield();
  }
}

START_TEST(cond_notify_n_and_all) {
  struct tickets k = {0};
  conc_lock_init(&k.lock, 0);
  conc_cond_init(&k.cond, 0);
  conc_thread t[NW];
  memset(t, 0, sizeof t);
  for (int i = 0; i < NW; i++)
    start(&t[i], ticket_taker, &k);
  wait_waiting(&k, NW);

  /* Two tickets, notify two: exactly two takers leave. */
  conc_lock_acquire(&k.lock, -1);
  k.tickets = 2;
  ck_assert_int_eq(conc_cond_notify(&k.cond, 2), 0);
  conc_lock_release(&k.lock);
  wait_waiting(&k, NW - 2);
  conc_lock_acquire(&k.lock, -1);
  ck_assert_int_eq(k.taken, 2);
  ck_assert_int_eq(k.tickets, 0);
  /* The rest: notify_all. */
  k.go = 1;
  ck_assert_int_eq(conc_cond_notify_all(&k.cond), 0);
  conc_lock_release(&k.lock);
  for (int i = 0; i < NW; i++)
    ck_assert_int_eq(join_int(&t[i]), 0);
  ck_assert_int_eq(k.taken, NW);
}
END_TEST

/* ---- event ---- */

START_TEST(event_basic) {
  conc_event e;
  memset(&e, 0, sizeof e); /* zero-filled: a valid clear private event */
  ck_assert(!conc_event_is_set(&e));
  ck_assert_int_eq(conc_event_wait(&e, 0), CONC_ETIMEDOUT);
  double t0 = conc_now();
  ck_assert_int_eq(conc_event_wait(&e, 0.1), CONC_ETIMEDOUT);
  ck_assert(since(t0) >= 0.1 && since(t0) < 10);
  t0 = conc_now();
  ck_assert_int_eq(conc_event_wait_until(&e, t0 + 0.05), CONC_ETIMEDOUT);
  ck_assert(since(t0) >= 0.05);
  ck_assert_int_eq(conc_event_set(&e), 0);
  ck_assert(conc_event_is_set(&e));
  ck_assert_int_eq(conc_event_set(&e), 0);
  ck_assert_int_eq(conc_event_wait(&e, -1), 0);
  ck_assert_int_eq(conc_event_wait_until(&e, conc_now() - 1), 0);
  ck_assert_int_eq(conc_event_clear(&e), 0);
  ck_assert(!conc_event_is_set(&e));
  ck_assert_int_eq(conc_event_wait(&e, 0), CONC_ETIMEDOUT);
  ck_assert_int_eq(conc_event_destroy(&e), 0);

  ck_assert_int_eq(conc_event_init(&e, 2), CONC_EINVAL);
  ck_assert_int_eq(conc_event_init(&e, CONC_SYNC_SHARED), 0);
  ck_assert_int_eq(conc_event_set(&e), 0);
  ck_assert_int_eq(conc_event_wait(&e, 1), 0);
  ck_assert_int_eq(conc_event_set(NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_event_clear(NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_event_wait(NULL, 0), CONC_EINVAL);
  ck_assert_int_eq(conc_event_destroy(NULL), CONC_EINVAL);
}
END_TEST

static void *event_waiter(void *a) {
  return (void *)(intptr_t)conc_event_wait(a, -1);
}

#define EV_WAITERS_BIT 2u /* see docs/internals/sync.md */

START_TEST(event_wakes_all_waiters) {
  conc_event e;
  conc_event_init(&e, 0);
  conc_thread t[NW];
  memset(t, 0, sizeof t);
  for (int i = 0; i < NW; i++)
    start(&t[i], event_waiter, &e);
  ck_assert_int_eq(conc_event_set(&e), 0);
  for (int i = 0; i < NW; i++)
    ck_assert_int_eq(join_int(&t[i]), 0);

  /* Set then cleared while a waiter sleeps: the waiter still returns 0
   * (it was set during the wait), as Python's Event.wait. */
  conc_event_clear(&e);
  start(&t[0], event_waiter, &e);
  while (!(word0(&e) & EV_WAITERS_BIT))
    sched_yield();
  conc_event_set(&e);
  conc_event_clear(&e);
  ck_assert_int_eq(join_int(&t[0]), 0);
  ck_assert(!conc_event_is_set(&e));
}
END_TEST

/* ---- semaphore ---- */

START_TEST(semaphore_basic) {
  conc_semaphore s;
  ck_assert_int_eq(conc_semaphore_init(&s, 3, 2, 0), CONC_EINVAL);
  ck_assert_int_eq(conc_semaphore_init(&s, 0x80000000u, 0, 0), CONC_EINVAL);
  ck_assert_int_eq(conc_semaphore_init(&s, 0, 0, 8), CONC_EINVAL);
  ck_assert_int_eq(conc_semaphore_init(&s, 2, 0, 0), 0);
  ck_assert_uint_eq(conc_semaphore_value(&s), 2);
  ck_assert_int_eq(conc_semaphore_try_acquire(&s), 0);
  ck_assert_int_eq(conc_semaphore_acquire(&s, 0), 0);
  ck_assert_uint_eq(conc_semaphore_value(&s), 0);
  ck_assert_int_eq(conc_semaphore_try_acquire(&s), CONC_EAGAIN);
  double t0 = conc_now();
  ck_assert_int_eq(conc_semaphore_acquire(&s, 0.1), CONC_ETIMEDOUT);
  ck_assert(since(t0) >= 0.1 && since(t0) < 10);
  t0 = conc_now();
  ck_assert_int_eq(conc_semaphore_acquire_until(&s, t0 + 0.05),
                   CONC_ETIMEDOUT);
  ck_assert(since(t0) >= 0.05);
  ck_assert_int_eq(conc_semaphore_release(&s, 0), CONC_EINVAL);
  ck_assert_int_eq(conc_semaphore_release(&s, 2), 0);
  ck_assert_uint_eq(conc_semaphore_value(&s), 2);
  ck_assert_int_eq(conc_semaphore_acquire_until(&s, conc_now() + 1), 0);
  ck_assert_int_eq(conc_semaphore_destroy(&s), 0);

  /* Unbounded: 2^31-1 is the ceiling. */
  ck_assert_int_eq(conc_semaphore_init(&s, 0x7fffffffu, 0, 0), 0);
  ck_assert_int_eq(conc_semaphore_release(&s, 1), CONC_EOVERFLOW);
  ck_assert_uint_eq(conc_semaphore_value(&s), 0x7fffffffu);
  ck_assert_int_eq(conc_semaphore_try_acquire(&s), 0);
  ck_assert_int_eq(conc_semaphore_release(&s, 1), 0);
  ck_assert_int_eq(conc_semaphore_acquire(NULL, 0), CONC_EINVAL);
  ck_assert_int_eq(conc_semaphore_release(NULL, 1), CONC_EINVAL);
}
END_TEST

START_TEST(semaphore_bounded) {
  conc_semaphore s;
  ck_assert_int_eq(conc_semaphore_init(&s, 1, 3, 0), 0);
  ck_assert_int_eq(conc_semaphore_release(&s, 2), 0);
  ck_assert_uint_eq(conc_semaphore_value(&s), 3);
  ck_assert_int_eq(conc_semaphore_release(&s, 1), CONC_EOVERFLOW);
  ck_assert_uint_eq(conc_semaphore_value(&s), 3);
  ck_assert_int_eq(conc_semaphore_acquire(&s, -1), 0);
  ck_assert_int_eq(conc_semaphore_release(&s, 2), CONC_EOVERFLOW);
  ck_assert_int_eq(conc_semaphore_release(&s, 5), CONC_EOVERFLOW);
  ck_assert_uint_eq(conc_semaphore_value(&s), 2);
  ck_assert_int_eq(conc_semaphore_release(&s, 1), 0);
  ck_assert_uint_eq(conc_semaphore_value(&s), 3);
  ck_assert_int_eq(conc_semaphore_destroy(&s), 0);
}
END_TEST

#define SEM_THREADS 8
#define SEM_ITERS 5000
#define SEM_SLOTS 3

struct gate {
  conc_semaphore sem;
  atomic_int inside, max_inside;
};

static void *gate_fn(void *a) {
  struct gate *g = a;
  for (int i = 0; i < SEM_ITERS; i++) {
    int r = (i & 1) ? conc_semaphore_acquire(&g->sem, -1)
                    : conc_semaphore_acquire_until(&g->sem, INFINITY);
    if (r)
      return (void *)(intptr_t)r;
    int in = atomic_fetch_add(&g->inside, 1) + 1;
    int m = atomic_load(&g->max_inside);
    while (in > m && !atomic_compare_exchange_weak(&g->max_inside, &m, in))
      ;
    atomic_fetch_sub(&g->inside, 1);
    r = conc_semaphore_release(&g->sem, 1);
    if (r)
      return (void *)(intptr_t)r;
  }
  return NULL;
}

static void *sem_waiter(void *a) {
  return (void *)(intptr_t)conc_semaphore_acquire(a, -1);
}

START_TEST(semaphore_threads) {
  struct gate g = {0};
  ck_assert_int_eq(conc_semaphore_init(&g.sem, SEM_SLOTS, SEM_SLOTS, 0), 0);
  conc_thread t[SEM_THREADS];
  memset(t, 0, sizeof t);
  for (int i = 0; i < SEM_THREADS; i++)
    start(&t[i], gate_fn, &g);
  for (int i = 0; i < SEM_THREADS; i++)
    ck_assert_int_eq(join_int(&t[i]), 0);
  ck_assert_int_le(atomic_load(&g.max_inside), SEM_SLOTS);
  ck_assert_int_ge(atomic_load(&g.max_inside), 1);
  ck_assert_uint_eq(conc_semaphore_value(&g.sem), SEM_SLOTS);

  /* release(n) lets n sleepers through. */
  conc_semaphore s;
  conc_semaphore_init(&s, 0, 0, 0);
  for (int i = 0; i < NW; i++)
    start(&t[i], sem_waiter, &s);
  ck_assert_int_eq(conc_semaphore_release(&s, NW), 0);
  for (int i = 0; i < NW; i++)
    ck_assert_int_eq(join_int(&t[i]), 0);
  ck_assert_uint_eq(conc_semaphore_value(&s), 0);
}
END_TEST

/* ---- barrier ---- */

#define BR_THREADS 4
#define BR_ROUNDS 2000

struct rounds {
  conc_barrier b;
  atomic_uint masks[BR_ROUNDS];
};

static void *rounds_fn(void *a) {
  struct rounds *r = a;
  for (int i = 0; i < BR_ROUNDS; i++) {
    unsigned idx = 99;
    int rc = (i & 1) ? conc_barrier_wait(&r->b, -1, &idx)
                     : conc_barrier_wait_until(&r->b, INFINITY, &idx);
    if (rc)
      return (void *)(intptr_t)rc;
    if (idx >= BR_THREADS)
      return (void *)(intptr_t)-1;
    atomic_fetch_or(&r->masks[i], 1u << idx);
  }
  return NULL;
}

START_TEST(barrier_many_rounds) {
  struct rounds *r = calloc(1, sizeof *r);
  ck_assert_ptr_nonnull(r);
  ck_assert_int_eq(conc_barrier_init(&r->b, BR_THREADS, 0), 0);
  ck_assert_uint_eq(conc_barrier_parties(&r->b), BR_THREADS);
  conc_thread t[BR_THREADS];
  memset(t, 0, sizeof t);
  for (int i = 0; i < BR_THREADS; i++)
    start(&t[i], rounds_fn, r);
  for (int i = 0; i < BR_THREADS; i++)
    ck_assert_int_eq(join_int(&t[i]), 0);
  for (int i = 0; i < BR_ROUNDS; i++)
    ck_assert_uint_eq(atomic_load(&r->masks[i]), (1u << BR_THREADS) - 1);
  ck_assert_uint_eq(conc_barrier_n_waiting(&r->b), 0);
  ck_assert(!conc_barrier_broken(&r->b));
  ck_assert_int_eq(conc_barrier_destroy(&r->b), 0);
  free(r);
}
END_TEST

/* More threads than parties: rounds form from whoever arrives, arrivals
 * often wait for the previous round to leave.  Every round hands out each
 * index exactly once.  Arrivals draw from a shared budget (a multiple of
 * parties), so no thread is left without partners at the end. */
#define BX_THREADS 6
#define BX_PARTIES 3
#define BX_WAITS 1000 /* per thread, on average */

struct rounds_x {
  conc_barrier b;
  atomic_long tickets;
  atomic_long idx_count[BX_PARTIES];
};

static void *rounds_x_fn(void *a) {
  struct rounds_x *r = a;
  while (atomic_fetch_add(&r->tickets, 1) < BX_THREADS * BX_WAITS) {
    unsigned idx = 99;
    int rc = conc_barrier_wait(&r->b, -1, &idx);
    if (rc)
      return (void *)(intptr_t)rc;
    if (idx >= BX_PARTIES)
      return (void *)(intptr_t)-1;
    atomic_fetch_add(&r->idx_count[idx], 1);
  }
  return NULL;
}

START_TEST(barrier_more_threads_than_parties) {
  struct rounds_x r;
  memset(&r, 0, sizeof r);
  ck_assert_int_eq(conc_barrier_init(&r.b, BX_PARTIES, 0), 0);
  conc_thread t[BX_THREADS];
  memset(t, 0, sizeof t);
  for (int i = 0; i < BX_THREADS; i++)
    start(&t[i], rounds_x_fn, &r);
  for (int i = 0; i < BX_THREADS; i++)
    ck_assert_int_eq(join_int(&t[i]), 0);
  for (int i = 0; i < BX_PARTIES; i++)
    ck_assert_int_eq(atomic_load(&r.idx_count[i]),
                     BX_THREADS * BX_WAITS / BX_PARTIES);
  ck_assert_uint_eq(conc_barrier_n_waiting(&r.b), 0);
  ck_assert(!conc_barrier_broken(&r.b));
}
END_TEST

struct bw {
  conc_barrier *b;
  double timeout;
  unsigned idx;
};

static void *barrier_waiter(void *a) {
  struct bw *w = a;
  return (void *)(intptr_t)conc_barrier_wait(w->b, w->timeout, &w->idx);
}

static void wait_n_waiting(conc_barrier *b, unsigned n) {
  while (conc_barrier_n_waiting(b) != n)
    sched_yield();
}

START_TEST(barrier_timeout_breaks) {
  conc_barrier b;
  ck_assert_int_eq(conc_barrier_init(&b, 3, 0), 0);
  struct bw w = {&b, -1, 0};
  conc_thread t = {0};
  start(&t, barrier_waiter, &w);
  wait_n_waiting(&b, 1);
  double t0 = conc_now();
  ck_assert_int_eq(conc_barrier_wait(&b, 0.1, NULL), CONC_ETIMEDOUT);
  ck_assert(since(t0) >= 0.1 && since(t0) < 10);
  ck_assert_int_eq(join_int(&t), CONC_EBROKEN);
  ck_assert(conc_barrier_broken(&b));
  ck_assert_int_eq(conc_barrier_wait(&b, -1, NULL), CONC_EBROKEN);
  ck_assert_int_eq(conc_barrier_wait_until(&b, INFINITY, NULL), CONC_EBROKEN);
  ck_assert_uint_eq(conc_barrier_n_waiting(&b), 0);

  ck_assert_int_eq(conc_barrier_reset(&b), 0);
  ck_assert(!conc_barrier_broken(&b));
  /* wait_until with a deadline, and a full round after the reset. */
  t0 = conc_now();
  struct bw w1 = {&b, -1, 99};
  start(&t, barrier_waiter, &w1);
  wait_n_waiting(&b, 1);
  ck_assert_int_eq(conc_barrier_wait_until(&b, t0 + 0.05, NULL),
                   CONC_ETIMEDOUT);
  ck_assert(since(t0) >= 0.05);
  ck_assert_int_eq(join_int(&t), CONC_EBROKEN);
  ck_assert_int_eq(conc_barrier_reset(&b), 0);

  conc_thread t2[2];
  memset(t2, 0, sizeof t2);
  struct bw ws[2] = {{&b, 30, 99}, {&b, 30, 99}};
  start(&t2[0], barrier_waiter, &ws[0]);
  start(&t2[1], barrier_waiter, &ws[1]);
  unsigned idx = 99;
  ck_assert_int_eq(conc_barrier_wait(&b, 30, &idx), 0);
  ck_assert_int_eq(join_int(&t2[0]), 0);
  ck_assert_int_eq(join_int(&t2[1]), 0);
  ck_assert_uint_eq((1u << idx) | (1u << ws[0].idx) | (1u << ws[1].idx), 7);
}
END_TEST

START_TEST(barrier_abort_reset) {
  conc_barrier b;
  ck_assert_int_eq(conc_barrier_init(&b, 0, 0), CONC_EINVAL);
  ck_assert_int_eq(conc_barrier_init(&b, 1u << 28, 0), CONC_EINVAL);
  ck_assert_int_eq(conc_barrier_init(&b, 2, 0x10), CONC_EINVAL);
  ck_assert_int_eq(conc_barrier_init(&b, 1, 0), 0);
  unsigned idx = 99;
  ck_assert_int_eq(conc_barrier_wait(&b, 0, &idx), 0);
  ck_assert_uint_eq(idx, 0);

  ck_assert_int_eq(conc_barrier_init(&b, 2, 0), 0);
  ck_assert_uint_eq(conc_barrier_parties(&b), 2);
  struct bw w = {&b, -1, 0};
  conc_thread t = {0};
  /* abort wakes a waiter with EBROKEN and keeps the barrier broken */
  start(&t, barrier_waiter, &w);
  wait_n_waiting(&b, 1);
  ck_assert_int_eq(conc_barrier_abort(&b), 0);
  ck_assert_int_eq(join_int(&t), CONC_EBROKEN);
  ck_assert(conc_barrier_broken(&b));
  ck_assert_int_eq(conc_barrier_wait(&b, 0, NULL), CONC_EBROKEN);
  ck_assert_int_eq(conc_barrier_reset(&b), 0);
  ck_assert(!conc_barrier_broken(&b));

  /* reset with a waiter: it gets EBROKEN, the barrier is usable after */
  start(&t, barrier_waiter, &w);
  wait_n_waiting(&b, 1);
  ck_assert_int_eq(conc_barrier_reset(&b), 0);
  ck_assert_int_eq(join_int(&t), CONC_EBROKEN);
  ck_assert(!conc_barrier_broken(&b));
  ck_assert_uint_eq(conc_barrier_n_waiting(&b), 0);
  start(&t, barrier_waiter, &w);
  ck_assert_int_eq(conc_barrier_wait(&b, -1, &idx), 0);
  ck_assert_int_eq(join_int(&t), 0);
  ck_assert_uint_eq(idx + w.idx, 1);
  ck_assert_int_eq(conc_barrier_destroy(&b), 0);

  ck_assert_int_eq(conc_barrier_wait(NULL, 0, NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_barrier_abort(NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_barrier_reset(NULL), CONC_EINVAL);
}
END_TEST

/* ---- shared objects across fork ---- */

#define FORK_ROUNDS 200

struct shm_all {
  conc_semaphore sem;
  conc_event to_child, to_parent;
  conc_barrier bar;
  conc_lock lock;
  conc_cond cond;
  int turn;
  long counter;
};

START_TEST(shared_objects_across_fork) {
  struct shm_all *s = shm_alloc(sizeof *s);
  ck_assert_int_eq(conc_semaphore_init(&s->sem, 0, 0, CONC_SYNC_SHARED), 0);
  ck_assert_int_eq(conc_event_init(&s->to_child, CONC_SYNC_SHARED), 0);
  ck_assert_int_eq(conc_event_init(&s->to_parent, CONC_SYNC_SHARED), 0);
  ck_assert_int_eq(conc_barrier_init(&s->bar, 2, CONC_SYNC_SHARED), 0);
  ck_assert_int_eq(conc_lock_init(&s->lock, CONC_SYNC_SHARED), 0);
  ck_assert_int_eq(conc_cond_init(&s->cond, CONC_SYNC_SHARED), 0);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    CHILD_CHECK(conc_semaphore_acquire(&s->sem, 30) == 0);
    CHILD_CHECK(conc_event_set(&s->to_parent) == 0);
    CHILD_CHECK(conc_event_wait(&s->to_child, 30) == 0);
    for (int i = 0; i < FORK_ROUNDS; i++) {
      CHILD_CHECK(conc_barrier_wait(&s->bar, 30, NULL) == 0);
      CHILD_CHECK(conc_lock_acquire(&s->lock, 30) == 0);
      while (s->turn != 1)
        CHILD_CHECK(conc_cond_wait(&s->cond, &s->lock, 30) == 0);
      s->counter++;
      s->turn = 0;
      CHILD_CHECK(conc_cond_notify_all(&s->cond) == 0);
      CHILD_CHECK(conc_lock_release(&s->lock) == 0);
    }
    CHILD_CHECK(conc_semaphore_release(&s->sem, 1) == 0);
    _exit(0);
  }
  ck_assert_int_eq(conc_semaphore_release(&s->sem, 1), 0);
  ck_assert_int_eq(conc_event_wait(&s->to_parent, 30), 0);
  ck_assert_int_eq(conc_event_set(&s->to_child), 0);
  for (int i = 0; i < FORK_ROUNDS; i++) {
    ck_assert_int_eq(conc_barrier_wait(&s->bar, 30, NULL), 0);
    ck_assert_int_eq(conc_lock_acquire(&s->lock, 30), 0);
    s->counter++;
    s->turn = 1;
    ck_assert_int_eq(conc_cond_notify(&s->cond, 1), 0);
    while (s->turn != 0)
      ck_assert_int_eq(conc_cond_wait(&s->cond, &s->lock, 30), 0);
    ck_assert_int_eq(conc_lock_release(&s->lock), 0);
  }
  ck_assert_int_eq(conc_semaphore_acquire(&s->sem, 30), 0);
  ASSERT_CHILD_OK(pid);
  ck_assert_int_eq(s->counter, 2 * FORK_ROUNDS);
  munmap(s, sizeof *s);
}
END_TEST

/* ---- EINTR: signals must not end waits ---- */

static atomic_int sig_count;
static void on_sigusr1(int sig) {
  (void)sig;
  atomic_fetch_add(&sig_count, 1);
}

enum { W_EVENT, W_LOCK, W_SEM, W_COND, W_BARRIER, W_JOIN, W_TIMED, W_N };

struct eintr {
  int kind;
  conc_event ev;
  conc_lock lock;
  conc_semaphore sem;
  conc_cond cond;
  conc_barrier bar;
  conc_thread inner;
  atomic_int released;
  double elapsed;
};

static void *inner_fn(void *a) {
  return (void *)(intptr_t)conc_event_wait(a, -1);
}

static void *eintr_waiter(void *a) {
  struct eintr *x = a;
  int r = -1;
  switch (x->kind) {
  case W_EVENT:
    r = conc_event_wait(&x->ev, -1);
    break;
  case W_LOCK:
    r = conc_lock_acquire(&x->lock, -1);
    if (r == 0)
      conc_lock_release(&x->lock);
    break;
  case W_SEM:
    r = conc_semaphore_acquire(&x->sem, -1);
    break;
  case W_COND:
    conc_lock_acquire(&x->lock, -1);
    r = conc_cond_wait(&x->cond, &x->lock, -1); /* one wait, no loop */
    conc_lock_release(&x->lock);
    break;
  case W_BARRIER:
    r = conc_barrier_wait(&x->bar, -1, NULL);
    break;
  case W_JOIN: {
    void *res = (void *)1;
    r = conc_thread_join(&x->inner, -1, &res);
    if (r == 0 && res != NULL)
      r = -4;
    break;
  }
  case W_TIMED: {
    double t0 = conc_now();
    r = conc_event_wait(&x->ev, 0.3);
    x->elapsed = conc_now() - t0;
    return (void *)(intptr_t)(r == CONC_ETIMEDOUT ? 0 : -2);
  }
  }
  if (r == 0 && !atomic_load(&x->released))
    return (void *)(intptr_t)-3; /* returned before it was released */
  return (void *)(intptr_t)r;
}

START_TEST(sync_eintr_robust) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigusr1;
  sa.sa_flags = 0; /* no SA_RESTART: the futex wait returns EINTR */
  sigemptyset(&sa.sa_mask);
  ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);

  for (int kind = 0; kind < W_N; kind++) {
    struct eintr x;
    memset(&x, 0, sizeof x);
    x.kind = kind;
    conc_event_init(&x.ev, 0);
    conc_lock_init(&x.lock, 0);
    conc_semaphore_init(&x.sem, 0, 0, 0);
    conc_cond_init(&x.cond, 0);
    conc_barrier_init(&x.bar, 2, 0);
    if (kind == W_LOCK)
      conc_lock_acquire(&x.lock, -1);
    if (kind == W_JOIN)
      start(&x.inner, inner_fn, &x.ev);
    conc_thread t = {0};
    start(&t, eintr_waiter, &x);
    int tid = wait_native_id(&t);
    for (int i = 0; i < 20 && conc_thread_is_alive(&t); i++) {
      if (!wait_sleeping(tid))
        break;
      int before = atomic_load(&sig_count);
      if (syscall(SYS_tgkill, getpid(), tid, SIGUSR1) != 0)
        break; /* the timed waiter just ended */
      while (atomic_load(&sig_count) == before && conc_thread_is_alive(&t))
        sched_yield();
    }
    if (kind != W_TIMED)
      ck_assert(conc_thread_is_alive(&t));
    atomic_store(&x.released, 1);
    switch (kind) {
    case W_EVENT:
    case W_JOIN:
      conc_event_set(&x.ev);
      break;
    case W_LOCK:
      conc_lock_release(&x.lock);
      break;
    case W_SEM:
      conc_semaphore_release(&x.sem, 1);
      break;
    case W_COND:
      conc_lock_acquire(&x.lock, -1);
      conc_cond_notify(&x.cond, 1);
      conc_lock_release(&x.lock);
      break;
    case W_BARRIER:
      ck_assert_int_eq(conc_barrier_wait(&x.bar, -1, NULL), 0);
      break;
    default:
      break;
    }
    ck_assert_msg(join_int(&t) == 0, "waiter kind %d failed", kind);
    if (kind == W_TIMED)
      ck_assert(x.elapsed >= 0.3 && x.elapsed < 10);
  }
  ck_assert_int_gt(atomic_load(&sig_count), 0);
  signal(SIGUSR1, SIG_DFL);
}
END_TEST

CONC_TEST_MAIN("sync", lock_basic, lock_contended_timeout, lock_stress,
               rlock_basic, lock_shared_owner_exits, lock_shared_owner_killed,
               cond_shared_owner_died, cond_producer_consumer,
               cond_timeout_and_errors, cond_notify_n_and_all, event_basic,
               event_wakes_all_waiters, semaphore_basic, semaphore_bounded,
               semaphore_threads, barrier_many_rounds,
               barrier_more_threads_than_parties, barrier_timeout_breaks,
               barrier_abort_reset, shared_objects_across_fork,
               sync_eintr_robust)
