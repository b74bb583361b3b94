/* test-crawl-fetch.c - conc-crawl's politeness limits and fetch helpers
 * (crawl/fetch.c): per-host slots, the rate limiter, backoff, outcome
 * names, and the split of connections between pages and images.  The
 * transfers themselves are tested end to end in test-crawl-engines.c. */
#include "harness.h"

#include <sys/wait.h>

#include "../crawl/crawl.h"
#include "../crawl/fetch.h"

START_TEST(fetch_per_host_slots) {
  limits l;
  ck_assert_int_eq(limits_init(&l, 2, 0, false), 0);
  unsigned a, b, c;
  ck_assert_int_eq(limits_acquire(&l, "http://h.test/1", 0, &a), 0);
  ck_assert_int_eq(limits_acquire(&l, "http://h.test/2", 0, &b), 0);
  ck_assert_uint_eq(a, b); /* one host, one slot */
  /* a third request to the host waits (here: times out) */
  double t0 = conc_now();
  ck_assert_int_eq(limits_acquire(&l, "http://h.test/3", 0.05, &c),
                   CONC_ETIMEDOUT);
  ck_assert(conc_now() - t0 >= 0.05);
  limits_release(&l, a);
  ck_assert_int_eq(limits_acquire(&l, "http://h.test/3", 0, &c), 0);
  limits_release(&l, b);
  limits_release(&l, c);
  limits_destroy(&l);
}
END_TEST

START_TEST(fetch_slots_shared_across_processes) {
  conc_shm shm;
  memset(&shm, 0, sizeof shm);
  ck_assert_int_eq(conc_shm_create_anon(&shm, sizeof(limits)), 0);
  limits *l = conc_shm_addr(&shm);
  ck_assert_int_eq(limits_init(l, 1, 0, true), 0);
  unsigned s;
  ck_assert_int_eq(limits_acquire(l, "http://h.test/", 0, &s), 0);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    unsigned t;
    /* the parent holds the host's only slot */
    CHILD_CHECK(limits_acquire(l, "http://h.test/x", 0, &t) ==
                CONC_ETIMEDOUT);
    _exit(0);
  }
  int st;
  ck_assert_int_eq(waitpid(pid, &st, 0), pid);
  ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  limits_release(l, s);
  limits_destroy(l);
  ck_assert_int_eq(conc_shm_close(&shm), 0);
}
END_TEST

START_TEST(fetch_rate_limiter) {
  limits l;
  ck_assert_int_eq(limits_init(&l, 1, 10, false), 0); /* 10 per second */
  double w0 = limits_rate_reserve(&l), w1 = limits_rate_reserve(&l),
         w2 = limits_rate_reserve(&l);
  ck_assert(w0 <= 0.001);
  ck_assert(w1 >= 0.09 && w1 <= 0.1 + 1e-9);
  ck_assert(w2 >= 0.19 && w2 <= 0.2 + 1e-9);
  limits_destroy(&l);
  ck_assert_int_eq(limits_init(&l, 1, 0, false), 0); /* no limit */
  ck_assert(limits_rate_reserve(&l) == 0);
  ck_assert(limits_rate_reserve(&l) == 0);
  limits_destroy(&l);
}
END_TEST

START_TEST(fetch_backoff_and_names) {
  fetch_opts o = {.backoff = 0.25};
  ck_assert(fetch_backoff(&o, 1) == 0.25);
  ck_assert(fetch_backoff(&o, 2) == 0.5);
  ck_assert(fetch_backoff(&o, 3) == 1.0);
  ck_assert(fetch_backoff(&o, 20) == 30); /* capped */
  ck_assert_str_eq(fetch_kind_name(FETCH_OK), "ok");
  ck_assert_str_eq(fetch_kind_name(FETCH_HTTP_404), "http_404");
  ck_assert_str_eq(fetch_kind_name(FETCH_TOO_LARGE), "too_large");
  ck_assert_str_eq(fetch_kind_name(FETCH_KINDS), "other");
  ck_assert_str_eq(fetch_kind_name(-1), "other");
  fetch_result r = {.kind = FETCH_HTTP_5XX};
  ck_assert(fetch_retryable(&r));
  r.kind = FETCH_RESET;
  ck_assert(fetch_retryable(&r));
  r.kind = FETCH_HTTP_404;
  ck_assert(!fetch_retryable(&r));
  r.kind = FETCH_TIMEOUT;
  ck_assert(!fetch_retryable(&r));
}
END_TEST

START_TEST(fetch_connection_split) {
  unsigned p, i;
  crawl_split(16, &p, &i);
  ck_assert_uint_eq(p, 4);
  ck_assert_uint_eq(i, 12);
  crawl_split(1, &p, &i);
  ck_assert_uint_eq(p, 1);
  ck_assert_uint_eq(i, 1);
  crawl_split(3, &p, &i);
  ck_assert_uint_eq(p, 1);
  ck_assert_uint_eq(i, 2);
}
END_TEST

CONC_TEST_MAIN("crawl-fetch", fetch_per_host_slots,
               fetch_slots_shared_across_processes, fetch_rate_limiter,
               fetch_backoff_and_names, fetch_connection_split)
