/* test-thread-pool.c - the thread pool executor: lifecycle, errors, the
 * races that matter, stress, fork. */
#include "harness.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static conc_executor *make_pool(unsigned n) {
  conc_thread_pool_options o;
  conc_thread_pool_options_init(&o);
  o.max_workers = n;
  conc_executor *ex = NULL;
  ck_assert_int_eq(conc_thread_pool_create(&o, &ex), 0);
  return ex;
}

static void *ident(void *a) { return a; }
static atomic_long counter;
static void *count(void *a) {
  atomic_fetch_add(&counter, 1);
  return a;
}

/* A gate that tasks wait on, to park workers deterministically. */
static conc_test_latch gate;
static conc_test_latch started;
static void *wait_gate(void *a) {
  conc_test_latch_count_down(&started);
  conc_test_latch_wait(&gate);
  return a;
}

/* Park one worker on the gate: returns the running task's future once it
 * has started (open with conc_test_latch_count_down(&gate)). */
static conc_future *block_one_worker(conc_executor *ex) {
  conc_test_latch_init(&gate, 1);
  conc_test_latch_init(&started, 1);
  conc_future *f;
  ck_assert_int_eq(conc_executor_submit(ex, wait_gate, NULL, &f), 0);
  conc_test_latch_wait(&started);
  return f;
}

START_TEST(pool_submit_and_result) {
  conc_executor *ex = make_pool(4);
  conc_future *fs[100];
  for (long i = 0; i < 100; i++)
    ck_assert_int_eq(conc_executor_submit(ex, ident, (void *)i, &fs[i]), 0);
  for (long i = 0; i < 100; i++) {
    void *r;
    ck_assert_int_eq(conc_future_result(fs[i], -1, &r), 0);
    ck_assert_ptr_eq(r, (void *)i);
    conc_future_release(fs[i]);
  }
  ck_assert_uint_eq(conc_executor_max_workers(ex), 4);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST

START_TEST(pool_options_and_defaults) {
  conc_executor *ex;
  ck_assert_int_eq(conc_thread_pool_create(NULL, &ex), 0);
  int c = conc_cpu_count();
  ck_assert_int_ge(c, 1);
  unsigned want = (unsigned)(c + 4 < 32 ? c + 4 : 32);
  ck_assert_uint_eq(conc_executor_max_workers(ex), want);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
  conc_thread_pool_options o;
  conc_thread_pool_options_init(&o);
  o.max_workers = 5000;
  ck_assert_int_eq(conc_thread_pool_create(&o, &ex), CONC_EINVAL);
  conc_thread_pool_options_init(&o);
  o.size = 3;
  ck_assert_int_eq(conc_thread_pool_create(&o, &ex), CONC_EINVAL);
  ck_assert_int_eq(conc_thread_pool_create(NULL, NULL), CONC_EINVAL);
  conc_test_fail_alloc_after(1);
  ck_assert_int_eq(conc_thread_pool_create(NULL, &ex), CONC_ENOMEM);
  conc_test_fail_alloc_after(2);
  ck_assert_int_eq(conc_thread_pool_create(NULL, &ex), CONC_ENOMEM);
  conc_test_fail_alloc_after(0);
  ck_assert_int_eq(conc_executor_destroy(NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_executor_shutdown(NULL, true, false), CONC_EINVAL);
  ck_assert_uint_eq(conc_executor_max_workers(NULL), 0);
}
END_TEST

START_TEST(pool_submit_invalid_and_after_shutdown) {
  conc_executor *ex = make_pool(2);
  conc_future *f = (conc_future *)1;
  ck_assert_int_eq(conc_executor_submit(NULL, ident, NULL, &f), CONC_EINVAL);
  ck_assert_ptr_null(f);
  ck_assert_int_eq(conc_executor_submit(ex, NULL, NULL, &f), CONC_EINVAL);
  conc_submit_options so;
  conc_submit_options_init(&so);
  so.size = 1;
  ck_assert_int_eq(conc_executor_submit_ex(ex, ident, NULL, &so, &f),
                   CONC_EINVAL);
  conc_submit_options_init(&so);
  so.priority = 1 << 20;
  ck_assert_int_eq(conc_executor_submit_ex(ex, ident, NULL, &so, &f),
                   CONC_EINVAL);
  ck_assert_int_eq(conc_executor_shutdown(ex, true, false), 0);
  ck_assert_int_eq(conc_executor_submit(ex, ident, NULL, &f), CONC_ESHUTDOWN);
  ck_assert_int_eq(conc_executor_submit(ex, ident, NULL, NULL),
                   CONC_ESHUTDOWN);
  ck_assert_int_eq(conc_executor_shutdown(ex, true, false), 0); /* again */
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST

START_TEST(pool_submit_nomem) {
  conc_executor *ex = make_pool(2);
  conc_future *f;
  ck_assert_int_eq(conc_executor_submit(ex, ident, NULL, &f), 0);
  conc_future_wait(f, -1);
  conc_future_release(f);
  conc_test_fail_alloc_after(1);
  ck_assert_int_eq(conc_executor_submit(ex, ident, NULL, &f), CONC_ENOMEM);
  conc_test_fail_alloc_after(0);
  ck_assert_ptr_null(f);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST

START_TEST(pool_fire_and_forget) {
  atomic_store(&counter, 0);
  conc_executor *ex = make_pool(3);
  for (int i = 0; i < 10000; i++)
    ck_assert_int_eq(conc_executor_submit(ex, count, NULL, NULL), 0);
  ck_assert_int_eq(conc_executor_destroy(ex), 0); /* waits for all */
  ck_assert_int_eq(atomic_load(&counter), 10000);
}
END_TEST

static void *failing(void *a) {
  conc_task_fail((int)(intptr_t)a, "task %d failed", (int)(intptr_t)a);
  return (void *)1;
}

START_TEST(pool_task_error) {
  conc_executor *ex = make_pool(2);
  conc_future *f;
  ck_assert_int_eq(conc_executor_submit(ex, failing, (void *)12, &f), 0);
  void *r = (void *)5;
  ck_assert_int_eq(conc_future_result(f, -1, &r), CONC_ETASK);
  ck_assert_ptr_null(r);
  int d;
  const char *m;
  ck_assert_int_eq(conc_future_error(f, &d, &m), CONC_ETASK);
  ck_assert_int_eq(d, 12);
  ck_assert_str_eq(m, "task 12 failed");
  ck_assert(!conc_future_cancelled(f));
  /* a hand-made setter refuses a task-bound future */
  ck_assert_int_eq(conc_future_set_result(f, NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_future_set_running(f), CONC_EINVAL);
  conc_future_release(f);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST

static int init_calls;
static int bad_init(void *arg) {
  (void)arg;
  conc_test_latch_wait(&gate); /* fail only once the task is queued */
  __atomic_fetch_add(&init_calls, 1, __ATOMIC_SEQ_CST);
  return 17;
}
static void quiet_log(conc_log_level l, const char *m, void *u) {
  (void)l;
  (void)m;
  (void)u;
}

START_TEST(pool_initializer_failure_breaks_pool) {
  conc_set_log_handler(quiet_log, NULL);
  conc_thread_pool_options o;
  conc_thread_pool_options_init(&o);
  o.max_workers = 1;
  o.initializer = bad_init;
  conc_executor *ex;
  conc_test_latch_init(&gate, 1);
  ck_assert_int_eq(conc_thread_pool_create(&o, &ex), 0);
  conc_future *f;
  ck_assert_int_eq(conc_executor_submit(ex, ident, NULL, &f), 0);
  conc_test_latch_count_down(&gate);
  ck_assert_int_eq(conc_future_result(f, -1, NULL), CONC_EBROKEN);
  int d;
  ck_assert_int_eq(conc_future_error(f, &d, NULL), CONC_EBROKEN);
  ck_assert_int_eq(d, 17);
  conc_future_release(f);
  ck_assert_int_eq(conc_executor_submit(ex, ident, NULL, &f), CONC_EBROKEN);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
  ck_assert_int_eq(init_calls, 1);
  conc_set_log_handler(NULL, NULL);
}
END_TEST

static int good_init(void *arg) {
  atomic_fetch_add((atomic_long *)arg, 1);
  return 0;
}

START_TEST(pool_initializer_runs_per_worker) {
  atomic_long inits = 0;
  conc_thread_pool_options o;
  conc_thread_pool_options_init(&o);
  o.max_workers = 2;
  o.initializer = good_init;
  o.initarg = &inits;
  o.thread_name_prefix = "tp";
  conc_executor *ex;
  ck_assert_int_eq(conc_thread_pool_create(&o, &ex), 0);
  conc_test_latch_init(&gate, 1);
  conc_test_latch_init(&started, 2);
  conc_future *a, *b;
  ck_assert_int_eq(conc_executor_submit(ex, wait_gate, NULL, &a), 0);
  ck_assert_int_eq(conc_executor_submit(ex, wait_gate, NULL, &b), 0);
  conc_test_latch_wait(&started); /* both run at once: two workers */
  conc_test_latch_count_down(&gate);
  conc_future_wait(a, -1);
  conc_future_wait(b, -1);
  conc_future_release(a);
  conc_future_release(b);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
  ck_assert_int_eq(atomic_load(&inits), 2);
}
END_TEST

static void *name_task(void *a) {
  char *buf = a;
  pthread_getname_np(pthread_self(), buf, 16);
  return NULL;
}

START_TEST(pool_workers_named_and_signals_blocked) {
  conc_thread_pool_options o;
  conc_thread_pool_options_init(&o);
  o.max_workers = 1;
  o.thread_name_prefix = "mypool";
  conc_executor *ex;
  ck_assert_int_eq(conc_thread_pool_create(&o, &ex), 0);
  char name[16] = {0};
  conc_future *f;
  ck_assert_int_eq(conc_executor_submit(ex, name_task, name, &f), 0);
  conc_future_wait(f, -1);
  conc_future_release(f);
  ck_assert_str_eq(name, "mypool-0");
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST

static void *sigmask_task(void *a) {
  (void)a;
  sigset_t s;
  pthread_sigmask(SIG_BLOCK, NULL, &s);
  return (void *)(intptr_t)(sigismember(&s, SIGINT) == 1);
}

START_TEST(pool_worker_blocks_async_signals) {
  conc_executor *ex = make_pool(1);
  conc_future *f;
  ck_assert_int_eq(conc_executor_submit(ex, sigmask_task, NULL, &f), 0);
  void *r;
  ck_assert_int_eq(conc_future_result(f, -1, &r), 0);
  ck_assert_ptr_eq(r, (void *)1);
  conc_future_release(f);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST

START_TEST(pool_cancel_pending) {
  conc_executor *ex = make_pool(1);
  conc_future *blocker = block_one_worker(ex);
  conc_future *f;
  ck_assert(conc_future_running(blocker));
  ck_assert(!conc_future_cancel(blocker));
  atomic_store(&counter, 0);
  ck_assert_int_eq(conc_executor_submit(ex, count, NULL, &f), 0);
  ck_assert(conc_future_cancel(f));
  ck_assert(conc_future_cancelled(f));
  conc_test_latch_count_down(&gate);
  ck_assert_int_eq(conc_future_result(f, -1, NULL), CONC_ECANCELED);
  ck_assert_int_eq(conc_future_result(blocker, -1, NULL), 0);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
  ck_assert_int_eq(atomic_load(&counter), 0); /* never ran */
  conc_future_release(f);
  conc_future_release(blocker);
}
END_TEST

START_TEST(pool_race_cancel_vs_start) {
  conc_executor *ex = make_pool(2);
  atomic_store(&counter, 0);
  long cancelled = 0;
  enum { N = 20000 };
  for (int i = 0; i < N; i++) {
    conc_future *f;
    ck_assert_int_eq(conc_executor_submit(ex, count, NULL, &f), 0);
    if (conc_future_cancel(f)) {
      cancelled++;
      ck_assert_int_eq(conc_future_result(f, -1, NULL), CONC_ECANCELED);
    } else {
      ck_assert_int_eq(conc_future_result(f, -1, NULL), 0);
    }
    conc_future_release(f);
  }
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
  /* every task either ran or was cancelled, never both */
  ck_assert_int_eq(atomic_load(&counter) + cancelled, N);
}
END_TEST

static void *stoppable(void *a) {
  (void)a;
  conc_test_latch_count_down(&started);
  if (conc_task_wait_stop(-1) == 0 && conc_task_stop_requested())
    return (void *)(intptr_t)conc_task_stopped();
  return NULL;
}

START_TEST(pool_shutdown_cancel_futures_while_running) {
  conc_executor *ex = make_pool(2);
  conc_test_latch_init(&started, 2);
  conc_future *run[2], *pend[10];
  for (int i = 0; i < 2; i++)
    ck_assert_int_eq(conc_executor_submit(ex, stoppable, NULL, &run[i]), 0);
  conc_test_latch_wait(&started);
  for (int i = 0; i < 10; i++)
    ck_assert_int_eq(conc_executor_submit(ex, ident, NULL, &pend[i]), 0);
  ck_assert_int_eq(conc_executor_shutdown(ex, true, true), 0);
  for (int i = 0; i < 10; i++) {
    ck_assert(conc_future_cancelled(pend[i]));
    conc_future_release(pend[i]);
  }
  for (int i = 0; i < 2; i++) {
    /* honoured a stop request: ECANCELED, but not "cancelled" */
    ck_assert_int_eq(conc_future_result(run[i], -1, NULL), CONC_ECANCELED);
    ck_assert(!conc_future_cancelled(run[i]));
    conc_future_release(run[i]);
  }
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST

START_TEST(pool_future_stop_running_task) {
  conc_executor *ex = make_pool(1);
  conc_test_latch_init(&started, 1);
  conc_future *f;
  ck_assert_int_eq(conc_executor_submit(ex, stoppable, NULL, &f), 0);
  conc_test_latch_wait(&started);
  ck_assert_int_eq(conc_future_stop(f), 0);
  ck_assert_int_eq(conc_future_result(f, -1, NULL), CONC_ECANCELED);
  ck_assert_int_eq(conc_future_stop(f), CONC_EINVAL);
  conc_future_release(f);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST

static conc_executor *self_pool;
static void *shutdown_self(void *a) {
  (void)a;
  return (void *)(intptr_t)conc_executor_shutdown(self_pool, true, false);
}
static void *destroy_self(void *a) {
  (void)a;
  return (void *)(intptr_t)conc_executor_destroy(self_pool);
}

START_TEST(pool_shutdown_wait_from_own_task) {
  self_pool = make_pool(1);
  conc_future *f;
  ck_assert_int_eq(conc_executor_submit(self_pool, destroy_self, NULL, &f), 0);
  void *r;
  ck_assert_int_eq(conc_future_result(f, -1, &r), 0);
  ck_assert_int_eq((int)(intptr_t)r, CONC_EDEADLK);
  conc_future_release(f);
  /* destroy_self shut the pool down without waiting: submit now fails */
  ck_assert_int_eq(conc_executor_submit(self_pool, ident, NULL, &f),
                   CONC_ESHUTDOWN);
  ck_assert_int_eq(conc_executor_destroy(self_pool), 0);
  self_pool = make_pool(1);
  ck_assert_int_eq(conc_executor_submit(self_pool, shutdown_self, NULL, &f),
                   0);
  ck_assert_int_eq(conc_future_result(f, -1, &r), 0);
  ck_assert_int_eq((int)(intptr_t)r, CONC_EDEADLK);
  conc_future_release(f);
  ck_assert_int_eq(conc_executor_destroy(self_pool), 0);
}
END_TEST

/* Tasks submitting tasks and waiting on them: with one worker this only
 * finishes because the waiting worker runs queued tasks. */
static conc_executor *nest_pool;
static void *nested(void *a) {
  long n = (long)a;
  if (n < 2)
    return (void *)n;
  conc_future *x, *y;
  ck_assert_int_eq(conc_executor_submit(nest_pool, nested, (void *)(n - 1), &x),
                   0);
  ck_assert_int_eq(conc_executor_submit(nest_pool, nested, (void *)(n - 2), &y),
                   0);
  void *rx, *ry;
  ck_assert_int_eq(conc_future_result(x, -1, &rx), 0);
  ck_assert_int_eq(conc_future_result(y, -1, &ry), 0);
  conc_future_release(x);
  conc_future_release(y);
  return (void *)((long)rx + (long)ry);
}

START_TEST(pool_tasks_submit_and_wait_no_deadlock) {
  for (unsigned workers = 1; workers <= 3; workers++) {
    nest_pool = make_pool(workers);
    conc_future *f;
    ck_assert_int_eq(conc_executor_submit(nest_pool, nested, (void *)18, &f),
                     0);
    void *r;
    ck_assert_int_eq(conc_future_result(f, -1, &r), 0);
    ck_assert_int_eq((long)r, 2584); /* fib(18) */
    conc_future_release(f);
    ck_assert_int_eq(conc_executor_destroy(nest_pool), 0);
  }
}
END_TEST

struct submitter {
  conc_executor *ex;
  long n;
};
static void *submit_many(void *p) {
  struct submitter *s = p;
  for (long i = 0; i < s->n; i++) {
    conc_future *f;
    ck_assert_int_eq(conc_executor_submit(s->ex, count, NULL, &f), 0);
    conc_future_release(f);
  }
  return NULL;
}

START_TEST(pool_many_threads_submitting) {
  atomic_store(&counter, 0);
  conc_executor *ex = make_pool(3);
  pthread_t t[8];
  struct submitter s = {ex, 20000};
  for (int i = 0; i < 8; i++)
    pthread_create(&t[i], NULL, submit_many, &s);
  for (int i = 0; i < 8; i++)
    pthread_join(t[i], NULL);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
  ck_assert_int_eq(atomic_load(&counter), 8 * 20000);
}
END_TEST

static void *square(void *a) {
  long x = (long)a;
  return (void *)(x * x);
}

START_TEST(pool_stress_million_tasks) {
#if defined(CONC_TEST_TSAN) || defined(CONC_TEST_ASAN)
  enum { N = 100000, BATCH = 1000 };
#else
  enum { N = 1000000, BATCH = 1000 };
#endif
  conc_executor *ex = make_pool(2);
  static conc_future *fs[BATCH];
  long sum = 0, want = 0;
  for (long base = 0; base < N; base += BATCH) {
    for (long i = 0; i < BATCH; i++) {
      ck_assert_int_eq(
          conc_executor_submit(ex, square, (void *)((base + i) % 1000), &fs[i]),
          0);
      want += ((base + i) % 1000) * ((base + i) % 1000);
    }
    for (long i = 0; i < BATCH; i++) {
      void *r;
      ck_assert_int_eq(conc_future_result(fs[i], -1, &r), 0);
      sum += (long)r;
      conc_future_release(fs[i]);
    }
  }
  ck_assert_int_eq(sum, want); /* every result counted */
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST

static int run_order[256], run_order_n;
static void *note_order(void *a) { /* one worker: no race */
  run_order[run_order_n++] = (int)(intptr_t)a;
  return a;
}

START_TEST(pool_deadline_and_priority) {
  conc_executor *ex = make_pool(1);
  conc_future *blocker = block_one_worker(ex);
  conc_submit_options so;
  conc_submit_options_init(&so);
  so.deadline = conc_now() - 1; /* already passed */
  conc_future *late;
  ck_assert_int_eq(conc_executor_submit_ex(ex, ident, NULL, &so, &late), 0);
  /* priorities: queued while the only worker is busy */
  conc_future *p[3];
  static const int prios[3] = {1, 0, 2};
  for (int i = 0; i < 3; i++) {
    conc_submit_options_init(&so);
    so.priority = prios[i];
    ck_assert_int_eq(conc_executor_submit_ex(ex, note_order,
                                             (void *)(intptr_t)prios[i], &so,
                                             &p[i]),
                     0);
  }
  conc_test_latch_count_down(&gate);
  ck_assert_int_eq(conc_future_result(late, -1, NULL), CONC_EDEADLINE);
  ck_assert(!conc_future_cancelled(late));
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(conc_future_result(p[i], -1, NULL), 0);
    conc_future_release(p[i]);
  }
  /* only one worker: run order is highest priority first */
  ck_assert_int_eq(run_order_n, 3);
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(run_order[i], 2 - i);
  conc_future_release(late);
  conc_future_release(blocker);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST

/* Ageing: a low-priority task is passed by at most 64 x (difference)
 * later higher-priority tasks, then runs: it is never starved. */
START_TEST(pool_priority_ageing_no_starvation) {
  conc_executor *ex = make_pool(1);
  conc_future *blocker = block_one_worker(ex);
  enum { HIGH = 200 };
  static conc_future *fs[HIGH + 1];
  static int order[HIGH + 1];
  run_order_n = 0;
  conc_submit_options so;
  conc_submit_options_init(&so);
  /* The first non-zero priority switches the pool to its priority queue
   * (tasks queued before it are older and run first). */
  conc_future *first;
  so.priority = 1;
  ck_assert_int_eq(
      conc_executor_submit_ex(ex, note_order, (void *)1000, &so, &first), 0);
  so.priority = 0;
  ck_assert_int_eq(conc_executor_submit_ex(ex, note_order, (void *)-1, &so,
                                           &fs[0]), 0);
  so.priority = 1;
  for (intptr_t i = 1; i <= HIGH; i++)
    ck_assert_int_eq(
        conc_executor_submit_ex(ex, note_order, (void *)i, &so, &fs[i]), 0);
  conc_test_latch_count_down(&gate);
  for (int i = 0; i <= HIGH; i++) {
    ck_assert_int_eq(conc_future_result(fs[i], -1, NULL), 0);
    conc_future_release(fs[i]);
  }
  (void)order;
  ck_assert_int_eq(conc_future_result(first, -1, NULL), 0);
  conc_future_release(first);
  /* the high ones that arrived less than 64 submissions after the low one
   * pass it; the rest do not */
  ck_assert_int_eq(run_order_n, HIGH + 2);
  ck_assert_int_eq(run_order[0], 1000);
  for (int i = 1; i < 64; i++)
    ck_assert_int_eq(run_order[i], i);
  ck_assert_int_eq(run_order[64], -1);
  for (int i = 65; i < HIGH + 2; i++)
    ck_assert_int_eq(run_order[i], i - 1);
  conc_future_release(blocker);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST

START_TEST(pool_result_timeout) {
  conc_executor *ex = make_pool(1);
  conc_test_latch_init(&gate, 1);
  conc_test_latch_init(&started, 1);
  conc_future *f;
  ck_assert_int_eq(conc_executor_submit(ex, wait_gate, NULL, &f), 0);
  double t0 = conc_now();
  ck_assert_int_eq(conc_future_result(f, 0.05, NULL), CONC_ETIMEDOUT);
  ck_assert(conc_now() - t0 >= 0.05);
  conc_test_latch_count_down(&gate);
  ck_assert_int_eq(conc_future_result(f, -1, NULL), 0);
  conc_future_release(f);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST

START_TEST(pool_default_executor) {
  conc_test_no_leak_check(); /* the default pool may outlive the check */
  setenv("CONC_NUM_THREADS", "3", 1);
  conc_executor *ex, *ex2;
  ck_assert_int_eq(conc_executor_default(&ex), 0);
  ck_assert_int_eq(conc_executor_default(&ex2), 0);
  ck_assert_ptr_eq(ex, ex2);
  ck_assert_uint_eq(conc_executor_max_workers(ex), 3);
  ck_assert_int_eq(conc_executor_destroy(ex), CONC_EPERM);
  conc_future *f;
  ck_assert_int_eq(conc_executor_submit(ex, ident, (void *)3, &f), 0);
  void *r;
  ck_assert_int_eq(conc_future_result(f, -1, &r), 0);
  ck_assert_ptr_eq(r, (void *)3);
  conc_future_release(f);
  ck_assert_int_eq(conc_library_shutdown(), 0);
  ck_assert_int_eq(conc_library_shutdown(), 0); /* nothing left */
  setenv("CONC_NUM_THREADS", "bogus", 1);
  conc_set_log_handler(quiet_log, NULL);
  ck_assert_int_eq(conc_executor_default(&ex), 0); /* a fresh one */
  ck_assert_uint_gt(conc_executor_max_workers(ex), 0);
  ck_assert_int_eq(conc_executor_default(NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_library_shutdown(), 0);
  conc_set_log_handler(NULL, NULL);
}
END_TEST

static void *library_shutdown_task(void *a) {
  (void)a;
  return (void *)(intptr_t)conc_library_shutdown();
}

START_TEST(pool_library_shutdown_from_default_worker) {
  conc_test_no_leak_check();
  conc_executor *ex;
  ck_assert_int_eq(conc_executor_default(&ex), 0);
  conc_future *f;
  ck_assert_int_eq(conc_executor_submit(ex, library_shutdown_task, NULL, &f),
                   0);
  void *r;
  ck_assert_int_eq(conc_future_result(f, -1, &r), 0);
  ck_assert_int_eq((int)(intptr_t)r, CONC_EDEADLK);
  conc_future_release(f);
  ck_assert_int_eq(conc_library_shutdown(), 0);
}
END_TEST

/* Exit hook: a child creates a pool, submits a task that finishes only after
 * main has returned, and exits; the hook waits for the task. */
static int hook_fd;
static void *slow_writer(void *a) {
  conc_test_latch_wait(&gate);
  if (write(hook_fd, a, 1) != 1)
    abort();
  return NULL;
}
static int run_child(unsigned flags) {
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    hook_fd = fds[1];
    conc_test_latch_init(&gate, 1);
    conc_thread_pool_options o;
    conc_thread_pool_options_init(&o);
    o.max_workers = 1;
    o.flags = flags;
    conc_executor *ex;
    if (conc_thread_pool_create(&o, &ex))
      _exit(3);
    if (conc_executor_submit(ex, slow_writer, "x", NULL))
      _exit(4);
    conc_test_latch_count_down(&gate);
    exit(0); /* atexit handlers run here */
  }
  close(fds[1]);
  char c = 0;
  ssize_t n = read(fds[0], &c, 1);
  int st;
  waitpid(pid, &st, 0);
  close(fds[0]);
  ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  return (int)n;
}

START_TEST(pool_exit_hook_waits) {
  ck_assert_int_eq(run_child(0), 1); /* the task always wrote */
  run_child(CONC_EXECUTOR_NO_EXIT_HOOK); /* opt-out: exit may not wait */
}
END_TEST

START_TEST(pool_fork_while_running) {
#ifdef CONC_TEST_TSAN
  /* TSan: a child of a multi-threaded parent may not start threads. */
  return;
#endif
  conc_executor *ex = make_pool(2);
  conc_test_latch_init(&gate, 1);
  conc_test_latch_init(&started, 1);
  conc_future *running, *queued;
  ck_assert_int_eq(conc_executor_submit(ex, wait_gate, NULL, &running), 0);
  conc_test_latch_wait(&started);
  ck_assert_int_eq(conc_executor_submit(ex, ident, NULL, &queued), 0);
  pid_t pid = fork();
  if (pid == 0) {
    /* The child's copy has no workers: nothing hangs, errors are clear. */
    int code = 0;
    conc_future *f;
    if (conc_executor_submit(ex, ident, NULL, &f) != CONC_EBROKEN)
      code |= 1;
    if (conc_future_result(running, -1, NULL) != CONC_EBROKEN)
      code |= 2;
    if (conc_executor_shutdown(ex, true, true) != 0)
      code |= 4;
    if (conc_executor_destroy(ex) != 0)
      code |= 8;
    /* a fresh pool works in the child */
    conc_executor *ex2;
    if (conc_thread_pool_create(NULL, &ex2) ||
        conc_executor_submit(ex2, ident, (void *)4, &f))
      code |= 16;
    else {
      void *r;
      if (conc_future_result(f, -1, &r) != 0 || r != (void *)4)
        code |= 32;
      conc_future_release(f);
      conc_executor_destroy(ex2);
    }
    _exit(code);
  }
  int st;
  ck_assert_int_eq(waitpid(pid, &st, 0), pid);
  ck_assert(WIFEXITED(st));
  ck_assert_int_eq(WEXITSTATUS(st), 0);
  conc_test_latch_count_down(&gate);
  ck_assert_int_eq(conc_future_result(running, -1, NULL), 0);
  ck_assert_int_eq(conc_future_result(queued, -1, NULL), 0);
  conc_future_release(running);
  conc_future_release(queued);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST

static void *nested_tolerant(void *a) {
  long n = (long)a;
  if (n < 2)
    return (void *)n;
  conc_future *x = NULL, *y = NULL;
  void *rx = NULL, *ry = NULL;
  int rc = conc_executor_submit(nest_pool, nested_tolerant, (void *)(n - 1), &x);
  if (rc == 0)
    rc = conc_executor_submit(nest_pool, nested_tolerant, (void *)(n - 2), &y);
  if (rc == 0)
    rc = conc_future_result(x, -1, &rx);
  if (rc == 0)
    rc = conc_future_result(y, -1, &ry);
  conc_future_release(x);
  conc_future_release(y);
  if (rc)
    conc_task_fail(rc, "child: %s", conc_strerror(rc));
  return (void *)((long)rx + (long)ry);
}

START_TEST(pool_shutdown_while_stealing) {
  /* Tasks spawn children (local deques, stolen by the other workers) while
   * the pool is shut down without waiting, then destroyed. */
  for (int round = 0; round < 50; round++) {
    nest_pool = make_pool(3);
    conc_future *f;
    ck_assert_int_eq(
        conc_executor_submit(nest_pool, nested_tolerant, (void *)14, &f), 0);
    ck_assert_int_eq(conc_executor_shutdown(nest_pool, false, false), 0);
    void *r;
    /* submissions from the tasks after shutdown may fail; the tree then
     * fails, but it never hangs */
    int rc = conc_future_result(f, -1, &r);
    ck_assert(rc == 0 || rc == CONC_ETASK);
    conc_future_release(f);
    ck_assert_int_eq(conc_executor_destroy(nest_pool), 0);
  }
}
END_TEST

/* ---- backpressure ---- */

static conc_executor *make_bounded(unsigned workers, size_t max_queued,
                                   unsigned flags) {
  conc_thread_pool_options o;
  conc_thread_pool_options_init(&o);
  o.max_workers = workers;
  o.max_queued = max_queued;
  o.flags = flags;
  conc_executor *ex = NULL;
  ck_assert_int_eq(conc_thread_pool_create(&o, &ex), 0);
  return ex;
}

struct blocked_submit {
  conc_executor *ex;
  int rc;
  conc_future *f;
};
static void *submit_blocking(void *arg) {
  struct blocked_submit *b = arg;
  b->rc = conc_executor_submit(b->ex, ident, (void *)9, &b->f);
  return NULL;
}

START_TEST(pool_backpressure_bounded_queue) {
  conc_executor *ex = make_bounded(1, 2, 0);
  conc_test_latch_init(&gate, 1);
  conc_test_latch_init(&started, 1);
  conc_future *blocker, *q[2], *f = NULL;
  ck_assert_int_eq(conc_executor_submit(ex, wait_gate, NULL, &blocker), 0);
  conc_test_latch_wait(&started); /* running: it left the queue */
  for (int i = 0; i < 2; i++)
    ck_assert_int_eq(conc_executor_submit(ex, ident, NULL, &q[i]), 0);
  conc_submit_options so;
  conc_submit_options_init(&so);
  so.timeout = 0; /* non-blocking */
  ck_assert_int_eq(conc_executor_submit_ex(ex, ident, NULL, &so, &f),
                   CONC_EAGAIN);
  ck_assert_ptr_null(f);
  so.timeout = 0.05;
  double t0 = conc_now();
  ck_assert_int_eq(conc_executor_submit_ex(ex, ident, NULL, &so, &f),
                   CONC_ETIMEDOUT);
  ck_assert(conc_now() - t0 >= 0.05);
  conc_executor_stats st;
  conc_executor_stats_init(&st);
  ck_assert_int_eq(conc_executor_get_stats(ex, &st), 0);
  ck_assert_uint_eq(st.queued, 2);
  ck_assert_uint_eq(st.running, 1);
  /* a blocking submit waits for room, then succeeds */
  struct blocked_submit b = {ex, 1, NULL};
  pthread_t t;
  pthread_create(&t, NULL, submit_blocking, &b);
  conc_test_latch_count_down(&gate);
  pthread_join(t, NULL);
  ck_assert_int_eq(b.rc, 0);
  ck_assert_int_eq(conc_future_result(b.f, -1, NULL), 0);
  conc_future_release(b.f);
  for (int i = 0; i < 2; i++)
    conc_future_release(q[i]);
  conc_future_release(blocker);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST

START_TEST(pool_backpressure_shutdown_wakes_waiter) {
  conc_executor *ex = make_bounded(1, 1, 0);
  conc_future *blocker = block_one_worker(ex);
  conc_future *q;
  ck_assert_int_eq(conc_executor_submit(ex, ident, NULL, &q), 0); /* full */
  struct blocked_submit b = {ex, 1, NULL};
  pthread_t t;
  pthread_create(&t, NULL, submit_blocking, &b);
  /* the waiter fails once the pool shuts down, whenever it started */
  ck_assert_int_eq(conc_executor_shutdown(ex, false, false), 0);
  pthread_join(t, NULL);
  ck_assert_int_eq(b.rc, CONC_ESHUTDOWN);
  ck_assert_ptr_null(b.f);
  conc_test_latch_count_down(&gate);
  ck_assert_int_eq(conc_future_result(q, -1, NULL), 0);
  conc_future_release(q);
  conc_future_release(blocker);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST

static conc_executor *bp_pool;
static void *spawn_children(void *a) {
  (void)a;
  conc_future *fs[8];
  long sum = 0;
  for (long i = 0; i < 8; i++) /* own pool, full queue: never waits */
    ck_assert_int_eq(conc_executor_submit(bp_pool, ident, (void *)i, &fs[i]),
                     0);
  for (int i = 0; i < 8; i++) {
    void *r;
    ck_assert_int_eq(conc_future_result(fs[i], -1, &r), 0);
    sum += (long)r;
    conc_future_release(fs[i]);
  }
  return (void *)sum;
}

START_TEST(pool_backpressure_own_tasks_never_wait) {
  bp_pool = make_bounded(1, 1, 0);
  conc_future *f;
  ck_assert_int_eq(conc_executor_submit(bp_pool, spawn_children, NULL, &f), 0);
  void *r;
  ck_assert_int_eq(conc_future_result(f, -1, &r), 0);
  ck_assert_int_eq((long)r, 28);
  conc_future_release(f);
  /* map respects the bound (it waits for room) and still completes */
  static void *args[200];
  for (long i = 0; i < 200; i++)
    args[i] = (void *)i;
  conc_map *m;
  ck_assert_int_eq(conc_executor_map(bp_pool, ident, args, 200, NULL, &m), 0);
  long k = 0;
  while (conc_map_next(m, &r) == 1)
    ck_assert_ptr_eq(r, (void *)k++);
  ck_assert_int_eq(k, 200);
  conc_map_destroy(m);
  ck_assert_int_eq(conc_executor_destroy(bp_pool), 0);
}
END_TEST

/* ---- statistics ---- */

START_TEST(pool_stats_counts_outcomes) {
  conc_executor *ex = make_bounded(1, 0, CONC_EXECUTOR_TIMING);
  conc_executor_stats st;
  conc_executor_stats_init(&st);
  ck_assert_int_eq(conc_executor_get_stats(ex, &st), 0);
  ck_assert_uint_eq(st.submitted, 0);
  ck_assert_uint_eq(st.workers, 0);
  ck_assert(isnan(st.run_time_p50));
  conc_future *blocker = block_one_worker(ex);
  conc_future *ok, *bad, *late, *gone;
  ck_assert_int_eq(conc_executor_submit(ex, ident, NULL, &ok), 0);
  ck_assert_int_eq(conc_executor_submit(ex, failing, (void *)3, &bad), 0);
  conc_submit_options so;
  conc_submit_options_init(&so);
  so.deadline = conc_now() - 1;
  ck_assert_int_eq(conc_executor_submit_ex(ex, ident, NULL, &so, &late), 0);
  ck_assert_int_eq(conc_executor_submit(ex, ident, NULL, &gone), 0);
  ck_assert(conc_future_cancel(gone));
  ck_assert_int_eq(conc_executor_get_stats(ex, &st), 0);
  ck_assert_uint_eq(st.submitted, 5);
  ck_assert_uint_eq(st.running, 1);
  ck_assert_uint_eq(st.queued, 4);
  ck_assert_uint_eq(st.workers, 1);
  conc_test_latch_count_down(&gate);
  ck_assert_int_eq(conc_executor_shutdown(ex, true, false), 0);
  ck_assert_int_eq(conc_executor_get_stats(ex, &st), 0);
  ck_assert_uint_eq(st.submitted, 5);
  ck_assert_uint_eq(st.queued, 0);
  ck_assert_uint_eq(st.running, 0);
  ck_assert_uint_eq(st.completed, 2); /* blocker and ok */
  ck_assert_uint_eq(st.failed, 1);
  ck_assert_uint_eq(st.deadline_missed, 1);
  ck_assert_uint_eq(st.cancelled, 1);
  ck_assert_uint_eq(st.timed, 3); /* the deadline task is not timed */
  ck_assert(st.queue_wait_p50 > 0 && st.queue_wait_p99 >= st.queue_wait_p50);
  ck_assert(st.run_time_p50 > 0 && st.run_time_p99 >= st.run_time_p50);
  conc_executor_stats bad_size = {0};
  ck_assert_int_eq(conc_executor_get_stats(ex, &bad_size), CONC_EINVAL);
  ck_assert_int_eq(conc_executor_get_stats(NULL, &st), CONC_EINVAL);
  conc_executor_stats_init(NULL);
  conc_future *all[] = {blocker, ok, bad, late, gone};
  for (int i = 0; i < 5; i++)
    conc_future_release(all[i]);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
  conc_thread_pool_options o;
  conc_thread_pool_options_init(&o);
  o.flags = 1u << 7; /* unknown */
  ck_assert_int_eq(conc_thread_pool_create(&o, &ex), CONC_EINVAL);
}
END_TEST

START_TEST(pool_stats_cancel_futures_counts_drained) {
  conc_executor *ex = make_bounded(1, 4, 0);
  conc_future *blocker = block_one_worker(ex);
  conc_future *q[3];
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(conc_executor_submit(ex, ident, NULL, &q[i]), 0);
  ck_assert_int_eq(conc_executor_shutdown(ex, false, true), 0);
  conc_test_latch_count_down(&gate);
  ck_assert_int_eq(conc_executor_shutdown(ex, true, false), 0);
  conc_executor_stats st;
  conc_executor_stats_init(&st);
  ck_assert_int_eq(conc_executor_get_stats(ex, &st), 0);
  ck_assert_uint_eq(st.cancelled, 3);
  ck_assert_uint_eq(st.completed, 1);
  ck_assert_uint_eq(st.queued, 0);
  for (int i = 0; i < 3; i++)
    conc_future_release(q[i]);
  conc_future_release(blocker);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST

/* Hidden test hook of src/thread_pool.c (the tests link statically). */
extern _Atomic int conc__test_spawn_error;

START_TEST(pool_thread_start_failure_reported) {
  conc_set_log_handler(quiet_log, NULL);
  conc_executor *ex = make_pool(2);
  atomic_store(&counter, 0);
  atomic_store(&conc__test_spawn_error, EAGAIN);
  conc_future *f = (conc_future *)1;
  /* no worker can start: the task is refused, never queued */
  ck_assert_int_eq(conc_executor_submit(ex, count, NULL, &f), CONC_EAGAIN);
  ck_assert_ptr_null(f);
  atomic_store(&conc__test_spawn_error, ENOMEM);
  ck_assert_int_eq(conc_executor_submit(ex, count, NULL, NULL), CONC_ENOMEM);
  atomic_store(&conc__test_spawn_error, 0);
  ck_assert_int_eq(conc_executor_submit(ex, count, NULL, &f), 0);
  ck_assert_int_eq(conc_future_result(f, -1, NULL), 0);
  conc_future_release(f);
  /* one worker exists: a failed second start only logs; the task runs */
  atomic_store(&conc__test_spawn_error, EAGAIN);
  conc_future *blocker = block_one_worker(ex);
  conc_future *g;
  ck_assert_int_eq(conc_executor_submit(ex, count, NULL, &g), 0);
  atomic_store(&conc__test_spawn_error, 0);
  conc_test_latch_count_down(&gate);
  ck_assert_int_eq(conc_future_result(g, -1, NULL), 0);
  ck_assert_int_eq(atomic_load(&counter), 2);
  conc_future_release(g);
  conc_future_release(blocker);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
  conc_set_log_handler(NULL, NULL);
}
END_TEST


/* ---- plain fire-and-forget tasks (no record: (fn, arg) in the ring) ---- */

static void *plain_fail(void *a) {
  (void)a;
  conc_task_fail(7, "plain task failed");
  return NULL;
}

static void *plain_stoppable(void *a) {
  (void)a;
  ck_assert(!conc_task_stop_requested());
  conc_test_latch_count_down(&started);
  if (conc_task_wait_stop(-1) == 0 && conc_task_stop_requested())
    conc_task_stopped();
  atomic_fetch_add(&counter, 1);
  return NULL;
}

START_TEST(pool_plain_tasks_outcomes_counted) {
  /* completed, failed (conc_task_fail), and a full ring: the overflow takes
   * the record path; every task runs once */
  atomic_store(&counter, 0);
  conc_executor *ex = make_pool(2);
  conc_future *b1 = block_one_worker(ex);
  conc_test_latch_init(&started, 1);
  conc_future *b2;
  ck_assert_int_eq(conc_executor_submit(ex, wait_gate, NULL, &b2), 0);
  conc_test_latch_wait(&started); /* both workers held: the ring fills */
  enum { N = 10000 };
  for (int i = 0; i < N; i++)
    ck_assert_int_eq(conc_executor_submit(ex, count, NULL, NULL), 0);
  for (int i = 0; i < 5; i++)
    ck_assert_int_eq(conc_executor_submit(ex, plain_fail, NULL, NULL), 0);
  conc_executor_stats st;
  conc_executor_stats_init(&st);
  conc_executor_get_stats(ex, &st);
  ck_assert_uint_eq(st.queued, N + 5);
  conc_test_latch_count_down(&gate);
  ck_assert_int_eq(conc_executor_shutdown(ex, true, false), 0);
  ck_assert_int_eq(atomic_load(&counter), N);
  conc_executor_stats_init(&st);
  conc_executor_get_stats(ex, &st);
  ck_assert_uint_eq(st.submitted, N + 5 + 2);
  ck_assert_uint_eq(st.completed, N + 2);
  ck_assert_uint_eq(st.failed, 5);
  ck_assert_uint_eq(st.queued, 0);
  conc_future_release(b1);
  conc_future_release(b2);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST

START_TEST(pool_plain_tasks_cancel_futures) {
  /* shutdown(cancel_futures): running plain tasks get the stop request,
   * queued ones never start and are counted as cancelled */
  atomic_store(&counter, 0);
  conc_executor *ex = make_pool(2);
  conc_test_latch_init(&started, 2);
  for (int i = 0; i < 2; i++)
    ck_assert_int_eq(conc_executor_submit(ex, plain_stoppable, NULL, NULL), 0);
  conc_test_latch_wait(&started);
  for (int i = 0; i < 100; i++)
    ck_assert_int_eq(conc_executor_submit(ex, count, NULL, NULL), 0);
  ck_assert_int_eq(conc_executor_shutdown(ex, true, true), 0);
  ck_assert_int_eq(atomic_load(&counter), 2); /* only the two stopped ones */
  conc_executor_stats st;
  conc_executor_stats_init(&st);
  conc_executor_get_stats(ex, &st);
  ck_assert_uint_eq(st.cancelled, 102); /* 2 stopped + 100 never started */
  ck_assert_uint_eq(st.completed, 0);
  ck_assert_int_eq(conc_executor_submit(ex, count, NULL, NULL), CONC_ESHUTDOWN);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST

struct racer {
  conc_executor *ex;
  long accepted;
};
static void *plain_racer(void *arg) {
  struct racer *r = arg;
  /* bounded: unbounded submitters would queue millions of tasks that
   * shutdown(wait) then runs, all of them */
  for (int i = 0; i < 20000; i++) {
    int rc = conc_executor_submit(r->ex, count, NULL, NULL);
    if (rc == 0)
      r->accepted++;
    else {
      ck_assert_int_eq(rc, CONC_ESHUTDOWN);
      return NULL;
    }
  }
  return NULL;
}

START_TEST(pool_plain_submit_races_shutdown) {
  /* submitters race shutdown(wait): a plain task whose submit returned 0
   * runs exactly once; one refused never runs (taken back from the ring) */
  for (int round = 0; round < 200; round++) {
    atomic_store(&counter, 0);
    conc_executor *ex = make_pool(2);
    struct racer r[2] = {{ex, 0}, {ex, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
      pthread_create(&t[i], NULL, plain_racer, &r[i]);
    while (atomic_load(&counter) < 50 && round % 7)
      sched_yield(); /* every 7th round: shut down at once */
    ck_assert_int_eq(conc_executor_shutdown(ex, round & 1, false), 0);
    for (int i = 0; i < 2; i++)
      pthread_join(t[i], NULL);
    ck_assert_int_eq(conc_executor_destroy(ex), 0);
    ck_assert_int_eq(atomic_load(&counter), r[0].accepted + r[1].accepted);
  }
}
END_TEST

CONC_TEST_MAIN("thread_pool", pool_submit_and_result, pool_options_and_defaults,
               pool_submit_invalid_and_after_shutdown, pool_submit_nomem,
               pool_fire_and_forget, pool_task_error,
               pool_initializer_failure_breaks_pool,
               pool_initializer_runs_per_worker,
               pool_workers_named_and_signals_blocked,
               pool_worker_blocks_async_signals, pool_cancel_pending,
               pool_race_cancel_vs_start,
               pool_shutdown_cancel_futures_while_running,
               pool_future_stop_running_task, pool_shutdown_wait_from_own_task,
               pool_tasks_submit_and_wait_no_deadlock,
               pool_many_threads_submitting, pool_stress_million_tasks,
               pool_deadline_and_priority, pool_priority_ageing_no_starvation,
               pool_result_timeout,
               pool_default_executor, pool_library_shutdown_from_default_worker,
               pool_exit_hook_waits, pool_fork_while_running,
               pool_shutdown_while_stealing, pool_backpressure_bounded_queue,
               pool_backpressure_shutdown_wakes_waiter,
               pool_backpressure_own_tasks_never_wait,
               pool_stats_counts_outcomes,
               pool_stats_cancel_futures_counts_drained,
               pool_thread_start_failure_reported,
               pool_plain_tasks_outcomes_counted,
               pool_plain_tasks_cancel_futures,
               pool_plain_submit_races_shutdown)
