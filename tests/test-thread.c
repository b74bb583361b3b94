/* test-thread.c - threads, timers, thread-local values.
 *
 * Ordering uses events, latches and joins, never sleeps.  Timeout tests
 * only check that at least the timeout elapsed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static double since(double t0) { return conc_now() - t0; }

/* ---- start, join, identity ---- */

struct ident {
  conc_event go;
  conc_thread *self;
  int tid;
  char kname[32];
};

static void *ident_fn(void *a) {
  struct ident *x = a;
  x->self = conc_thread_current();
  x->tid = conc_thread_get_native_id();
  pthread_getname_np(pthread_self(), x->kname, sizeof x->kname);
  conc_event_wait(&x->go, -1);
  return (void *)((char *)a + 1);
}

START_TEST(thread_start_join_identity) {
  conc_thread t;
  memset(&t, 0, sizeof t); /* "not started" */
  ck_assert_str_eq(conc_thread_name(&t), "");
  ck_assert_int_eq(conc_thread_native_id(&t), 0);
  ck_assert(!conc_thread_is_alive(&t));
  ck_assert_ptr_null(conc_thread_current()); /* main is not a conc thread */
  ck_assert_int_gt(conc_thread_get_native_id(), 0);
  ck_assert_int_eq(conc_thread_get_native_id(), (int)getpid());

  struct ident x = {0};
  conc_event_init(&x.go, 0);
  ck_assert_int_eq(conc_thread_start(&t, ident_fn, &x, NULL), 0);
  ck_assert(conc_thread_is_alive(&t));
  ck_assert_int_eq(strncmp(conc_thread_name(&t), "conc-thread-", 12), 0);
  /* running twice on one storage is refused */
  ck_assert_int_eq(conc_thread_start(&t, ident_fn, &x, NULL), CONC_EINVAL);
  conc_event_set(&x.go);
  void *res = NULL;
  ck_assert_int_eq(conc_thread_join(&t, -1, &res), 0);
  ck_assert_ptr_eq(res, (char *)&x + 1);
  ck_assert(!conc_thread_is_alive(&t));
  ck_assert_ptr_eq(x.self, &t);
  ck_assert_int_eq(conc_thread_native_id(&t), x.tid);
  ck_assert_int_ne(x.tid, conc_thread_get_native_id());
  ck_assert_str_eq(x.kname, conc_thread_name(&t)); /* < 16 bytes */
  /* joined: no second join; the storage may start again */
  ck_assert_int_eq(conc_thread_join(&t, -1, NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_thread_join_until(&t, INFINITY, NULL), CONC_EINVAL);
  const char *first = conc_thread_name(&t);
  char first_name[32];
  snprintf(first_name, sizeof first_name, "%s", first);
  ck_assert_int_eq(conc_thread_start(&t, ident_fn, &x, NULL), 0);
  ck_assert_int_eq(conc_thread_join_until(&t, INFINITY, NULL), 0);
  ck_assert_str_ne(conc_thread_name(&t), first_name); /* new N */
}
END_TEST

START_TEST(thread_invalid_arguments) {
  conc_thread t = {0};
  conc_thread_options o;
  conc_thread_options_init(&o);
  ck_assert_int_eq(conc_thread_start(NULL, ident_fn, NULL, NULL),
                   CONC_EINVAL);
  ck_assert_int_eq(conc_thread_start(&t, NULL, NULL, NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_thread_start_run(&t, NULL, NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_thread_start_run(NULL, NULL, NULL), CONC_EINVAL);
  o.size = 0; /* not initialised */
  ck_assert_int_eq(conc_thread_start(&t, ident_fn, NULL, &o), CONC_EINVAL);
  conc_thread_options_init(&o);
  o.stack_size = 1; /* below PTHREAD_STACK_MIN */
  ck_assert_int_eq(conc_thread_start(&t, ident_fn, NULL, &o), CONC_EINVAL);
  ck_assert(!conc_thread_is_alive(&t));
  /* never started: nothing to join */
  ck_assert_int_eq(conc_thread_join(&t, 0, NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_thread_join(NULL, 0, NULL), CONC_EINVAL);
  /* garbage storage is "not started" too */
  memset(&t, 0xa5, sizeof t);
  ck_assert_int_eq(conc_thread_join(&t, 0, NULL), CONC_EINVAL);
  ck_assert_str_eq(conc_thread_name(&t), "");
}
END_TEST

static void *return_arg(void *a) { return a; }

START_TEST(thread_start_failure) {
  /* A stack larger than the address space: the system refuses the
   * thread (glibc reports its failed mmap as EAGAIN) and nothing runs. */
  conc_thread t = {0};
  conc_thread_options o;
  conc_thread_options_init(&o);
  o.stack_size = (size_t)1 << 50;
  int r = conc_thread_start(&t, return_arg, NULL, &o);
  ck_assert_msg(r == CONC_EAGAIN || r == CONC_ENOMEM, "got %d", r);
  ck_assert(!conc_thread_is_alive(&t));
  ck_assert_int_eq(conc_thread_join(&t, 0, NULL), CONC_EINVAL);
  /* and the storage still works */
  ck_assert_int_eq(conc_thread_start(&t, return_arg, &o, NULL), 0);
  void *res = NULL;
  ck_assert_int_eq(conc_thread_join(&t, -1, &res), 0);
  ck_assert_ptr_eq(res, &o);
}
END_TEST

static void *kernel_name_fn(void *a) {
  char *out = a;
  pthread_getname_np(pthread_self(), out, 32);
  pthread_attr_t attr;
  size_t sz = 0;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    pthread_attr_getstacksize(&attr, &sz);
    pthread_attr_destroy(&attr);
  }
  return (void *)sz;
}

START_TEST(thread_options_name_stack) {
  conc_thread t = {0};
  conc_thread_options o;
  conc_thread_options_init(&o);
  ck_assert_uint_eq(o.size, sizeof o);
  ck_assert_ptr_null(o.name);
  ck_assert_uint_eq(o.stack_size, 0);
  ck_assert(!o.detached);
  o.name = "a-rather-long-thread-name-that-gets-cut";
  o.stack_size = 1u << 20;
  char kname[32] = {0};
  ck_assert_int_eq(conc_thread_start(&t, kernel_name_fn, kname, &o), 0);
  void *res = NULL;
  ck_assert_int_eq(conc_thread_join(&t, -1, &res), 0);
  ck_assert_str_eq(conc_thread_name(&t), "a-rather-long-thread-name-that-");
  ck_assert_str_eq(kname, "a-rather-long-t"); /* the kernel's 15 bytes */
  ck_assert_uint_ge((size_t)res, 1u << 20);

  /* An older caller's smaller struct: fields past its size are not read. */
  struct {
    conc_thread_options o;
    char guard[8];
  } old;
  memset(&old, 0xff, sizeof old);
  old.o.size = offsetof(conc_thread_options, name) + sizeof(const char *);
  old.o.name = "old-abi";
  ck_assert_int_eq(conc_thread_start(&t, kernel_name_fn, kname, &old.o), 0);
  /* detached (garbage true) was ignored: the thread is joinable */
  ck_assert_int_eq(conc_thread_join(&t, -1, NULL), 0);
  ck_assert_str_eq(conc_thread_name(&t), "old-abi");
  ck_assert_str_eq(kname, "old-abi");
}
END_TEST

/* ---- run override ---- */

struct counter_thread {
  int from, to;
  conc_thread base;
  long sum;
};

static void *counter_run(conc_thread *self) {
  struct counter_thread *c =
      CONC_CONTAINER_OF(self, struct counter_thread, base);
  for (int i = c->from; i <= c->to; i++)
    c->sum += i;
  return conc_thread_current() == self ? c : NULL;
}

START_TEST(thread_run_override) {
  struct counter_thread c = {.from = 1, .to = 100};
  memset(&c.base, 0, sizeof c.base);
  ck_assert_int_eq(conc_thread_start_run(&c.base, counter_run, NULL), 0);
  void *res = NULL;
  ck_assert_int_eq(conc_thread_join(&c.base, -1, &res), 0);
  ck_assert_ptr_eq(res, &c);
  ck_assert_int_eq(c.sum, 5050);
}
END_TEST

/* ---- join: timeout, self, detached ---- */

static void *wait_event_fn(void *a) {
  return (void *)(intptr_t)conc_event_wait(a, -1);
}

START_TEST(thread_join_timeout) {
  conc_event ev;
  conc_event_init(&ev, 0);
  conc_thread t = {0};
  ck_assert_int_eq(conc_thread_start(&t, wait_event_fn, &ev, NULL), 0);
  ck_assert_int_eq(conc_thread_join(&t, 0, NULL), CONC_ETIMEDOUT);
  double t0 = conc_now();
  ck_assert_int_eq(conc_thread_join(&t, 0.1, NULL), CONC_ETIMEDOUT);
  ck_assert(since(t0) >= 0.1 && since(t0) < 10);
  t0 = conc_now();
  ck_assert_int_eq(conc_thread_join_until(&t, t0 + 0.05, NULL),
                   CONC_ETIMEDOUT);
  ck_assert(since(t0) >= 0.05);
  ck_assert(conc_thread_is_alive(&t));
  conc_event_set(&ev);
  void *res = (void *)1;
  ck_assert_int_eq(conc_thread_join(&t, 30, &res), 0);
  ck_assert_ptr_null(res);
  ck_assert(!conc_thread_is_alive(&t));
}
END_TEST

static void *join_self_fn(void *a) {
  (void)a;
  intptr_t r1 = conc_thread_join(conc_thread_current(), -1, NULL);
  intptr_t r2 = conc_thread_join_until(conc_thread_current(), 0, NULL);
  return (void *)(intptr_t)(r1 == CONC_EDEADLK && r2 == CONC_EDEADLK);
}

START_TEST(thread_join_self_deadlk) {
  conc_thread t = {0};
  ck_assert_int_eq(conc_thread_start(&t, join_self_fn, NULL, NULL), 0);
  void *res = NULL;
  ck_assert_int_eq(conc_thread_join(&t, -1, &res), 0);
  ck_assert_ptr_eq(res, (void *)1);
}
END_TEST

struct det {
  conc_event go, done;
  int ran;
};

static void *detached_fn(void *a) {
  struct det *d = a;
  conc_event_wait(&d->go, -1);
  d->ran = 1;
  conc_event_set(&d->done);
  return NULL;
}

START_TEST(thread_detached) {
  static conc_thread t; /* outlives the detached thread */
  static struct det d;
  conc_event_init(&d.go, 0);
  conc_event_init(&d.done, 0);
  conc_thread_options o;
  conc_thread_options_init(&o);
  o.detached = true;
  o.name = "detached";
  ck_assert_int_eq(conc_thread_start(&t, detached_fn, &d, &o), 0);
  ck_assert(conc_thread_is_alive(&t));
  ck_assert_int_eq(conc_thread_join(&t, 0, NULL), CONC_EINVAL);
  ck_assert_str_eq(conc_thread_name(&t), "detached");
  conc_event_set(&d.go);
  ck_assert_int_eq(conc_event_wait(&d.done, -1), 0);
  ck_assert_int_eq(d.ran, 1);
  while (conc_thread_is_alive(&t))
    sched_yield();
  ck_assert_int_eq(conc_thread_join(&t, -1, NULL), CONC_EINVAL);
  /* a finished detached thread's storage may be started again */
  ck_assert_int_eq(conc_thread_start(&t, return_arg, &d, NULL), 0);
  void *res = NULL;
  ck_assert_int_eq(conc_thread_join(&t, -1, &res), 0);
  ck_assert_ptr_eq(res, &d);
}
END_TEST

/* ---- timer ---- */

static void *timer_fn(void *a) {
  conc_event_set(a);
  return NULL;
}

START_TEST(timer_fires) {
  conc_timer tm;
  memset(&tm, 0, sizeof tm);
  conc_event ev;
  conc_event_init(&ev, 0);
  double t0 = conc_now();
  ck_assert_int_eq(conc_timer_start(&tm, 0.05, timer_fn, &ev), 0);
  ck_assert_int_eq(conc_timer_start(&tm, 0.05, timer_fn, &ev), CONC_EINVAL);
  ck_assert_int_eq(conc_event_wait(&ev, 30), 0);
  ck_assert(since(t0) >= 0.05);
  bool fired = false;
  ck_assert_int_eq(conc_timer_join(&tm, -1, &fired), 0);
  ck_assert(fired);
  ck_assert_int_eq(conc_timer_cancel(&tm), CONC_EBUSY);
  /* a joined timer may start again; interval 0 fires at once */
  conc_event_clear(&ev);
  ck_assert_int_eq(conc_timer_start(&tm, 0, timer_fn, &ev), 0);
  ck_assert_int_eq(conc_timer_join(&tm, -1, NULL), 0);
  ck_assert(conc_event_is_set(&ev));
}
END_TEST

struct blocker {
  conc_event started, go;
};

static void *blocking_timer_fn(void *a) {
  struct blocker *b = a;
  conc_event_set(&b->started);
  conc_event_wait(&b->go, -1);
  return NULL;
}

START_TEST(timer_cancel) {
  conc_timer tm;
  memset(&tm, 0, sizeof tm);
  conc_event ev;
  conc_event_init(&ev, 0);
  ck_assert_int_eq(conc_timer_cancel(&tm), CONC_EINVAL); /* not started */
  ck_assert_int_eq(conc_timer_start(&tm, -1, timer_fn, &ev), CONC_EINVAL);
  ck_assert_int_eq(conc_timer_start(&tm, NAN, timer_fn, &ev), CONC_EINVAL);
  ck_assert_int_eq(conc_timer_start(&tm, 1, NULL, &ev), CONC_EINVAL);
  ck_assert_int_eq(conc_timer_start(NULL, 1, timer_fn, &ev), CONC_EINVAL);

  /* cancelled while waiting: fn never runs */
  ck_assert_int_eq(conc_timer_start(&tm, 3600, timer_fn, &ev), 0);
  ck_assert_int_eq(conc_timer_join(&tm, 0.05, NULL), CONC_ETIMEDOUT);
  ck_assert_int_eq(conc_timer_cancel(&tm), 0);
  ck_assert_int_eq(conc_timer_cancel(&tm), 0);
  bool fired = true;
  ck_assert_int_eq(conc_timer_join(&tm, 30, &fired), 0);
  ck_assert(!fired);
  ck_assert(!conc_event_is_set(&ev));
  ck_assert_int_eq(conc_timer_join(&tm, 0, NULL), CONC_EINVAL);

  /* fn already running: too late */
  struct blocker b;
  conc_event_init(&b.started, 0);
  conc_event_init(&b.go, 0);
  ck_assert_int_eq(conc_timer_start(&tm, 0, blocking_timer_fn, &b), 0);
  ck_assert_int_eq(conc_event_wait(&b.started, -1), 0);
  ck_assert_int_eq(conc_timer_cancel(&tm), CONC_EBUSY);
  conc_event_set(&b.go);
  ck_assert_int_eq(conc_timer_join(&tm, -1, &fired), 0);
  ck_assert(fired);
}
END_TEST

/* ---- thread-local values ---- */

static atomic_int dtor_runs;
static void count_dtor(void *v) {
  atomic_fetch_add(&dtor_runs, 1);
  *(int *)v = 42;
}

static void *local_fn(void *a) {
  conc_local *l = a;
  static int value[1];
  if (conc_local_get(l) != NULL)
    return (void *)1; /* another thread's value leaked in */
  if (conc_local_set(l, value) != 0 || conc_local_get(l) != value)
    return (void *)2;
  return value;
}

START_TEST(local_values_and_dtor) {
  conc_local l;
  atomic_store(&dtor_runs, 0);
  ck_assert_int_eq(conc_local_init(&l, count_dtor), 0);
  int mine = 7;
  ck_assert_ptr_null(conc_local_get(&l));
  ck_assert_int_eq(conc_local_set(&l, &mine), 0);
  ck_assert_ptr_eq(conc_local_get(&l), &mine);

  conc_thread t = {0};
  ck_assert_int_eq(conc_thread_start(&t, local_fn, &l, NULL), 0);
  void *res = NULL;
  ck_assert_int_eq(conc_thread_join(&t, -1, &res), 0);
  ck_assert_ptr_nonnull(res);
  ck_assert_ptr_ne(res, (void *)1);
  ck_assert_ptr_ne(res, (void *)2);
  /* the thread's value was destroyed when it exited, ours stays */
  ck_assert_int_eq(atomic_load(&dtor_runs), 1);
  ck_assert_int_eq(*(int *)res, 42);
  ck_assert_ptr_eq(conc_local_get(&l), &mine);
  ck_assert_int_eq(mine, 7);

  ck_assert_int_eq(conc_local_set(&l, NULL), 0);
  ck_assert_int_eq(conc_local_destroy(&l), 0);
  ck_assert_int_eq(conc_local_destroy(&l), CONC_EINVAL);
  ck_assert_ptr_null(conc_local_get(&l));
  ck_assert_int_eq(conc_local_set(&l, &mine), CONC_EINVAL);
  ck_assert_int_eq(conc_local_init(NULL, NULL), CONC_EINVAL);
  ck_assert_int_eq(atomic_load(&dtor_runs), 1);
}
END_TEST

#define MANY_KEYS 4096

START_TEST(local_keys_exhausted) {
  static conc_local ls[MANY_KEYS];
  int n = 0, r = 0;
  while (n < MANY_KEYS && (r = conc_local_init(&ls[n], NULL)) == 0)
    n++;
  ck_assert_int_eq(r, CONC_EAGAIN); /* PTHREAD_KEYS_MAX is 1024 */
  ck_assert_int_gt(n, 0);
  for (int i = 0; i < n; i++)
    ck_assert_int_eq(conc_local_destroy(&ls[i]), 0);
  ck_assert_int_eq(conc_local_init(&ls[0], NULL), 0);
  ck_assert_int_eq(conc_local_destroy(&ls[0]), 0);
}
END_TEST

/* conc_local_set's CONC_ENOMEM: glibc allocates a second-level block for
 * keys past the first 32 on a thread's first set.  In a forked child with
 * the heap exhausted under RLIMIT_AS, that allocation fails.  Sanitizer
 * runtimes need their large shadow mappings, so plain builds only. */
START_TEST(local_set_enomem) {
#if defined(CONC_TEST_ASAN) || defined(CONC_TEST_TSAN)
  return;
#else
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    static conc_local ls[40];
    for (int i = 0; i < 40; i++)
      if (conc_local_init(&ls[i], NULL) != 0)
        _exit(2);
    struct rlimit rl = {0, 0};
    getrlimit(RLIMIT_AS, &rl);
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (!f || fscanf(f, "%lu", &pages) != 1)
      _exit(3);
    fclose(f);
    rl.rlim_cur = (pages + 64) * (unsigned long)sysconf(_SC_PAGESIZE);
    if (setrlimit(RLIMIT_AS, &rl) != 0) {
      /* cannot arrange the condition here (seen with clang -O2 builds):
       * say so instead of failing */
      fprintf(stderr, "local_set_enomem: setrlimit failed, not checked\n");
      _exit(0);
    }
    /* Use up the heap (the blocks are never freed: the child exits). */
    for (size_t sz = 1 << 20; sz >= 16;)
      if (!malloc(sz))
        sz /= 2;
    int r = conc_local_set(&ls[39], &rl);
    _exit(r == CONC_ENOMEM ? 0 : 5);
  }
  int st = 0;
  ck_assert_int_eq(waitpid(pid, &st, 0), pid);
  ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x", st);
#endif
}
END_TEST

CONC_TEST_MAIN("thread", thread_start_join_identity, thread_invalid_arguments,
               thread_start_failure, thread_options_name_stack,
               thread_run_override, thread_join_timeout,
               thread_join_self_deadlk, thread_detached, timer_fires,
               timer_cancel, local_values_and_dtor, local_keys_exhausted,
               local_set_enomem)
