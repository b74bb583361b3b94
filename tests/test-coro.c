/* test-coro.c - coroutine scheduler (include/conc/coro.h, src/coro.c).
 *
 * DESIGN: everything runs on one loop thread, so orders are deterministic:
 * coroutines append what they do to a trace string and the test compares
 * it.  Sleeps are asserted by order and lower bounds only.  Cancellation is
 * tested at each waiting point (await, sleep, yield) and before start.
 * Every case ends with the loop destroyed and the counting allocator empty
 * (checked by the harness).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <fenv.h>
#include <math.h>
#include <time.h>

#if defined(CONC_TEST_ASAN) || defined(CONC_TEST_TSAN)
#define MANY 10000
#else
#define MANY 100000
#endif

static char trace[4096];
static size_t trace_len;

static void tr(const char *s) {
  size_t n = strlen(s);
  ck_assert(trace_len + n < sizeof trace);
  memcpy(trace + trace_len, s, n + 1);
  trace_len += n;
}

static void tr_reset(void) {
  trace_len = 0;
  trace[0] = 0;
}

static conc_loop *new_loop(void) {
  conc_loop_options o;
  conc_loop_options_init(&o);
  conc_loop *l = NULL;
  ck_assert_int_eq(conc_loop_create(&o, &l), 0);
  ck_assert_ptr_nonnull(l);
  return l;
}

/* ---- run, spawn, await ---- */

static int forever(void *arg, void **result);

static int ret_arg(void *arg, void **result) {
  ck_assert_ptr_nonnull(conc_coro_self());
  *result = arg;
  return 0;
}

static int fail_with(void *arg, void **result) {
  *result = arg;
  return (int)(intptr_t)arg;
}

START_TEST(coro_run_result) {
  void *res = NULL;
  ck_assert_int_eq(conc_coro_run(ret_arg, (void *)42, &res), 0);
  ck_assert_ptr_eq(res, (void *)42);
  ck_assert_int_eq(conc_coro_run(fail_with, (void *)(intptr_t)-77, &res), -77);
  ck_assert_ptr_eq(res, (void *)(intptr_t)-77);
  ck_assert_int_eq(conc_coro_run(NULL, NULL, &res), CONC_EINVAL);
  /* Left waiting with nothing to wake it: EDEADLK, and the loop's
   * destruction cancelled it (the harness checks nothing leaked). */
  ck_assert_int_eq(conc_coro_run(forever, NULL, &res), CONC_EDEADLK);
}
END_TEST

static int parent_awaits(void *arg, void **result) {
  (void)arg;
  conc_coro *a = NULL, *b = NULL;
  ck_assert_int_eq(conc_coro_spawn(NULL, ret_arg, (void *)1, NULL, &a), 0);
  ck_assert_int_eq(conc_coro_spawn(NULL, fail_with, (void *)(intptr_t)CONC_ETASK,
                                   NULL, &b), 0);
  ck_assert_int_eq(conc_coro_result(a, NULL), CONC_EAGAIN);
  void *r = NULL;
  ck_assert_int_eq(conc_coro_await(a, -1, &r), 0);
  ck_assert_ptr_eq(r, (void *)1);
  ck_assert_int_eq(conc_coro_await(b, -1, &r), CONC_ETASK);
  /* Awaiting a finished one returns at once, again. */
  ck_assert_int_eq(conc_coro_await(a, 0, &r), 0);
  ck_assert_int_eq(conc_coro_result(a, &r), 0);
  ck_assert_ptr_eq(r, (void *)1);
  ck_assert_int_eq(conc_coro_await(conc_coro_self(), -1, &r), CONC_EDEADLK);
  ck_assert_int_eq(conc_coro_await(NULL, -1, &r), CONC_EINVAL);
  conc_coro_release(a);
  conc_coro_release(b);
  *result = (void *)7;
  return 0;
}

START_TEST(coro_spawn_await) {
  conc_loop *l = new_loop();
  conc_coro *h = NULL;
  ck_assert_int_eq(conc_coro_spawn(l, parent_awaits, NULL, NULL, &h), 0);
  ck_assert_int_eq(conc_coro_result(h, NULL), CONC_EAGAIN);
  ck_assert_int_eq(conc_loop_run(l), 0);
  void *r = NULL;
  ck_assert_int_eq(conc_coro_result(h, &r), 0);
  ck_assert_ptr_eq(r, (void *)7);
  ck_assert_int_eq(conc_loop_destroy(l), 0);
  /* The handle outlives the loop. */
  ck_assert_int_eq(conc_coro_result(h, &r), 0);
  ck_assert_int_eq(conc_coro_cancel(h), 0);
  conc_coro_release(h);
  conc_coro_release(NULL);
}
END_TEST

/* Many waiters on one coroutine all wake, in any case with its result. */
static int sleeper_val(void *arg, void **result) {
  ck_assert_int_eq(conc_coro_sleep(0.01), 0);
  *result = arg;
  return 5;
}
static int waiter_on(void *arg, void **result) {
  void *r = NULL;
  ck_assert_int_eq(conc_coro_await(arg, -1, &r), 5);
  ck_assert_ptr_eq(r, (void *)99);
  *result = NULL;
  return 0;
}

START_TEST(coro_many_waiters) {
  conc_loop *l = new_loop();
  conc_coro *t = NULL;
  ck_assert_int_eq(conc_coro_spawn(l, sleeper_val, (void *)99, NULL, &t), 0);
  conc_coro *w[8];
  for (int i = 0; i < 8; i++)
    ck_assert_int_eq(conc_coro_spawn(l, waiter_on, t, NULL, &w[i]), 0);
  ck_assert_int_eq(conc_loop_run(l), 0);
  for (int i = 0; i < 8; i++) {
    ck_assert_int_eq(conc_coro_result(w[i], NULL), 0);
    conc_coro_release(w[i]);
  }
  conc_coro_release(t);
  ck_assert_int_eq(conc_loop_destroy(l), 0);
}
END_TEST

/* ---- yield ---- */

static int yielder(void *arg, void **result) {
  const char *name = arg;
  for (int i = 0; i < 3; i++) {
    tr(name);
    ck_assert_int_eq(conc_coro_yield(), 0);
  }
  *result = NULL;
  return 0;
}

START_TEST(coro_yield_order) {
  tr_reset();
  conc_loop *l = new_loop();
  ck_assert_int_eq(conc_coro_spawn(l, yielder, "a", NULL, NULL), 0);
  ck_assert_int_eq(conc_coro_spawn(l, yielder, "b", NULL, NULL), 0);
  ck_assert_int_eq(conc_coro_spawn(l, yielder, "c", NULL, NULL), 0);
  ck_assert_int_eq(conc_loop_run(l), 0);
  ck_assert_str_eq(trace, "abcabcabc");
  ck_assert_int_eq(conc_loop_destroy(l), 0);
}
END_TEST

/* ---- sleep ---- */

typedef struct sl {
  double secs;
  const char *name;
  double t0;
} sl;

static int sleeper(void *arg, void **result) {
  sl *s = arg;
  ck_assert_int_eq(conc_coro_sleep(s->secs), 0);
  ck_assert(conc_now() - s->t0 >= s->secs);
  tr(s->name);
  *result = NULL;
  return 0;
}

static int sleeper_until(void *arg, void **result) {
  sl *s = arg;
  ck_assert_int_eq(conc_coro_sleep_until(s->t0 + s->secs), 0);
  ck_assert(conc_now() >= s->t0 + s->secs);
  tr(s->name);
  *result = NULL;
  return 0;
}

START_TEST(coro_sleep_order) {
  tr_reset();
  conc_loop *l = new_loop();
  double t0 = conc_now();
  /* Gaps of 40 ms or more: a slow first tick (sanitizers, load) cannot
   * reorder them. */
  sl s[] = {{0.18, "c", t0}, {0.02, "a", t0}, {0.06, "b", t0},
            {0.0, "0", t0},  {0.12, "B", t0}, {-1.0, "P", t0}};
  ck_assert_int_eq(conc_coro_spawn(l, sleeper, &s[0], NULL, NULL), 0);
  ck_assert_int_eq(conc_coro_spawn(l, sleeper, &s[1], NULL, NULL), 0);
  ck_assert_int_eq(conc_coro_spawn(l, sleeper, &s[2], NULL, NULL), 0);
  ck_assert_int_eq(conc_coro_spawn(l, sleeper, &s[3], NULL, NULL), 0);
  ck_assert_int_eq(conc_coro_spawn(l, sleeper_until, &s[4], NULL, NULL), 0);
  /* A past deadline yields. */
  ck_assert_int_eq(conc_coro_spawn(l, sleeper_until, &s[5], NULL, NULL), 0);
  ck_assert_int_eq(conc_loop_run(l), 0);
  ck_assert_str_eq(trace, "0PabBc");
  ck_assert(conc_now() - t0 >= 0.18);
  ck_assert_int_eq(conc_loop_destroy(l), 0);
}
END_TEST

/* ---- cancellation at every waiting point ---- */

typedef struct cx {
  int got;
  int *owned;   /* freed by the coroutine when cancelled */
} cx;

static int cancel_sleep_body(void *arg, void **result) {
  cx *x = arg;
  x->owned = malloc(64);
  x->got = conc_coro_sleep(100);
  free(x->owned);
  x->owned = NULL;
  *result = NULL;
  return x->got;
}

static int cancel_yield_body(void *arg, void **result) {
  cx *x = arg;
  x->got = conc_coro_yield();
  *result = NULL;
  return x->got;
}

static int forever(void *arg, void **result) {
  (void)arg;
  *result = NULL;
  return conc_coro_sleep_until(INFINITY);
}

static int cancel_await_body(void *arg, void **result) {
  cx *x = arg;
  conc_coro *t = NULL;
  ck_assert_int_eq(conc_coro_spawn(NULL, forever, NULL, NULL, &t), 0);
  x->got = conc_coro_await(t, -1, NULL);
  /* The awaited one was not cancelled: cancel it and collect it. */
  ck_assert_int_eq(conc_coro_result(t, NULL), CONC_EAGAIN);
  ck_assert_int_eq(conc_coro_cancel(t), 0);
  ck_assert_int_eq(conc_coro_await(t, -1, NULL), CONC_ECANCELED);
  conc_coro_release(t);
  *result = NULL;
  return x->got;
}

typedef struct canceller_arg {
  conc_coro *target;
} canceller_arg;

static int canceller(void *arg, void **result) {
  canceller_arg *c = arg;
  ck_assert_int_eq(conc_coro_cancel(c->target), 0);
  *result = NULL;
  return 0;
}

static void cancel_case(conc_coro_fn body, int expect) {
  conc_loop *l = new_loop();
  cx x = {1, NULL};
  conc_coro *h = NULL;
  ck_assert_int_eq(conc_coro_spawn(l, body, &x, NULL, &h), 0);
  canceller_arg ca = {h};
  ck_assert_int_eq(conc_coro_spawn(l, canceller, &ca, NULL, NULL), 0);
  double t0 = conc_now();
  ck_assert_int_eq(conc_loop_run(l), 0);
  ck_assert(conc_now() - t0 < 50); /* not the 100 s sleep */
  ck_assert_int_eq(x.got, expect);
  ck_assert_int_eq(conc_coro_result(h, NULL), expect);
  ck_assert_ptr_null(x.owned);
  conc_coro_release(h);
  ck_assert_int_eq(conc_loop_destroy(l), 0);
}

START_TEST(coro_cancel_sleep) { cancel_case(cancel_sleep_body, CONC_ECANCELED); }
END_TEST
START_TEST(coro_cancel_yield) { cancel_case(cancel_yield_body, CONC_ECANCELED); }
END_TEST
START_TEST(coro_cancel_await) { cancel_case(cancel_await_body, CONC_ECANCELED); }
END_TEST

/* Cancelled before it started: it still starts, its first wait fails
 * (once), the next succeeds. */
static int first_wait(void *arg, void **result) {
  (void)arg;
  tr("s");
  ck_assert_int_eq(conc_coro_yield(), CONC_ECANCELED);
  ck_assert_int_eq(conc_coro_yield(), 0);
  ck_assert_int_eq(conc_coro_sleep(0), 0);
  *result = NULL;
  return 0;
}

/* Self-cancel: delivered at the next waiting point. */
static int self_cancel(void *arg, void **result) {
  (void)arg;
  ck_assert_int_eq(conc_coro_cancel(conc_coro_self()), 0);
  ck_assert_int_eq(conc_coro_sleep(0.001), CONC_ECANCELED);
  ck_assert_int_eq(conc_coro_sleep(0.001), 0);
  *result = NULL;
  return 0;
}

START_TEST(coro_cancel_before_start) {
  tr_reset();
  conc_loop *l = new_loop();
  conc_coro *h = NULL, *s = NULL;
  ck_assert_int_eq(conc_coro_spawn(l, first_wait, NULL, NULL, &h), 0);
  ck_assert_int_eq(conc_coro_cancel(h), 0);
  ck_assert_int_eq(conc_coro_spawn(l, self_cancel, NULL, NULL, &s), 0);
  ck_assert_int_eq(conc_loop_run(l), 0);
  ck_assert_str_eq(trace, "s");
  ck_assert_int_eq(conc_coro_result(h, NULL), 0);
  ck_assert_int_eq(conc_coro_result(s, NULL), 0);
  /* Finished: cancel has no effect. */
  ck_assert_int_eq(conc_coro_cancel(h), 0);
  ck_assert_int_eq(conc_coro_result(h, NULL), 0);
  conc_coro_release(h);
  conc_coro_release(s);
  ck_assert_int_eq(conc_loop_destroy(l), 0);
}
END_TEST

/* ---- await timeout ---- */

static int slow(void *arg, void **result) {
  (void)arg;
  *result = (void *)3;
  return conc_coro_sleep(0.1);
}

static int await_timeout_body(void *arg, void **result) {
  (void)arg;
  conc_coro *t = NULL;
  ck_assert_int_eq(conc_coro_spawn(NULL, slow, NULL, NULL, &t), 0);
  double t0 = conc_now();
  ck_assert_int_eq(conc_coro_await(t, 0, NULL), CONC_ETIMEDOUT);
  ck_assert_int_eq(conc_coro_await(t, 0.03, NULL), CONC_ETIMEDOUT);
  ck_assert(conc_now() - t0 >= 0.03);
  ck_assert_int_eq(conc_coro_await_until(t, t0 + 0.05, NULL), CONC_ETIMEDOUT);
  ck_assert(conc_now() - t0 >= 0.05);
  ck_assert_int_eq(conc_coro_await_until(t, NAN, NULL), CONC_EINVAL);
  void *r = NULL;
  ck_assert_int_eq(conc_coro_await_until(t, INFINITY, &r), 0);
  ck_assert_ptr_eq(r, (void *)3);
  ck_assert(conc_now() - t0 >= 0.1);
  conc_coro_release(t);
  *result = NULL;
  return 0;
}

START_TEST(coro_await_timeout) {
  ck_assert_int_eq(conc_coro_run(await_timeout_body, NULL, NULL), 0);
}
END_TEST

/* ---- errors outside a coroutine, bad arguments ---- */

static conc_coro *other_thread_handle;

static void *other_thread(void *arg) {
  conc_loop *l = arg;
  ck_assert_int_eq(conc_loop_run(l), CONC_EPERM);
  ck_assert_int_eq(conc_loop_destroy(l), CONC_EPERM);
  ck_assert_int_eq(conc_coro_spawn(l, ret_arg, NULL, NULL, NULL), CONC_EPERM);
  ck_assert_int_eq(conc_coro_cancel(other_thread_handle), CONC_EPERM);
  return NULL;
}


START_TEST(coro_eperm_outside) {
  ck_assert_ptr_null(conc_coro_self());
  ck_assert_int_eq(conc_coro_yield(), CONC_EPERM);
  ck_assert_int_eq(conc_coro_sleep(0.01), CONC_EPERM);
  ck_assert_int_eq(conc_coro_sleep_until(0), CONC_EPERM);
  ck_assert_int_eq(conc_coro_await(NULL, -1, NULL), CONC_EPERM);
  ck_assert_int_eq(conc_coro_await_until(NULL, 0, NULL), CONC_EPERM);
  conc_loop *l = new_loop();
  conc_coro *h = NULL;
  ck_assert_int_eq(conc_coro_spawn(l, ret_arg, NULL, NULL, &h), 0);
  ck_assert_int_eq(conc_coro_await(h, -1, NULL), CONC_EPERM);
  other_thread_handle = h;
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, other_thread, l), 0);
  ck_assert_int_eq(pthread_join(t, NULL), 0);
  ck_assert_int_eq(conc_loop_run(l), 0);
  conc_coro_release(h);
  ck_assert_int_eq(conc_loop_destroy(l), 0);
}
END_TEST

static int bad_args_body(void *arg, void **result) {
  conc_loop *l = arg;
  ck_assert_int_eq(conc_coro_sleep(-1), CONC_EINVAL);
  ck_assert_int_eq(conc_coro_sleep(NAN), CONC_EINVAL);
  ck_assert_int_eq(conc_coro_sleep_until(NAN), CONC_EINVAL);
  ck_assert_int_eq(conc_loop_run(l), CONC_EBUSY);
  ck_assert_int_eq(conc_loop_destroy(l), CONC_EBUSY);
  ck_assert_int_eq(conc_coro_run(ret_arg, NULL, NULL), CONC_EBUSY);
  *result = NULL;
  return 0;
}

START_TEST(coro_bad_args) {
  conc_loop *l = NULL;
  ck_assert_int_eq(conc_loop_create(NULL, NULL), CONC_EINVAL);
  conc_loop_options lo;
  conc_loop_options_init(&lo);
  lo.size = 1;
  ck_assert_int_eq(conc_loop_create(&lo, &l), CONC_EINVAL);
  conc_loop_options_init(&lo);
  lo.stack_size = (size_t)1 << 40;
  ck_assert_int_eq(conc_loop_create(&lo, &l), CONC_EINVAL);
  ck_assert_int_eq(conc_loop_run(NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_loop_destroy(NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_coro_cancel(NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_coro_result(NULL, NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_coro_spawn(NULL, ret_arg, NULL, NULL, NULL),
                   CONC_EINVAL);
  l = new_loop();
  conc_coro_options co;
  conc_coro_options_init(&co);
  co.size = 3;
  ck_assert_int_eq(conc_coro_spawn(l, ret_arg, NULL, &co, NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_coro_spawn(l, NULL, NULL, NULL, NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_coro_spawn(l, bad_args_body, l, NULL, NULL), 0);
  ck_assert_int_eq(conc_loop_run(l), 0);
  ck_assert_int_eq(conc_loop_run(l), 0); /* nothing left: returns at once */
  ck_assert_int_eq(conc_loop_destroy(l), 0);
}
END_TEST

START_TEST(coro_enomem) {
  conc_loop *l = NULL;
  conc_test_fail_alloc_after(1);
  ck_assert_int_eq(conc_loop_create(NULL, &l), CONC_ENOMEM);
  l = new_loop();
  for (long n = 1; n < 4; n++) {
    conc_test_fail_alloc_after(n);
    int err = conc_coro_spawn(l, ret_arg, NULL, NULL, NULL);
    conc_test_fail_alloc_after(0);
    if (err == 0)
      break;
    ck_assert_int_eq(err, CONC_ENOMEM);
  }
  ck_assert_int_eq(conc_loop_run(l), 0);
  ck_assert_int_eq(conc_loop_destroy(l), 0);
}
END_TEST

/* ---- deadlock, destroy with suspended coroutines ---- */

typedef struct pair {
  conc_coro *other;
  int got;
  void *owned;
} pair;

static int await_other(void *arg, void **result) {
  pair *p = arg;
  p->owned = malloc(32);
  ck_assert_int_eq(conc_coro_yield(), 0); /* let the other one be set */
  p->got = conc_coro_await(p->other, -1, NULL);
  free(p->owned);
  p->owned = NULL;
  *result = NULL;
  return p->got;
}

static int spawn_when_closing(void *arg, void **result) {
  int *got = arg;
  ck_assert_int_eq(conc_coro_sleep_until(INFINITY), CONC_ECANCELED);
  /* While the loop is destroyed every wait fails at once, and nothing new
   * may start. */
  ck_assert_int_eq(conc_coro_sleep(1), CONC_ECANCELED);
  ck_assert_int_eq(conc_coro_yield(), CONC_ECANCELED);
  *got = conc_coro_spawn(NULL, ret_arg, NULL, NULL, NULL);
  *result = NULL;
  return 0;
}

START_TEST(loop_deadlock_destroy) {
  conc_loop *l = new_loop();
  pair a = {0}, b = {0};
  conc_coro *ha = NULL, *hb = NULL;
  ck_assert_int_eq(conc_coro_spawn(l, await_other, &a, NULL, &ha), 0);
  ck_assert_int_eq(conc_coro_spawn(l, await_other, &b, NULL, &hb), 0);
  a.other = hb;
  b.other = ha;
  int got = 0;
  ck_assert_int_eq(conc_coro_spawn(l, spawn_when_closing, &got, NULL, NULL), 0);
  ck_assert_int_eq(conc_loop_run(l), CONC_EDEADLK);
  ck_assert_int_eq(conc_coro_result(ha, NULL), CONC_EAGAIN);
  ck_assert_int_eq(conc_loop_destroy(l), 0);
  ck_assert_int_eq(a.got, CONC_ECANCELED);
  ck_assert_int_eq(b.got, CONC_ECANCELED);
  ck_assert_ptr_null(a.owned);
  ck_assert_ptr_null(b.owned);
  ck_assert_int_eq(got, CONC_ECLOSED);
  ck_assert_int_eq(conc_coro_result(ha, NULL), CONC_ECANCELED);
  conc_coro_release(ha);
  conc_coro_release(hb);
}
END_TEST

static int hold_and_sleep(void *arg, void **result) {
  void *m = malloc(100);
  int err = conc_coro_sleep(1000);
  free(m);
  (*(int *)arg)++;
  *result = NULL;
  return err;
}

static int hold_forever(void *arg, void **result) {
  void *m = malloc(100);
  int err = conc_coro_sleep_until(INFINITY);
  free(m);
  (*(int *)arg)++;
  *result = NULL;
  return err;
}

START_TEST(loop_destroy_suspended) {
  int finished = 0;
  /* Never run. */
  conc_loop *l = new_loop();
  for (int i = 0; i < 10; i++)
    ck_assert_int_eq(conc_coro_spawn(l, hold_and_sleep, &finished, NULL, NULL),
                     0);
  ck_assert_int_eq(conc_loop_destroy(l), 0);
  ck_assert_int_eq(finished, 10);
  /* Suspended without deadline (run returned CONC_EDEADLK). */
  finished = 0;
  l = new_loop();
  conc_coro *h = NULL;
  ck_assert_int_eq(conc_coro_spawn(l, forever, NULL, NULL, &h), 0);
  for (int i = 0; i < 10; i++)
    ck_assert_int_eq(conc_coro_spawn(l, hold_forever, &finished, NULL, NULL),
                     0);
  ck_assert_int_eq(conc_loop_run(l), CONC_EDEADLK);
  ck_assert_int_eq(finished, 0);
  ck_assert_int_eq(conc_loop_destroy(l), 0);
  ck_assert_int_eq(finished, 10);
  ck_assert_int_eq(conc_coro_result(h, NULL), CONC_ECANCELED);
  conc_coro_release(h);
}
END_TEST

/* ---- coroutine-local values ---- */

static char key_a, key_b;
static int freed;

static void count_free(void *p) {
  freed++;
  free(p);
}

static int locals_body(void *arg, void **result) {
  void *v = (void *)1;
  ck_assert_int_eq(conc_coro_local_get(&key_a, &v), CONC_ENOENT);
  ck_assert_ptr_null(v);
  ck_assert_int_eq(conc_coro_local_get(NULL, &v), CONC_EINVAL);
  ck_assert_int_eq(conc_coro_local_set(NULL, arg, NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_coro_local_set(&key_a, arg, NULL), 0);
  int *owned = malloc(sizeof *owned);
  *owned = (int)(intptr_t)arg;
  ck_assert_int_eq(conc_coro_local_set(&key_b, owned, count_free), 0);
  ck_assert_int_eq(conc_coro_yield(), 0); /* the other one sets its own */
  ck_assert_int_eq(conc_coro_local_get(&key_a, &v), 0);
  ck_assert_ptr_eq(v, arg);
  ck_assert_int_eq(conc_coro_local_get(&key_b, &v), 0);
  ck_assert_int_eq(*(int *)v, (int)(intptr_t)arg);
  /* Same value again: no dtor; a new value: the old one is freed. */
  ck_assert_int_eq(conc_coro_local_set(&key_b, owned, count_free), 0);
  int before = freed;
  int *owned2 = malloc(sizeof *owned2);
  *owned2 = 0;
  ck_assert_int_eq(conc_coro_local_set(&key_b, owned2, count_free), 0);
  ck_assert_int_eq(freed, before + 1);
  /* Removing key_a (no dtor); key_b stays, freed when the coroutine ends. */
  ck_assert_int_eq(conc_coro_local_set(&key_a, NULL, NULL), 0);
  ck_assert_int_eq(conc_coro_local_get(&key_a, &v), CONC_ENOENT);
  ck_assert_int_eq(conc_coro_local_set(&key_a, NULL, NULL), 0);
  *result = NULL;
  return 0;
}

START_TEST(coro_locals) {
  void *v = NULL;
  ck_assert_int_eq(conc_coro_local_get(&key_a, &v), CONC_EPERM);
  ck_assert_int_eq(conc_coro_local_set(&key_a, &v, NULL), CONC_EPERM);
  freed = 0;
  conc_loop *l = new_loop();
  ck_assert_int_eq(conc_coro_spawn(l, locals_body, (void *)1, NULL, NULL), 0);
  ck_assert_int_eq(conc_coro_spawn(l, locals_body, (void *)2, NULL, NULL), 0);
  ck_assert_int_eq(conc_loop_run(l), 0);
  ck_assert_int_eq(freed, 4); /* two replaced, two at the end */
  ck_assert_int_eq(conc_loop_destroy(l), 0);
}
END_TEST

/* Cancel a coroutine that was woken (READY) before it ran again: the
 * cancel waits for its next waiting point.  Awaiters wake in the order
 * they started waiting, all queued by the finishing coroutine. */
static conc_coro *ready_target, *ready_gate;
static int gate_body(void *arg, void **result) {
  (void)arg;
  tr("g");
  ck_assert_int_eq(conc_coro_yield(), 0);
  *result = NULL;
  return 0;
}
static int ready_body(void *arg, void **result) {
  (void)arg;
  ck_assert_int_eq(conc_coro_await(ready_gate, -1, NULL), 0);
  tr("b");
  ck_assert_int_eq(conc_coro_yield(), CONC_ECANCELED);
  ck_assert_int_eq(conc_coro_yield(), 0);
  *result = NULL;
  return 0;
}
static int ready_canceller(void *arg, void **result) {
  (void)arg;
  ck_assert_int_eq(conc_coro_await(ready_gate, -1, NULL), 0);
  tr("c");
  ck_assert_int_eq(conc_coro_cancel(ready_target), 0);
  *result = NULL;
  return 0;
}

START_TEST(coro_cancel_ready) {
  tr_reset();
  conc_loop *l = new_loop();
  ck_assert_int_eq(conc_coro_spawn(l, ready_canceller, NULL, NULL, NULL), 0);
  ck_assert_int_eq(conc_coro_spawn(l, ready_body, NULL, NULL, &ready_target), 0);
  ck_assert_int_eq(conc_coro_spawn(l, gate_body, NULL, NULL, &ready_gate), 0);
  ck_assert_int_eq(conc_loop_run(l), 0);
  ck_assert_str_eq(trace, "gcb");
  ck_assert_int_eq(conc_coro_result(ready_target, NULL), 0);
  conc_coro_release(ready_target);
  conc_coro_release(ready_gate);
  ck_assert_int_eq(conc_loop_destroy(l), 0);
}
END_TEST

/* ---- timer heap: random deadlines, random cancels ---- */

enum { HEAP_N = 2000 };
typedef struct hs {
  double deadline;
  int cancelled;
  int got;
} hs;
static hs heap_s[HEAP_N];
static double heap_last;
static long heap_order_errors, heap_woken;

static int heap_sleeper(void *arg, void **result) {
  hs *h = arg;
  /* Armed from now, so never in the past even on a slow first tick. */
  h->deadline += conc_now();
  h->got = conc_coro_sleep_until(h->deadline);
  if (h->got == 0) {
    if (h->deadline < heap_last)
      heap_order_errors++;
    heap_last = h->deadline;
    heap_woken++;
    ck_assert(conc_now() >= h->deadline);
  }
  *result = NULL;
  return 0;
}

static int heap_canceller(void *arg, void **result) {
  conc_coro **hh = arg;
  for (int i = 0; i < HEAP_N; i++)
    if (heap_s[i].cancelled)
      ck_assert_int_eq(conc_coro_cancel(hh[i]), 0);
  *result = NULL;
  return 0;
}

START_TEST(coro_timer_heap_random) {
  unsigned seed = (unsigned)time(NULL);
  const char *env = getenv("CONC_TEST_SEED");
  if (env)
    seed = (unsigned)strtoul(env, NULL, 10);
  printf("coro_timer_heap_random: seed %u\n", seed);
  srand(seed);
  conc_loop *l = new_loop();
  static conc_coro *hh[HEAP_N];
  long expect = 0;
  for (int i = 0; i < HEAP_N; i++) {
    /* 1 ms buckets: many equal deadlines. */
    heap_s[i].deadline = 0.02 + (rand() % 100) * 0.001; /* offset */
    heap_s[i].cancelled = rand() % 3 == 0;
    heap_s[i].got = 1;
    expect += !heap_s[i].cancelled;
    ck_assert_int_eq(conc_coro_spawn(l, heap_sleeper, &heap_s[i], NULL, &hh[i]),
                     0);
  }
  ck_assert_int_eq(conc_coro_spawn(l, heap_canceller, hh, NULL, NULL), 0);
  heap_last = 0;
  heap_order_errors = heap_woken = 0;
  ck_assert_int_eq(conc_loop_run(l), 0);
  ck_assert_int_eq(heap_order_errors, 0);
  ck_assert_int_eq(heap_woken, expect);
  for (int i = 0; i < HEAP_N; i++) {
    ck_assert_int_eq(heap_s[i].got, heap_s[i].cancelled ? CONC_ECANCELED : 0);
    conc_coro_release(hh[i]);
  }
  ck_assert_int_eq(conc_loop_destroy(l), 0);
}
END_TEST

/* With every coroutine asleep the thread sleeps too: far less CPU time
 * than wall time (a generous bound; this is not a speed test). */
static int long_nap(void *arg, void **result) {
  (void)arg;
  *result = NULL;
  return conc_coro_sleep(0.3);
}

START_TEST(loop_sleeps_not_spins) {
  struct timespec c0, c1;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
  double t0 = conc_now();
  ck_assert_int_eq(conc_coro_run(long_nap, NULL, NULL), 0);
  double wall = conc_now() - t0;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
  double cpu = (double)(c1.tv_sec - c0.tv_sec) +
               (double)(c1.tv_nsec - c0.tv_nsec) * 1e-9;
  ck_assert(wall >= 0.3);
  ck_assert_msg(cpu < 0.5 * wall, "cpu %.3f s over wall %.3f s", cpu, wall);
}
END_TEST

/* ---- floating-point control state ---- */

static int fp_up(void *arg, void **result) {
  (void)arg;
  ck_assert_int_eq(fesetround(FE_UPWARD), 0);
  ck_assert_int_eq(conc_coro_yield(), 0);
  ck_assert_int_eq(fegetround(), FE_UPWARD);
  ck_assert_int_eq(conc_coro_yield(), 0);
  ck_assert_int_eq(fegetround(), FE_UPWARD);
  fesetround(FE_TONEAREST);
  *result = NULL;
  return 0;
}

static int fp_check(void *arg, void **result) {
  (void)arg;
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(fegetround(), FE_TONEAREST);
    ck_assert_int_eq(fesetround(FE_TOWARDZERO), 0);
    ck_assert_int_eq(conc_coro_yield(), 0);
    ck_assert_int_eq(fegetround(), FE_TOWARDZERO);
    fesetround(FE_TONEAREST);
  }
  *result = NULL;
  return 0;
}

START_TEST(coro_fp_isolation) {
  ck_assert_int_eq(fegetround(), FE_TONEAREST);
  conc_loop *l = new_loop();
  ck_assert_int_eq(conc_coro_spawn(l, fp_up, NULL, NULL, NULL), 0);
  ck_assert_int_eq(conc_coro_spawn(l, fp_check, NULL, NULL, NULL), 0);
  ck_assert_int_eq(conc_loop_run(l), 0);
  ck_assert_int_eq(fegetround(), FE_TONEAREST);
  ck_assert_int_eq(conc_loop_destroy(l), 0);
}
END_TEST

/* A new coroutine starts with its spawner's FP control state, even when
 * a coroutine with another state is the one that switches to it first. */
static int fp_child(void *arg, void **result) {
  (void)arg;
  *result = (void *)(intptr_t)fegetround();
  return 0;
}
static int fp_spawner(void *arg, void **result) {
  conc_coro **h = arg;
  ck_assert_int_eq(fesetround(FE_DOWNWARD), 0);
  ck_assert_int_eq(conc_coro_spawn(NULL, fp_child, NULL, NULL, h), 0);
  fesetround(FE_TONEAREST);
  *result = NULL;
  return 0;
}
static int fp_upward_runner(void *arg, void **result) {
  (void)arg;
  ck_assert_int_eq(fesetround(FE_UPWARD), 0);
  ck_assert_int_eq(conc_coro_yield(), 0); /* fp_child runs from here */
  fesetround(FE_TONEAREST);
  *result = NULL;
  return 0;
}

START_TEST(coro_fp_spawner_state) {
  conc_loop *l = new_loop();
  conc_coro *h = NULL;
  ck_assert_int_eq(conc_coro_spawn(l, fp_spawner, &h, NULL, NULL), 0);
  ck_assert_int_eq(conc_coro_spawn(l, fp_upward_runner, NULL, NULL, NULL), 0);
  ck_assert_int_eq(conc_loop_run(l), 0);
  void *r = NULL;
  ck_assert_int_eq(conc_coro_result(h, &r), 0);
  ck_assert_int_eq((int)(intptr_t)r, FE_DOWNWARD);
  conc_coro_release(h);
  ck_assert_int_eq(fegetround(), FE_TONEAREST);
  ck_assert_int_eq(conc_loop_destroy(l), 0);
}
END_TEST

/* Coroutines that keep yielding do not starve a timer: the scheduler
 * checks timers every few dozen switches, not only when the run queue
 * empties. */
static int yl_woke;
static long yl_yields;

static int yl_sleeper(void *arg, void **result) {
  (void)arg;
  ck_assert_int_eq(conc_coro_sleep(0.005), 0);
  yl_woke = 1;
  *result = NULL;
  return 0;
}
static int yl_yielder(void *arg, void **result) {
  (void)arg;
  double t0 = conc_now();
  while (!yl_woke) {
    ck_assert_msg(conc_now() - t0 < 10, "timer starved by yields");
    ck_assert_int_eq(conc_coro_yield(), 0);
    yl_yields++;
  }
  *result = NULL;
  return 0;
}

START_TEST(coro_yield_timer_not_starved) {
  conc_loop *l = new_loop();
  yl_woke = 0;
  ck_assert_int_eq(conc_coro_spawn(l, yl_sleeper, NULL, NULL, NULL), 0);
  ck_assert_int_eq(conc_coro_spawn(l, yl_yielder, NULL, NULL, NULL), 0);
  ck_assert_int_eq(conc_coro_spawn(l, yl_yielder, NULL, NULL, NULL), 0);
  ck_assert_int_eq(conc_loop_run(l), 0);
  ck_assert(yl_woke);
  ck_assert_int_eq(conc_loop_destroy(l), 0);
}
END_TEST

/* ---- many coroutines, small stacks ---- */

static long many_done;

static int small_body(void *arg, void **result) {
  char buf[512]; /* live locals across the waits */
  memset(buf, (int)(intptr_t)arg & 0x7f, sizeof buf);
  ck_assert_int_eq(conc_coro_yield(), 0);
  ck_assert_int_eq(conc_coro_sleep(0), 0);
  ck_assert_int_eq(buf[511], (char)((intptr_t)arg & 0x7f));
  many_done++;
  *result = arg;
  return 0;
}

static int many_parent(void *arg, void **result) {
  (void)arg;
  conc_coro_options o;
  conc_coro_options_init(&o);
  o.stack_size = 16 * 1024;
  conc_coro **h = malloc(MANY * sizeof *h);
  ck_assert_ptr_nonnull(h);
  for (long i = 0; i < MANY; i++)
    ck_assert_int_eq(conc_coro_spawn(NULL, small_body, (void *)(intptr_t)i, &o,
                                     i % 2 ? &h[i] : NULL), 0);
  for (long i = 1; i < MANY; i += 2) {
    void *r = NULL;
    ck_assert_int_eq(conc_coro_await(h[i], -1, &r), 0);
    ck_assert_ptr_eq(r, (void *)(intptr_t)i);
    conc_coro_release(h[i]);
  }
  free(h);
  *result = NULL;
  return 0;
}

START_TEST(coro_many) {
  many_done = 0;
  ck_assert_int_eq(conc_coro_run(many_parent, NULL, NULL), 0);
  ck_assert_int_eq(many_done, MANY);
}
END_TEST

/* ---- task groups ---- */

struct kid {
  double sleep;
  int fail; /* returned after the sleep */
  int got;  /* what the sleep returned */
  bool ran;
};

static int kid_main(void *arg, void **result) {
  struct kid *k = arg;
  k->ran = true;
  k->got = conc_coro_sleep(k->sleep);
  *result = k;
  if (k->got)
    return k->got;
  return k->fail;
}

static int group_ok_body(void *arg, void **result) {
  (void)arg;
  (void)result;
  struct kid kids[3] = {{0.003, 0, -1, false}, {0.001, 0, -1, false},
                        {0.002, 0, -1, false}};
  conc_coro_group *g;
  ck_assert_int_eq(conc_coro_group_create(&g), 0);
  conc_coro *h = NULL;
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(conc_coro_group_spawn(g, kid_main, &kids[i],
                                           i == 0 ? &h : NULL),
                     0);
  ck_assert_int_eq(conc_coro_group_wait(g), 0);
  for (int i = 0; i < 3; i++)
    ck_assert(kids[i].ran && kids[i].got == 0);
  void *r;
  ck_assert_int_eq(conc_coro_result(h, &r), 0);
  ck_assert_ptr_eq(r, &kids[0]);
  conc_coro_release(h);
  /* after the wait the group takes no more children */
  ck_assert_int_eq(conc_coro_group_spawn(g, kid_main, &kids[0], NULL),
                   CONC_ECLOSED);
  conc_coro_group_destroy(g);
  return 0;
}

START_TEST(group_all_succeed) {
  ck_assert_int_eq(conc_coro_run(group_ok_body, NULL, NULL), 0);
}
END_TEST

static int group_fail_body(void *arg, void **result) {
  (void)arg;
  (void)result;
  struct kid kids[3] = {{60, 0, -1, false}, {0.001, -77, -1, false},
                        {60, 0, -1, false}};
  conc_coro_group *g;
  ck_assert_int_eq(conc_coro_group_create(&g), 0);
  conc_coro *kh[3];
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(conc_coro_group_spawn(g, kid_main, &kids[i], &kh[i]), 0);
  double t0 = conc_now();
  ck_assert_int_eq(conc_coro_group_wait(g), -77); /* the first failure */
  ck_assert(conc_now() - t0 < 30);                 /* siblings cancelled */
  ck_assert_int_eq(kids[0].got, CONC_ECANCELED);
  ck_assert_int_eq(kids[2].got, CONC_ECANCELED);
  ck_assert_int_eq(conc_coro_result(kh[0], NULL), CONC_ECANCELED);
  ck_assert_int_eq(conc_coro_result(kh[1], NULL), -77);
  for (int i = 0; i < 3; i++)
    conc_coro_release(kh[i]);
  conc_coro_group_destroy(g);
  return 0;
}

START_TEST(group_first_failure_cancels_siblings) {
  ck_assert_int_eq(conc_coro_run(group_fail_body, NULL, NULL), 0);
}
END_TEST

static struct kid parent_kids[2];
static int group_parent(void *arg, void **result) {
  (void)arg;
  (void)result;
  conc_coro_group *g;
  ck_assert_int_eq(conc_coro_group_create(&g), 0);
  for (int i = 0; i < 2; i++) {
    parent_kids[i] = (struct kid){60, 0, -1, false};
    ck_assert_int_eq(conc_coro_group_spawn(g, kid_main, &parent_kids[i], NULL),
                     0);
  }
  int rc = conc_coro_group_wait(g);
  conc_coro_group_destroy(g);
  return rc;
}

static int group_cancel_body(void *arg, void **result) {
  (void)arg;
  (void)result;
  conc_coro *p;
  ck_assert_int_eq(conc_coro_spawn(NULL, group_parent, NULL, NULL, &p), 0);
  ck_assert_int_eq(conc_coro_yield(), 0); /* the parent starts its group */
  ck_assert_int_eq(conc_coro_yield(), 0); /* the kids start sleeping */
  ck_assert_int_eq(conc_coro_cancel(p), 0);
  ck_assert_int_eq(conc_coro_await(p, -1, NULL), CONC_ECANCELED);
  for (int i = 0; i < 2; i++)
    ck_assert_int_eq(parent_kids[i].got, CONC_ECANCELED);
  conc_coro_release(p);
  return 0;
}

START_TEST(group_parent_cancelled) {
  ck_assert_int_eq(conc_coro_run(group_cancel_body, NULL, NULL), 0);
}
END_TEST

static int group_destroy_body(void *arg, void **result) {
  (void)arg;
  (void)result;
  static struct kid k = {60, 0, -1, false};
  conc_coro_group *g;
  ck_assert_int_eq(conc_coro_group_create(&g), 0);
  ck_assert_int_eq(conc_coro_group_spawn(g, kid_main, &k, NULL), 0);
  ck_assert_int_eq(conc_coro_yield(), 0);
  conc_coro_group_destroy(g); /* cancels the child, which ends on its own */
  return 0;
}

START_TEST(group_errors_and_destroy) {
  conc_coro_group *g;
  ck_assert_int_eq(conc_coro_group_create(NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_coro_group_create(&g), 0);
  ck_assert_int_eq(conc_coro_group_spawn(g, kid_main, NULL, NULL), CONC_EPERM);
  ck_assert_int_eq(conc_coro_group_spawn(NULL, kid_main, NULL, NULL),
                   CONC_EINVAL);
  ck_assert_int_eq(conc_coro_group_spawn(g, NULL, NULL, NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_coro_group_wait(g), CONC_EPERM);
  ck_assert_int_eq(conc_coro_group_wait(NULL), CONC_EINVAL);
  conc_coro_group_destroy(g);
  conc_coro_group_destroy(NULL);
  ck_assert_int_eq(conc_coro_run(group_destroy_body, NULL, NULL), 0);
  ck_assert_ptr_null(conc_coro_retain(NULL));
}
END_TEST

CONC_TEST_MAIN("coro", coro_run_result, coro_spawn_await, coro_many_waiters,
               coro_yield_order, coro_sleep_order, coro_cancel_sleep,
               coro_cancel_yield, coro_cancel_await, coro_cancel_before_start,
               coro_await_timeout, coro_eperm_outside, coro_bad_args,
               coro_enomem, loop_deadlock_destroy, loop_destroy_suspended,
               coro_fp_isolation, coro_fp_spawner_state,
               coro_yield_timer_not_starved, coro_many, coro_locals, coro_cancel_ready,
               coro_timer_heap_random, loop_sleeps_not_spins, group_all_succeed,
               group_first_failure_cancels_siblings, group_parent_cancelled,
               group_errors_and_destroy)
