/* test-future.c - futures made and completed by hand; callbacks; wait and
 * as_completed over hand-made futures; the races that matter. */
#include "harness.h"
#include "internal.h"

#include <pthread.h>

START_TEST(future_create_and_set_result) {
  conc_future *f;
  ck_assert_int_eq(conc_future_create(&f), 0);
  ck_assert_int_eq(conc_future_get_state(f), CONC_FUTURE_PENDING);
  ck_assert(!conc_future_done(f));
  ck_assert(!conc_future_running(f));
  ck_assert_int_eq(conc_future_error(f, NULL, NULL), CONC_EAGAIN);
  ck_assert_int_eq(conc_future_set_running(f), 0);
  ck_assert(conc_future_running(f));
  ck_assert(!conc_future_cancel(f)); /* running: cannot cancel */
  ck_assert_int_eq(conc_future_set_result(f, (void *)42), 0);
  ck_assert(conc_future_done(f));
  ck_assert_int_eq(conc_future_get_state(f), CONC_FUTURE_FINISHED);
  void *r = NULL;
  ck_assert_int_eq(conc_future_result(f, 0, &r), 0);
  ck_assert_ptr_eq(r, (void *)42);
  ck_assert_int_eq(conc_future_error(f, NULL, NULL), 0);
  /* InvalidStateError */
  ck_assert_int_eq(conc_future_set_result(f, NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_future_set_error(f, 1, "x"), CONC_EINVAL);
  ck_assert_int_eq(conc_future_set_running(f), CONC_EINVAL);
  ck_assert_int_eq(conc_future_stop(f), CONC_EINVAL);
  conc_future_release(f);
}
END_TEST

START_TEST(future_set_error_details) {
  conc_future *f;
  ck_assert_int_eq(conc_future_create(&f), 0);
  ck_assert_int_eq(conc_future_set_error(f, 77, "bad input %d", 5), 0);
  void *r = (void *)1;
  ck_assert_int_eq(conc_future_result(f, -1, &r), CONC_ETASK);
  ck_assert_ptr_null(r);
  int detail;
  const char *msg;
  ck_assert_int_eq(conc_future_error(f, &detail, &msg), CONC_ETASK);
  ck_assert_int_eq(detail, 77);
  ck_assert_str_eq(msg, "bad input 5");
  ck_assert(!conc_future_cancelled(f));
  conc_future_release(f);
}
END_TEST

START_TEST(future_cancel_pending) {
  conc_future *f;
  ck_assert_int_eq(conc_future_create(&f), 0);
  ck_assert(conc_future_cancel(f));
  ck_assert(conc_future_cancel(f)); /* again: still true */
  ck_assert(conc_future_cancelled(f));
  ck_assert(conc_future_done(f));
  ck_assert_int_eq(conc_future_result(f, -1, NULL), CONC_ECANCELED);
  ck_assert_int_eq(conc_future_set_running(f), CONC_ECANCELED);
  ck_assert_int_eq(conc_future_set_result(f, NULL), CONC_EINVAL);
  conc_future_release(f);
}
END_TEST

START_TEST(future_invalid_arguments) {
  ck_assert_int_eq(conc_future_create(NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_future_result(NULL, 0, NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_future_result_until(NULL, 0, NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_future_wait(NULL, 0), CONC_EINVAL);
  ck_assert_int_eq(conc_future_error(NULL, NULL, NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_future_stop(NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_future_add_done_callback(NULL, NULL, NULL),
                   CONC_EINVAL);
  ck_assert_int_eq(conc_future_set_running(NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_future_set_result(NULL, NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_future_set_error(NULL, 0, NULL), CONC_EINVAL);
  ck_assert(!conc_future_cancel(NULL));
  ck_assert(!conc_future_done(NULL));
  conc_future_release(NULL);
  ck_assert_ptr_null(conc_future_retain(NULL));
}
END_TEST

START_TEST(future_result_timeout) {
  conc_future *f;
  ck_assert_int_eq(conc_future_create(&f), 0);
  double t0 = conc_now();
  ck_assert_int_eq(conc_future_result(f, 0.05, NULL), CONC_ETIMEDOUT);
  double dt = conc_now() - t0;
  ck_assert(dt >= 0.05 && dt < 10);
  t0 = conc_now();
  ck_assert_int_eq(conc_future_wait(f, 0.02), CONC_ETIMEDOUT);
  ck_assert(conc_now() - t0 >= 0.02);
  ck_assert_int_eq(conc_future_result_until(f, conc_now() + 0.02, NULL),
                   CONC_ETIMEDOUT);
  ck_assert_int_eq(conc_future_result(f, 0, NULL), CONC_ETIMEDOUT);
  conc_future_release(f);
}
END_TEST

START_TEST(future_retain_release) {
  conc_future *f;
  ck_assert_int_eq(conc_future_create(&f), 0);
  ck_assert_ptr_eq(conc_future_retain(f), f);
  conc_future_release(f);
  ck_assert_int_eq(conc_future_set_result(f, NULL), 0);
  conc_future_release(f);
}
END_TEST

/* ---- callbacks ---- */

typedef struct order_log {
  pthread_mutex_t mu;
  int seq[16];
  int n;
} order_log;

static order_log the_log = {PTHREAD_MUTEX_INITIALIZER, {0}, 0};
static int note_cb(conc_future *f, void *arg) {
  (void)f;
  pthread_mutex_lock(&the_log.mu);
  the_log.seq[the_log.n++] = (int)(intptr_t)arg;
  pthread_mutex_unlock(&the_log.mu);
  return 0;
}

START_TEST(future_callbacks_in_registration_order) {
  conc_future *f;
  ck_assert_int_eq(conc_future_create(&f), 0);
  for (int i = 1; i <= 5; i++)
    ck_assert_int_eq(conc_future_add_done_callback(f, note_cb,
                                                   (void *)(intptr_t)i),
                     0);
  ck_assert_int_eq(the_log.n, 0);
  ck_assert_int_eq(conc_future_set_result(f, NULL), 0);
  ck_assert_int_eq(the_log.n, 5);
  for (int i = 0; i < 5; i++)
    ck_assert_int_eq(the_log.seq[i], i + 1);
  /* already done: runs at once, on this thread */
  ck_assert_int_eq(conc_future_add_done_callback(f, note_cb, (void *)99), 0);
  ck_assert_int_eq(the_log.n, 6);
  ck_assert_int_eq(the_log.seq[5], 99);
  conc_future_release(f);
}
END_TEST

START_TEST(future_callback_on_cancel) {
  conc_future *f;
  ck_assert_int_eq(conc_future_create(&f), 0);
  ck_assert_int_eq(conc_future_add_done_callback(f, note_cb, (void *)7), 0);
  ck_assert(conc_future_cancel(f));
  ck_assert_int_eq(the_log.n, 1);
  conc_future_release(f);
}
END_TEST

static char logged[512];
static int log_count;
static void capture_log(conc_log_level level, const char *msg, void *ud) {
  (void)ud;
  if (level >= CONC_LOG_WARN) {
    snprintf(logged, sizeof logged, "%s", msg);
    log_count++;
  }
}
static int failing_cb(conc_future *f, void *arg) {
  (void)f;
  (void)arg;
  return -5;
}

START_TEST(future_failing_callback_is_logged) {
  conc_set_log_handler(capture_log, NULL);
  conc_future *f;
  ck_assert_int_eq(conc_future_create(&f), 0);
  ck_assert_int_eq(conc_future_add_done_callback(f, failing_cb, NULL), 0);
  ck_assert_int_eq(conc_future_add_done_callback(f, note_cb, (void *)3), 0);
  ck_assert_int_eq(conc_future_set_result(f, NULL), 0);
  ck_assert_int_eq(log_count, 1);
  ck_assert_ptr_nonnull(strstr(logged, "callback"));
  ck_assert_int_eq(the_log.n, 1); /* the next callback still ran */
  conc_log(CONC_LOG_ERROR, "direct %d", 1);
  ck_assert_str_eq(logged, "direct 1");
  conc_set_log_handler(NULL, NULL);
  conc_future_release(f);
}
END_TEST

START_TEST(future_callback_nomem) {
  conc_future *f;
  ck_assert_int_eq(conc_future_create(&f), 0);
  conc_test_fail_alloc_after(1);
  ck_assert_int_eq(conc_future_add_done_callback(f, note_cb, (void *)1),
                   CONC_ENOMEM);
  conc_test_fail_alloc_after(0);
  ck_assert_int_eq(conc_future_set_result(f, NULL), 0);
  ck_assert_int_eq(the_log.n, 0); /* the failed registration never runs */
  conc_future_release(f);
  conc_test_fail_alloc_after(1);
  ck_assert_int_eq(conc_future_create(&f), CONC_ENOMEM);
  conc_test_fail_alloc_after(0);
}
END_TEST

START_TEST(future_set_error_nomem_still_fails) {
  conc_future *f;
  ck_assert_int_eq(conc_future_create(&f), 0);
  conc_test_fail_alloc_after(1); /* the message cannot be allocated */
  ck_assert_int_eq(conc_future_set_error(f, 9, "msg"), 0);
  conc_test_fail_alloc_after(0);
  int d;
  const char *m;
  ck_assert_int_eq(conc_future_error(f, &d, &m), CONC_ETASK);
  ck_assert_int_eq(d, 9);
  ck_assert_ptr_nonnull(m);
  conc_future_release(f);
}
END_TEST

/* ---- races ---- */

static atomic_int cb_runs;
static int count_cb(conc_future *f, void *arg) {
  (void)f;
  (void)arg;
  atomic_fetch_add(&cb_runs, 1);
  return 0;
}

struct race_arg {
  conc_future *f;
  pthread_barrier_t *bar;
};
static void *adder(void *p) {
  struct race_arg *a = p;
  pthread_barrier_wait(a->bar);
  for (int i = 0; i < 4; i++)
    conc_future_add_done_callback(a->f, count_cb, NULL);
  return NULL;
}

START_TEST(future_race_callback_vs_complete) {
  for (int round = 0; round < 2000; round++) {
    atomic_store(&cb_runs, 0);
    conc_future *f;
    ck_assert_int_eq(conc_future_create(&f), 0);
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, 2);
    struct race_arg a = {f, &bar};
    pthread_t t;
    pthread_create(&t, NULL, adder, &a);
    pthread_barrier_wait(&bar);
    conc_future_set_result(f, NULL);
    pthread_join(t, NULL);
    pthread_barrier_destroy(&bar);
    ck_assert_int_eq(atomic_load(&cb_runs), 4); /* each exactly once */
    conc_future_release(f);
  }
}
END_TEST

static void *canceller(void *p) {
  struct race_arg *a = p;
  pthread_barrier_wait(a->bar);
  conc_future_cancel(a->f);
  return NULL;
}

START_TEST(future_race_cancel_vs_start) {
  int cancelled = 0, ran = 0;
  for (int round = 0; round < 2000; round++) {
    conc_future *f;
    ck_assert_int_eq(conc_future_create(&f), 0);
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, 2);
    struct race_arg a = {f, &bar};
    pthread_t t;
    pthread_create(&t, NULL, canceller, &a);
    pthread_barrier_wait(&bar);
    int rc = conc_future_set_running(f);
    if (rc == 0) {
      ck_assert_int_eq(conc_future_set_result(f, (void *)1), 0);
      ran++;
    } else {
      ck_assert_int_eq(rc, CONC_ECANCELED);
      cancelled++;
    }
    pthread_join(t, NULL);
    pthread_barrier_destroy(&bar);
    /* exactly one of the two happened */
    ck_assert(conc_future_cancelled(f) == (rc != 0));
    conc_future_release(f);
  }
  ck_assert_int_eq(cancelled + ran, 2000);
}
END_TEST

static void *completer(void *p) {
  conc_future *f = p;
  conc_future_set_result(f, (void *)5);
  return NULL;
}

START_TEST(future_wait_blocks_until_set) {
  for (int i = 0; i < 200; i++) {
    conc_future *f;
    ck_assert_int_eq(conc_future_create(&f), 0);
    pthread_t t;
    pthread_create(&t, NULL, completer, f);
    void *r;
    ck_assert_int_eq(conc_future_result(f, -1, &r), 0);
    ck_assert_ptr_eq(r, (void *)5);
    pthread_join(t, NULL);
    conc_future_release(f);
  }
}
END_TEST

/* ---- conc_wait and as_completed on hand-made futures ---- */

START_TEST(wait_first_completed_and_all) {
  conc_future *fs[3];
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(conc_future_create(&fs[i]), 0);
  bool done[3];
  size_t nd = 9;
  double t0 = conc_now();
  ck_assert_int_eq(conc_wait(fs, 3, 0.03, CONC_FIRST_COMPLETED, done, &nd),
                   CONC_ETIMEDOUT);
  ck_assert(conc_now() - t0 >= 0.03);
  ck_assert_uint_eq(nd, 0);
  conc_future_set_result(fs[1], NULL);
  ck_assert_int_eq(conc_wait(fs, 3, -1, CONC_FIRST_COMPLETED, done, &nd), 0);
  ck_assert_uint_eq(nd, 1);
  ck_assert(!done[0] && done[1] && !done[2]);
  ck_assert_int_eq(conc_wait(fs, 3, 0.01, CONC_ALL_COMPLETED, done, &nd),
                   CONC_ETIMEDOUT);
  /* FIRST_EXCEPTION: a cancel is not an exception */
  conc_future_cancel(fs[0]);
  ck_assert_int_eq(conc_wait(fs, 3, 0.01, CONC_FIRST_EXCEPTION, done, &nd),
                   CONC_ETIMEDOUT);
  ck_assert_uint_eq(nd, 2);
  pthread_t t;
  conc_future_set_running(fs[2]);
  pthread_create(&t, NULL, completer, fs[2]);
  ck_assert_int_eq(conc_wait(fs, 3, -1, CONC_ALL_COMPLETED, done, &nd), 0);
  pthread_join(t, NULL);
  ck_assert_uint_eq(nd, 3);
  for (int i = 0; i < 3; i++)
    conc_future_release(fs[i]);
}
END_TEST

static void *fail_later(void *p) {
  conc_future *f = p;
  conc_future_set_error(f, 3, "boom");
  return NULL;
}

START_TEST(wait_first_exception) {
  conc_future *fs[2];
  for (int i = 0; i < 2; i++)
    ck_assert_int_eq(conc_future_create(&fs[i]), 0);
  pthread_t t;
  pthread_create(&t, NULL, fail_later, fs[0]);
  size_t nd;
  ck_assert_int_eq(conc_wait(fs, 2, -1, CONC_FIRST_EXCEPTION, NULL, &nd), 0);
  pthread_join(t, NULL);
  ck_assert_uint_eq(nd, 1);
  ck_assert_int_eq(conc_wait(NULL, 1, 0, CONC_ALL_COMPLETED, NULL, NULL),
                   CONC_EINVAL);
  ck_assert_int_eq(conc_wait(fs, 2, 0, (conc_return_when)9, NULL, NULL),
                   CONC_EINVAL);
  ck_assert_int_eq(conc_wait(NULL, 0, 0, CONC_ALL_COMPLETED, NULL, NULL), 0);
  conc_future_set_result(fs[1], NULL);
  for (int i = 0; i < 2; i++)
    conc_future_release(fs[i]);
}
END_TEST

START_TEST(as_completed_order_and_timeout) {
  conc_future *fs[4];
  for (int i = 0; i < 4; i++)
    ck_assert_int_eq(conc_future_create(&fs[i]), 0);
  conc_future_set_result(fs[2], NULL); /* done before: yielded first */
  conc_as_completed *it;
  ck_assert_int_eq(conc_as_completed_create(fs, 4, -1, &it), 0);
  conc_future *f;
  ck_assert_int_eq(conc_as_completed_next(it, &f), 1);
  ck_assert_ptr_eq(f, fs[2]);
  conc_future_set_result(fs[0], NULL);
  ck_assert_int_eq(conc_as_completed_next(it, &f), 1);
  ck_assert_ptr_eq(f, fs[0]);
  pthread_t t;
  pthread_create(&t, NULL, completer, fs[3]);
  ck_assert_int_eq(conc_as_completed_next(it, &f), 1);
  ck_assert_ptr_eq(f, fs[3]);
  pthread_join(t, NULL);
  conc_as_completed_destroy(it);
  /* timeout counts from creation */
  ck_assert_int_eq(conc_as_completed_create(fs, 4, 0.03, &it), 0);
  double t0 = conc_now();
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(conc_as_completed_next(it, &f), 1);
  ck_assert_int_eq(conc_as_completed_next(it, &f), CONC_ETIMEDOUT);
  ck_assert(conc_now() - t0 >= 0.02);
  conc_as_completed_destroy(it); /* fs[1]'s callback still holds it */
  conc_future_set_result(fs[1], NULL);
  for (int i = 0; i < 4; i++)
    conc_future_release(fs[i]);
}
END_TEST

START_TEST(as_completed_end_and_errors) {
  conc_as_completed *it;
  ck_assert_int_eq(conc_as_completed_create(NULL, 0, -1, &it), 0);
  conc_future *f;
  ck_assert_int_eq(conc_as_completed_next(it, &f), 0);
  ck_assert_int_eq(conc_as_completed_next(NULL, &f), CONC_EINVAL);
  conc_as_completed_destroy(it);
  conc_as_completed_destroy(NULL);
  ck_assert_int_eq(conc_as_completed_create(NULL, 1, -1, &it), CONC_EINVAL);
  ck_assert_int_eq(conc_as_completed_create(NULL, 0, -1, NULL), CONC_EINVAL);
  conc_future *g;
  ck_assert_int_eq(conc_future_create(&g), 0);
  conc_test_fail_alloc_after(1);
  ck_assert_int_eq(conc_as_completed_create(&g, 1, -1, &it), CONC_ENOMEM);
  conc_test_fail_alloc_after(0);
  conc_future_set_result(g, NULL);
  conc_future_release(g);
}
END_TEST


/* ---- the record cache (fcache.c), with the C library's allocator ---- */

#define NREC 100000
static conc_future *recs[NREC];

static void *release_half(void *arg) {
  (void)arg; /* another thread drops the last reference of half of them */
  for (int i = 0; i < NREC; i += 2)
    conc_future_release(recs[i]);
  return NULL;
}

START_TEST(future_records_come_from_slabs_and_go_back) {
  conc_test_no_leak_check();
  conc_set_allocator(malloc, realloc, calloc, free); /* the cache is on */
  size_t slabs0, ret0, batches0;
  conc__fcache_stats(&slabs0, &ret0, &batches0);
  for (int i = 0; i < NREC; i++) {
    ck_assert_int_eq(conc_future_create(&recs[i]), 0);
    /* one cache line each */
    ck_assert_uint_eq((uintptr_t)recs[i] % 64, 0);
  }
  size_t slabs1, ret1, batches1;
  conc__fcache_stats(&slabs1, &ret1, &batches1);
  ck_assert_uint_ge(slabs1 + ret0, NREC / 1024); /* carved or reused */
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, release_half, NULL), 0);
  for (int i = 1; i < NREC; i += 2)
    conc_future_release(recs[i]);
  ck_assert_int_eq(pthread_join(t, NULL), 0); /* its list: to the depot */
  conc__fcache_drain();
  size_t slabs2, ret2, batches2;
  conc__fcache_stats(&slabs2, &ret2, &batches2);
  /* all free: every slab is given back (a few may sit in this thread's
   * list or be the slab it carves from) */
  ck_assert_uint_ge(ret2 + 4, slabs2);
  /* and reused before any new slab is carved */
  for (int i = 0; i < NREC; i++)
    ck_assert_int_eq(conc_future_create(&recs[i]), 0);
  size_t slabs3, ret3, batches3;
  conc__fcache_stats(&slabs3, &ret3, &batches3);
  ck_assert_uint_eq(slabs3, slabs2);
  for (int i = 0; i < NREC; i++) {
    ck_assert_int_eq(conc_future_set_result(recs[i], (void *)(intptr_t)i), 0);
    void *r;
    ck_assert_int_eq(conc_future_result(recs[i], 0, &r), 0);
    ck_assert_ptr_eq(r, (void *)(intptr_t)i);
    conc_future_release(recs[i]);
  }
  conc__fcache_drain();
}
END_TEST

CONC_TEST_MAIN("future", future_create_and_set_result,
               future_set_error_details, future_cancel_pending,
               future_records_come_from_slabs_and_go_back,
               future_invalid_arguments, future_result_timeout,
               future_retain_release, future_callbacks_in_registration_order,
               future_callback_on_cancel, future_failing_callback_is_logged,
               future_callback_nomem, future_set_error_nomem_still_fails,
               future_race_callback_vs_complete, future_race_cancel_vs_start,
               future_wait_blocks_until_set, wait_first_completed_and_all,
               wait_first_exception, as_completed_order_and_timeout,
               as_completed_end_and_errors)
