/* test-oom.c - allocation-failure injection (SQLite / curl torture style).
 *
 * One scenario exercises the pool, futures, callbacks, map, as_completed,
 * wait and registered tasks.  It runs once with every allocation allowed to
 * count them, then once per allocation with exactly that one failing.  Each
 * run must end cleanly: every call reports CONC_ENOMEM (or succeeds), no
 * call aborts, nothing leaks, and the scenario's own checks still hold for
 * whatever did succeed. */
#include "harness.h"

static void *twice(void *a) { return (void *)((intptr_t)a * 2); }

CONC_TASK(oom_echo, in, len, out) { return conc_bytes_append(out, in, len); }

static int noted;
static int note(conc_future *f, void *arg) {
  (void)f;
  (void)arg;
  __atomic_fetch_add(&noted, 1, __ATOMIC_SEQ_CST);
  return 0;
}

/* Returns 0 if everything succeeded, else the first error seen.  Frees all
 * it made either way. */
static int scenario(void) {
  int first = 0;
#define NOTE(rc)                                                              \
  do {                                                                        \
    int rc_ = (rc);                                                           \
    if (rc_ < 0) {                                                            \
      ck_assert_msg(rc_ == CONC_ENOMEM || rc_ == CONC_EAGAIN,                 \
                    "unexpected %s at line %d", conc_err_name(rc_),           \
                    __LINE__);                                                \
      if (!first)                                                             \
        first = rc_;                                                          \
    }                                                                         \
  } while (0)
  conc_thread_pool_options o;
  conc_thread_pool_options_init(&o);
  o.max_workers = 2;
  conc_executor *ex = NULL;
  int rc = conc_thread_pool_create(&o, &ex);
  NOTE(rc);
  if (rc)
    return first;
  conc_future *fs[8] = {NULL};
  size_t nf = 0;
  for (intptr_t i = 0; i < 8; i++) {
    rc = conc_executor_submit(ex, twice, (void *)i, &fs[nf]);
    NOTE(rc);
    if (rc == 0) {
      NOTE(conc_future_add_done_callback(fs[nf], note, NULL));
      nf++;
    }
  }
  conc_as_completed *it = NULL;
  rc = conc_as_completed_create(fs, nf, -1, &it);
  NOTE(rc);
  if (rc == 0) {
    conc_future *f;
    size_t got = 0;
    while (conc_as_completed_next(it, &f) == 1)
      got++;
    ck_assert_uint_eq(got, nf);
    conc_as_completed_destroy(it);
  }
  size_t nd = 0;
  rc = conc_wait(fs, nf, -1, CONC_FIRST_COMPLETED, NULL, &nd);
  NOTE(rc);
  for (size_t i = 0; i < nf; i++) {
    void *r;
    ck_assert_int_eq(conc_future_result(fs[i], -1, &r), 0);
    conc_future_release(fs[i]);
  }
  static void *args[20];
  for (intptr_t i = 0; i < 20; i++)
    args[i] = (void *)i;
  conc_map_options mo;
  conc_map_options_init(&mo);
  mo.chunksize = 3;
  conc_map *m = NULL;
  rc = conc_executor_map(ex, twice, args, 20, &mo, &m);
  NOTE(rc);
  if (rc == 0) {
    void *r;
    intptr_t i = 0;
    while ((rc = conc_map_next(m, &r)) == 1) {
      ck_assert_ptr_eq(r, (void *)(2 * i));
      i++;
    }
    NOTE(rc);
    if (rc == 0)
      ck_assert_int_eq(i, 20);
    conc_map_destroy(m);
  }
  conc_future *t = NULL;
  rc = conc_executor_submit_task(ex, "oom_echo", "abc", 3, NULL, &t);
  NOTE(rc);
  if (rc == 0) {
    void *r;
    rc = conc_future_result(t, -1, &r);
    NOTE(rc == CONC_ETASK ? CONC_ENOMEM : rc); /* append may fail */
    conc_future_release(t);
  }
  conc_future *h = NULL;
  rc = conc_future_create(&h);
  NOTE(rc);
  if (rc == 0) {
    NOTE(conc_future_set_error(h, 1, "message %d", 1));
    conc_future_release(h);
  }
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
  return first;
#undef NOTE
}

static void quiet(conc_log_level l, const char *m, void *u) {
  (void)l;
  (void)m;
  (void)u;
}

START_TEST(oom_every_allocation_fails_cleanly) {
  conc_set_log_handler(quiet, NULL); /* "cannot start a worker" and such */
  long base = conc_test_live_blocks();
  long before = conc_test_alloc_count();
  ck_assert_int_eq(scenario(), 0);
  long total = conc_test_alloc_count() - before;
  ck_assert_int_gt(total, 10);
  ck_assert_int_eq(conc_test_live_blocks(), base);
  int failures_seen = 0;
  /* allocations vary a little between runs (threads): go a bit past */
  for (long n = 1; n <= total + 20; n++) {
    conc_test_fail_alloc_after(n);
    int rc = scenario();
    conc_test_fail_alloc_after(0);
    if (rc)
      failures_seen++;
    ck_assert_msg(conc_test_live_blocks() == base,
                  "failing allocation %ld leaked %ld block(s)", n,
                  conc_test_live_blocks() - base);
  }
  ck_assert_int_gt(failures_seen, 0);
  printf("oom: %ld allocations, %d runs reported CONC_ENOMEM\n", total,
         failures_seen);
  conc_set_log_handler(NULL, NULL);
}
END_TEST

CONC_TEST_MAIN("oom", oom_every_allocation_fails_cleanly)
