/* test-loop-executor.c - a coroutine loop as a conc executor
 * (conc_loop_executor_create, src/loop_executor.c).
 *
 * DESIGN: tasks are submitted from the loop's thread before it runs (the
 * loop runs them, deterministically, in submission order) and from another
 * thread while the loop is held running (conc_loop_ref); each task checks
 * it runs as a coroutine on the loop's thread and may wait.  Also:
 * deadline passed, conc_task_fail, shutdown with cancel_futures, a loop
 * destroyed with tasks queued, destroy refused from inside a task, stats.
 * No sleeps: other-thread results are awaited through the futures.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <pthread.h>
#include <unistd.h>

#include "conc/net.h"
#include "conc/task.h"
#include "internal.h" /* conc__gettid */

static int loop_tid;
static char order[64];
static size_t order_len;

static void *task_add(void *arg) {
  ck_assert_ptr_nonnull(conc_coro_self()); /* a coroutine */
  ck_assert_int_eq(conc__gettid(), loop_tid);
  intptr_t v = (intptr_t)arg;
  if (order_len + 1 < sizeof order)
    order[order_len++] = (char)('a' + v % 26);
  ck_assert_int_eq(conc_coro_yield(), 0); /* it may wait */
  ck_assert_int_eq(conc_coro_sleep(0.001), 0);
  return (void *)(v + 1);
}

static conc_loop *new_loop(void) {
  conc_loop *l = NULL;
  ck_assert_int_eq(conc_loop_create(NULL, &l), 0);
  loop_tid = conc__gettid();
  order_len = 0;
  memset(order, 0, sizeof order);
  return l;
}

START_TEST(loop_executor_basic) {
  conc_loop *l = new_loop();
  conc_executor *ex = NULL;
  ck_assert_int_eq(conc_loop_executor_create(l, &ex), 0);
  ck_assert_uint_eq(conc_executor_max_workers(ex), 1);
  conc_future *f[5];
  for (int i = 0; i < 5; i++)
    ck_assert_int_eq(conc_executor_submit(ex, task_add, (void *)(intptr_t)i,
                                          &f[i]),
                     0);
  ck_assert(!conc_future_done(f[0])); /* nothing runs before the loop */
  ck_assert_int_eq(conc_loop_run(l), 0);
  ck_assert_str_eq(order, "abcde");
  for (int i = 0; i < 5; i++) {
    void *r = NULL;
    ck_assert_int_eq(conc_future_result(f[i], 0, &r), 0);
    ck_assert_ptr_eq(r, (void *)(intptr_t)(i + 1));
    conc_future_release(f[i]);
  }
  conc_executor_stats s;
  conc_executor_stats_init(&s);
  ck_assert_int_eq(conc_executor_get_stats(ex, &s), 0);
  ck_assert_uint_eq(s.submitted, 5);
  ck_assert_uint_eq(s.completed, 5);
  ck_assert_uint_eq(s.queued, 0);
  ck_assert_uint_eq(s.running, 0);
  ck_assert_uint_eq(s.workers, 1);
  /* destroy on the loop's thread, outside the loop, idle: fine */
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
  ck_assert_int_eq(conc_loop_destroy(l), 0);
  ck_assert_int_eq(conc_loop_executor_create(NULL, &ex), CONC_EINVAL);
  ck_assert_int_eq(conc_loop_executor_create(l, NULL), CONC_EINVAL);
}
END_TEST

/* ---- from a coroutine: submit to its own loop and await ---- */

static conc_executor *g_ex;

static int submitter(void *arg, void **result) {
  (void)arg;
  (void)result;
  conc_future *f = NULL;
  ck_assert_int_eq(conc_executor_submit(g_ex, task_add, (void *)41, &f), 0);
  void *r = NULL;
  ck_assert_int_eq(conc_coro_await_future(f, -1, &r), 0);
  ck_assert_ptr_eq(r, (void *)42);
  conc_future_release(f);
  /* destroy from inside the loop would wait for itself */
  ck_assert_int_eq(conc_executor_destroy(g_ex), CONC_EDEADLK);
  ck_assert_int_eq(conc_executor_submit(g_ex, task_add, NULL, NULL),
                   CONC_ESHUTDOWN);
  return 0;
}

START_TEST(loop_executor_from_coroutine) {
  conc_loop *l = new_loop();
  ck_assert_int_eq(conc_loop_executor_create(l, &g_ex), 0);
  ck_assert_int_eq(conc_coro_spawn(l, submitter, NULL, NULL, NULL), 0);
  ck_assert_int_eq(conc_loop_run(l), 0);
  ck_assert_int_eq(conc_executor_destroy(g_ex), 0); /* shut down, idle */
  ck_assert_int_eq(conc_loop_destroy(l), 0);
}
END_TEST

/* ---- from another thread, the loop running ---- */

typedef struct remote_arg {
  conc_loop *l;
  conc_executor *ex;
} remote_arg;

static void *remote_thread(void *p) {
  remote_arg *a = p;
  conc_future *f[50];
  for (int i = 0; i < 50; i++)
    ck_assert_int_eq(
        conc_executor_submit(a->ex, task_add, (void *)(intptr_t)i, &f[i]), 0);
  for (int i = 0; i < 50; i++) {
    void *r = NULL;
    ck_assert_int_eq(conc_future_result(f[i], -1, &r), 0);
    ck_assert_ptr_eq(r, (void *)(intptr_t)(i + 1));
    conc_future_release(f[i]);
  }
  /* shutdown with wait from another thread: everything finished */
  ck_assert_int_eq(conc_executor_shutdown(a->ex, true, false), 0);
  ck_assert_int_eq(conc_loop_unref(a->l), 0);
  return NULL;
}

START_TEST(loop_executor_threadsafe) {
  conc_loop *l = new_loop();
  remote_arg a = {.l = l};
  ck_assert_int_eq(conc_loop_executor_create(l, &a.ex), 0);
  ck_assert_int_eq(conc_loop_ref(l), 0);
  pthread_t th;
  ck_assert_int_eq(pthread_create(&th, NULL, remote_thread, &a), 0);
  ck_assert_int_eq(conc_loop_run(l), 0); /* until the thread unrefs */
  pthread_join(th, NULL);
  conc_executor_stats s;
  conc_executor_stats_init(&s);
  ck_assert_int_eq(conc_executor_get_stats(a.ex, &s), 0);
  ck_assert_uint_eq(s.completed, 50);
  ck_assert_int_eq(conc_executor_destroy(a.ex), 0);
  ck_assert_int_eq(conc_loop_destroy(l), 0);
}
END_TEST

/* ---- errors, deadline, cancellation ---- */

static void *task_fails(void *arg) {
  (void)arg;
  conc_task_fail(7, "failed on purpose");
  return NULL;
}

START_TEST(loop_executor_outcomes) {
  conc_loop *l = new_loop();
  conc_executor *ex = NULL;
  ck_assert_int_eq(conc_loop_executor_create(l, &ex), 0);
  conc_submit_options o;
  conc_submit_options_init(&o);
  o.deadline = conc_now() - 1; /* already passed */
  conc_future *late = NULL, *fail = NULL, *ok = NULL;
  ck_assert_int_eq(conc_executor_submit_ex(ex, task_add, NULL, &o, &late), 0);
  ck_assert_int_eq(conc_executor_submit(ex, task_fails, NULL, &fail), 0);
  ck_assert_int_eq(conc_executor_submit(ex, task_add, (void *)1, &ok), 0);
  ck_assert_int_eq(conc_loop_run(l), 0);
  ck_assert_int_eq(conc_future_result(late, 0, NULL), CONC_EDEADLINE);
  ck_assert_int_eq(conc_future_result(fail, 0, NULL), CONC_ETASK);
  int detail = 0;
  ck_assert_int_eq(conc_future_error(fail, &detail, NULL), CONC_ETASK);
  ck_assert_int_eq(detail, 7);
  void *r = NULL;
  ck_assert_int_eq(conc_future_result(ok, 0, &r), 0);
  ck_assert_ptr_eq(r, (void *)2);
  conc_future_release(late);
  conc_future_release(fail);
  conc_future_release(ok);

  /* cancel_futures: queued tasks never run */
  conc_future *q = NULL;
  ck_assert_int_eq(conc_executor_submit(ex, task_add, NULL, &q), 0);
  ck_assert_int_eq(conc_executor_shutdown(ex, false, true), 0);
  ck_assert_int_eq(conc_executor_submit(ex, task_add, NULL, NULL),
                   CONC_ESHUTDOWN);
  /* waiting on the loop's thread with a task left: would never return */
  ck_assert_int_eq(conc_executor_shutdown(ex, true, false), CONC_EDEADLK);
  ck_assert_int_eq(conc_loop_run(l), 0);
  ck_assert(conc_future_cancelled(q));
  ck_assert_str_eq(order, "b"); /* only ok ran task_add's body */
  conc_future_release(q);
  conc_executor_stats s;
  conc_executor_stats_init(&s);
  ck_assert_int_eq(conc_executor_get_stats(ex, &s), 0);
  ck_assert_uint_eq(s.submitted, 4);
  ck_assert_uint_eq(s.completed, 1);
  ck_assert_uint_eq(s.failed, 2);
  ck_assert_uint_eq(s.cancelled, 1);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
  ck_assert_int_eq(conc_loop_destroy(l), 0);
}
END_TEST

START_TEST(loop_executor_loop_destroyed) {
  conc_loop *l = new_loop();
  conc_executor *ex = NULL;
  ck_assert_int_eq(conc_loop_executor_create(l, &ex), 0);
  conc_future *f = NULL;
  ck_assert_int_eq(conc_executor_submit(ex, task_add, NULL, &f), 0);
  ck_assert_int_eq(conc_loop_destroy(l), 0); /* never ran */
  ck_assert(conc_future_cancelled(f));
  ck_assert_int_eq(conc_executor_submit(ex, task_add, NULL, NULL),
                   CONC_ESHUTDOWN);
  conc_future_release(f);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST


/* ---- the task context follows the task across its waits ---- */

static void *task_sleeps_then_fails(void *arg) {
  int code = (int)(intptr_t)arg;
  /* the other task runs during each sleep: the context must be ours */
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(conc_coro_sleep(0.001), 0);
  ck_assert(!conc_task_stop_requested());
  conc_task_fail(code, "task %d failed after its waits", code);
  return NULL;
}

static void *task_waits_for_stop(void *arg) {
  (void)arg;
  while (!conc_task_stop_requested())
    ck_assert_int_eq(conc_coro_sleep(0.001), 0);
  return (void *)(intptr_t)conc_task_stopped();
}

START_TEST(loop_executor_task_context_across_waits) {
  conc_loop *l = new_loop();
  conc_executor *ex = NULL;
  ck_assert_int_eq(conc_loop_executor_create(l, &ex), 0);
  conc_future *a = NULL, *b = NULL, *c = NULL;
  ck_assert_int_eq(
      conc_executor_submit(ex, task_sleeps_then_fails, (void *)11, &a), 0);
  ck_assert_int_eq(
      conc_executor_submit(ex, task_sleeps_then_fails, (void *)22, &b), 0);
  ck_assert_int_eq(conc_executor_submit(ex, task_waits_for_stop, NULL, &c), 0);
  ck_assert_int_eq(conc_future_stop(c), 0); /* pending: seen once it runs */
  ck_assert_int_eq(conc_loop_run(l), 0);
  int detail = 0;
  ck_assert_int_eq(conc_future_error(a, &detail, NULL), CONC_ETASK);
  ck_assert_int_eq(detail, 11);
  ck_assert_int_eq(conc_future_error(b, &detail, NULL), CONC_ETASK);
  ck_assert_int_eq(detail, 22);
  ck_assert_int_eq(conc_future_result(c, 0, NULL), CONC_ECANCELED);
  ck_assert(!conc_future_cancelled(c)); /* honoured a stop while running */
  conc_future_release(a);
  conc_future_release(b);
  conc_future_release(c);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
  ck_assert_int_eq(conc_loop_destroy(l), 0);
}
END_TEST

CONC_TEST_MAIN("loop-executor", loop_executor_basic,
               loop_executor_from_coroutine, loop_executor_threadsafe,
               loop_executor_outcomes, loop_executor_loop_destroyed,
               loop_executor_task_context_across_waits)
