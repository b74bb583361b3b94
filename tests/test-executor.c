/* test-executor.c - the executor interface over the thread pool: map,
 * as_completed, wait, registered tasks, and the two examples of Python's
 * concurrent.futures documentation. */
#include "harness.h"

#include <math.h>

static conc_executor *make_pool(unsigned n) {
  conc_thread_pool_options o;
  conc_thread_pool_options_init(&o);
  o.max_workers = n;
  conc_executor *ex = NULL;
  ck_assert_int_eq(conc_thread_pool_create(&o, &ex), 0);
  return ex;
}

static void *twice(void *a) { return (void *)((intptr_t)a * 2); }

START_TEST(map_ordered_results) {
  conc_executor *ex = make_pool(4);
  enum { N = 1000 };
  static void *args[N];
  for (intptr_t i = 0; i < N; i++)
    args[i] = (void *)i;
  size_t chunks[] = {1, 3, 64, 5000};
  for (size_t c = 0; c < 4; c++) {
    conc_map_options o;
    conc_map_options_init(&o);
    o.chunksize = chunks[c];
    conc_map *m;
    ck_assert_int_eq(conc_executor_map(ex, twice, args, N, &o, &m), 0);
    void *r;
    intptr_t i = 0;
    while (conc_map_next(m, &r) == 1) {
      ck_assert_ptr_eq(r, (void *)(2 * i));
      i++;
    }
    ck_assert_int_eq(i, N);
    ck_assert_int_eq(conc_map_next(m, &r), 0); /* stays at the end */
    ck_assert_int_eq(conc_map_error(m, NULL, NULL), 0);
    conc_map_destroy(m);
  }
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST

static void *fail_at_7(void *a) {
  if ((intptr_t)a == 7)
    conc_task_fail(70, "item %d is bad", 7);
  return a;
}

START_TEST(map_stops_at_first_error) {
  conc_executor *ex = make_pool(2);
  static void *args[20];
  for (intptr_t i = 0; i < 20; i++)
    args[i] = (void *)i;
  for (size_t chunk = 1; chunk <= 4; chunk += 3) {
    conc_map_options o;
    conc_map_options_init(&o);
    o.chunksize = chunk;
    conc_map *m;
    ck_assert_int_eq(conc_executor_map(ex, fail_at_7, args, 20, &o, &m), 0);
    void *r;
    intptr_t i = 0;
    int rc;
    while ((rc = conc_map_next(m, &r)) == 1)
      ck_assert_ptr_eq(r, (void *)i++);
    ck_assert_int_eq(i, 7); /* results before the failing item */
    ck_assert_int_eq(rc, CONC_ETASK);
    int d;
    const char *msg;
    ck_assert_int_eq(conc_map_error(m, &d, &msg), CONC_ETASK);
    ck_assert_int_eq(d, 70);
    ck_assert_str_eq(msg, "item 7 is bad");
    ck_assert_int_eq(conc_map_next(m, &r), CONC_ETASK); /* stays failed */
    conc_map_destroy(m);
  }
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST

/* A lazy source that counts how far ahead of the consumer it was read. */
struct source {
  long next, n;
  long consumed;
  long max_ahead;
};
static int gen(void *ctx, void **arg) {
  struct source *s = ctx;
  if (s->next == s->n)
    return 0;
  long ahead = s->next - s->consumed;
  if (ahead > s->max_ahead)
    s->max_ahead = ahead;
  *arg = (void *)(intptr_t)s->next++;
  return 1;
}
static void *ident(void *a) { return a; }

START_TEST(map_bounded_in_flight_over_huge_source) {
#if defined(CONC_TEST_TSAN) || defined(CONC_TEST_ASAN)
  const long N = 200000;
#else
  const long N = 10000000; /* 10^7 items never become 10^7 futures */
#endif
  conc_executor *ex = make_pool(2);
  struct source s = {0, N, 0, 0};
  conc_map_options o;
  conc_map_options_init(&o);
  o.chunksize = 1000;
  o.buffersize = 4;
  conc_map *m;
  ck_assert_int_eq(conc_executor_map_source(ex, ident, gen, &s, &o, &m), 0);
  void *r;
  long sum_ok = 1;
  while (conc_map_next(m, &r) == 1) {
    if ((intptr_t)r != s.consumed)
      sum_ok = 0;
    s.consumed++;
  }
  ck_assert(sum_ok);
  ck_assert_int_eq(s.consumed, N);
  /* at most buffersize chunks (+ the one being yielded) read ahead */
  ck_assert_int_le(s.max_ahead, 5 * 1000);
  conc_map_destroy(m);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST

static int bad_gen(void *ctx, void **arg) {
  long *n = ctx;
  if (*n == 3)
    return CONC_ERANGE;
  *arg = (void *)(intptr_t)(*n)++;
  return 1;
}

START_TEST(map_source_error_and_invalid) {
  conc_executor *ex = make_pool(2);
  long n = 0;
  conc_map *m;
  ck_assert_int_eq(conc_executor_map_source(ex, ident, bad_gen, &n, NULL, &m),
                   0);
  void *r;
  int rc, k = 0;
  while ((rc = conc_map_next(m, &r)) == 1)
    k++;
  ck_assert_int_eq(k, 3);
  ck_assert_int_eq(rc, CONC_ERANGE);
  conc_map_destroy(m);
  ck_assert_int_eq(conc_executor_map(NULL, ident, NULL, 0, NULL, &m),
                   CONC_EINVAL);
  ck_assert_int_eq(conc_executor_map(ex, NULL, NULL, 0, NULL, &m),
                   CONC_EINVAL);
  ck_assert_int_eq(conc_executor_map(ex, ident, NULL, 3, NULL, &m),
                   CONC_EINVAL);
  ck_assert_int_eq(conc_executor_map_source(ex, ident, NULL, NULL, NULL, &m),
                   CONC_EINVAL);
  conc_map_options o;
  conc_map_options_init(&o);
  o.chunksize = 0;
  ck_assert_int_eq(conc_executor_map(ex, ident, NULL, 0, &o, &m), CONC_EINVAL);
  ck_assert_int_eq(conc_map_next(NULL, &r), CONC_EINVAL);
  ck_assert_int_eq(conc_map_error(NULL, NULL, NULL), CONC_EINVAL);
  conc_map_destroy(NULL);
  /* empty input */
  ck_assert_int_eq(conc_executor_map(ex, ident, NULL, 0, NULL, &m), 0);
  ck_assert_int_eq(conc_map_next(m, &r), 0);
  conc_map_destroy(m);
  conc_executor_shutdown(ex, true, false);
  static void *one[1];
  ck_assert_int_eq(conc_executor_map(ex, ident, one, 1, NULL, &m),
                   CONC_ESHUTDOWN);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST

static conc_test_latch gate;
static void *wait_gate(void *a) {
  conc_test_latch_wait(&gate);
  return a;
}

START_TEST(map_timeout_and_early_destroy) {
  conc_executor *ex = make_pool(2);
  conc_test_latch_init(&gate, 1);
  static void *args[10];
  conc_map_options o;
  conc_map_options_init(&o);
  o.timeout = 0.05;
  conc_map *m;
  double t0 = conc_now();
  ck_assert_int_eq(conc_executor_map(ex, wait_gate, args, 10, &o, &m), 0);
  void *r;
  ck_assert_int_eq(conc_map_next(m, &r), CONC_ETIMEDOUT);
  ck_assert(conc_now() - t0 >= 0.05);
  ck_assert_int_eq(conc_map_error(m, NULL, NULL), CONC_ETIMEDOUT);
  conc_test_latch_count_down(&gate);
  conc_map_destroy(m); /* cancels the rest, waits for the started ones */
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST

START_TEST(as_completed_over_pool) {
  conc_executor *ex = make_pool(3);
  conc_future *fs[50];
  for (intptr_t i = 0; i < 50; i++)
    ck_assert_int_eq(conc_executor_submit(ex, twice, (void *)i, &fs[i]), 0);
  conc_as_completed *it;
  ck_assert_int_eq(conc_as_completed_create(fs, 50, -1, &it), 0);
  bool seen[50] = {false};
  conc_future *f;
  int n = 0;
  while (conc_as_completed_next(it, &f) == 1) {
    void *r;
    ck_assert(conc_future_done(f));
    ck_assert_int_eq(conc_future_result(f, 0, &r), 0);
    intptr_t i = (intptr_t)r / 2;
    ck_assert(!seen[i]);
    seen[i] = true;
    n++;
  }
  ck_assert_int_eq(n, 50);
  conc_as_completed_destroy(it);
  for (int i = 0; i < 50; i++)
    conc_future_release(fs[i]);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST

START_TEST(wait_over_pool) {
  conc_executor *ex = make_pool(2);
  conc_test_latch_init(&gate, 1);
  conc_future *fs[3];
  ck_assert_int_eq(conc_executor_submit(ex, wait_gate, NULL, &fs[0]), 0);
  ck_assert_int_eq(conc_executor_submit(ex, twice, (void *)1, &fs[1]), 0);
  ck_assert_int_eq(conc_executor_submit(ex, fail_at_7, (void *)7, &fs[2]), 0);
  bool done[3];
  size_t nd;
  ck_assert_int_eq(conc_wait(fs, 3, -1, CONC_FIRST_EXCEPTION, done, &nd), 0);
  ck_assert(done[2]);
  ck_assert(!done[0]);
  ck_assert_int_eq(conc_wait(fs, 3, 0.02, CONC_ALL_COMPLETED, done, &nd),
                   CONC_ETIMEDOUT);
  conc_test_latch_count_down(&gate);
  ck_assert_int_eq(conc_wait(fs, 3, -1, CONC_ALL_COMPLETED, done, &nd), 0);
  ck_assert_uint_eq(nd, 3);
  for (int i = 0; i < 3; i++)
    conc_future_release(fs[i]);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST

/* ---- registered tasks through the executor ---- */

CONC_TASK(exec_sum_bytes, in, len, out) {
  uint32_t sum = 0;
  for (size_t i = 0; i < len; i++)
    sum += ((const unsigned char *)in)[i];
  return conc_bytes_append(out, &sum, sizeof sum);
}

CONC_TASK(exec_fails, in, len, out) {
  (void)in;
  (void)len;
  (void)out;
  return 5; /* a bare non-zero code */
}

START_TEST(executor_submit_task) {
  conc_executor *ex = make_pool(2);
  unsigned char data[1000];
  uint32_t want = 0;
  for (int i = 0; i < 1000; i++) {
    data[i] = (unsigned char)i;
    want += data[i];
  }
  conc_future *f;
  ck_assert_int_eq(
      conc_executor_submit_task(ex, "exec_sum_bytes", data, 1000, NULL, &f), 0);
  memset(data, 0, sizeof data); /* the input was copied */
  void *r;
  ck_assert_int_eq(conc_future_result(f, -1, &r), 0);
  const conc_bytes *b = r;
  ck_assert_uint_eq(b->len, 4);
  uint32_t got;
  memcpy(&got, b->data, 4);
  ck_assert_uint_eq(got, want);
  conc_future_release(f);
  ck_assert_int_eq(
      conc_executor_submit_task(ex, "exec_fails", NULL, 0, NULL, &f), 0);
  int d;
  ck_assert_int_eq(conc_future_result(f, -1, NULL), CONC_ETASK);
  ck_assert_int_eq(conc_future_error(f, &d, NULL), CONC_ETASK);
  ck_assert_int_eq(d, 5);
  conc_future_release(f);
  ck_assert_int_eq(
      conc_executor_submit_task(ex, "no_such_task", NULL, 0, NULL, &f),
      CONC_ENOENT);
  ck_assert_int_eq(conc_executor_submit_task(ex, NULL, NULL, 0, NULL, &f),
                   CONC_EINVAL);
  ck_assert_int_eq(
      conc_executor_submit_task(ex, "exec_sum_bytes", NULL, 4, NULL, &f),
      CONC_EINVAL);
  conc_test_fail_alloc_after(1);
  ck_assert_int_eq(
      conc_executor_submit_task(ex, "exec_sum_bytes", data, 4, NULL, &f),
      CONC_ENOMEM);
  conc_test_fail_alloc_after(0);
  conc_executor_shutdown(ex, true, false);
  ck_assert_int_eq(
      conc_executor_submit_task(ex, "exec_sum_bytes", data, 4, NULL, &f),
      CONC_ESHUTDOWN);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST

/* ---- Python docs example 1: ProcessPoolExecutor prime checking ---- */

static const long PRIMES[] = {112272535095293L, 112582705942171L,
                              112272535095293L, 115280095190773L,
                              115797848077099L, 1099726899285419L};

static void *is_prime(void *a) {
  long n = *(const long *)a;
  if (n < 2)
    return (void *)0;
  if (n == 2)
    return (void *)1;
  if (n % 2 == 0)
    return (void *)0;
  long sqrt_n = (long)floor(sqrt((double)n));
  for (long i = 3; i <= sqrt_n; i += 2)
    if (n % i == 0)
      return (void *)0;
  return (void *)1;
}

START_TEST(python_docs_prime_example) {
  conc_executor *ex = make_pool(2);
  void *args[6];
  for (int i = 0; i < 6; i++)
    args[i] = (void *)&PRIMES[i];
  conc_map *m;
  ck_assert_int_eq(conc_executor_map(ex, is_prime, args, 6, NULL, &m), 0);
  const int want[] = {1, 1, 1, 1, 1, 0};
  void *r;
  int i = 0;
  while (conc_map_next(m, &r) == 1) {
    ck_assert_int_eq((int)(intptr_t)r, want[i]);
    i++;
  }
  ck_assert_int_eq(i, 6);
  conc_map_destroy(m);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST

/* ---- Python docs example 2: load URLs with as_completed; local sources
 * of different sizes stand in for the pages, one of which fails. ---- */

struct source_page {
  const char *url;
  size_t size; /* 0: the source fails, as a URL that raises */
};
static void *load_url(void *a) {
  const struct source_page *p = a;
  if (p->size == 0) {
    conc_task_fail(404, "%s: not found", p->url);
    return NULL;
  }
  size_t n = 0;
  for (size_t i = 0; i < p->size; i++) /* "download" */
    n += (i * 31 + 7) % 2 == 0 ? 1 : 1;
  return (void *)n;
}

START_TEST(python_docs_load_urls_example) {
  static const struct source_page pages[] = {
      {"http://www.foxnews.com/", 3000}, {"http://www.cnn.com/", 1000},
      {"http://europe.wsj.com/", 2000},  {"http://www.bbc.co.uk/", 500},
      {"http://nonexistant-subdomain.python.org/", 0}};
  conc_executor *ex = make_pool(5);
  conc_future *fs[5];
  for (int i = 0; i < 5; i++)
    ck_assert_int_eq(
        conc_executor_submit(ex, load_url, (void *)&pages[i], &fs[i]), 0);
  conc_as_completed *it;
  ck_assert_int_eq(conc_as_completed_create(fs, 5, 60, &it), 0);
  conc_future *f;
  int ok = 0, failed = 0;
  while (conc_as_completed_next(it, &f) == 1) {
    int i = 0;
    while (fs[i] != f)
      i++;
    void *r;
    int rc = conc_future_result(f, 0, &r);
    if (rc == 0) {
      ck_assert_uint_eq((size_t)r, pages[i].size); /* "%r page is %d bytes" */
      ok++;
    } else {
      const char *msg;
      ck_assert_int_eq(conc_future_error(f, NULL, &msg), CONC_ETASK);
      ck_assert_ptr_nonnull(strstr(msg, "not found")); /* "generated an
                                                          exception" */
      failed++;
    }
  }
  ck_assert_int_eq(ok, 4);
  ck_assert_int_eq(failed, 1);
  conc_as_completed_destroy(it);
  for (int i = 0; i < 5; i++)
    conc_future_release(fs[i]);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST

/* ---- conc_executor_for ---- */

struct for_ctx {
  uint32_t *out;
  atomic_long calls;
};
static int square_range(size_t b, size_t e, void *ctx) {
  struct for_ctx *c = ctx;
  atomic_fetch_add(&c->calls, 1);
  for (size_t i = b; i < e; i++)
    c->out[i] = (uint32_t)(i * i);
  return 0;
}

START_TEST(for_covers_range_once) {
  conc_executor *ex = make_pool(3);
  enum { N = 100003 };
  uint32_t *out = calloc(N, sizeof *out);
  size_t grains[] = {0, 1, 7, 1000, N, 10 * N};
  for (size_t g = 0; g < 6; g++) {
    memset(out, 0xff, N * sizeof *out);
    struct for_ctx c = {out, 0};
    ck_assert_int_eq(conc_executor_for(ex, N, grains[g], square_range, &c), 0);
    for (size_t i = 0; i < N; i++)
      ck_assert_uint_eq(out[i], (uint32_t)(i * i));
    if (grains[g])
      ck_assert_int_eq(atomic_load(&c.calls),
                       (long)((N - 1) / grains[g] + 1));
  }
  struct for_ctx c = {out, 0};
  ck_assert_int_eq(conc_executor_for(ex, 0, 0, square_range, &c), 0);
  ck_assert_int_eq(atomic_load(&c.calls), 0);
  ck_assert_int_eq(conc_executor_for(NULL, 1, 0, square_range, &c),
                   CONC_EINVAL);
  ck_assert_int_eq(conc_executor_for(ex, 1, 0, NULL, &c), CONC_EINVAL);
  conc_executor_shutdown(ex, true, false);
  ck_assert_int_eq(conc_executor_for(ex, 100, 1, square_range, &c),
                   CONC_ESHUTDOWN);
  ck_assert_int_eq(atomic_load(&c.calls), 0);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
  free(out);
}
END_TEST

static int stop_at_500(size_t b, size_t e, void *ctx) {
  (void)ctx;
  return b <= 500 && 500 < e ? -77 : 0;
}

START_TEST(for_stops_at_body_error) {
  conc_executor *ex = make_pool(2);
  ck_assert_int_eq(conc_executor_for(ex, 100000, 10, stop_at_500, NULL), -77);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST

static conc_executor *for_pool;
static int inner_sum(size_t b, size_t e, void *ctx) {
  atomic_long *sum = ctx;
  for (size_t i = b; i < e; i++)
    atomic_fetch_add(sum, (long)i);
  return 0;
}
static void *outer_task(void *arg) {
  atomic_long *sum = arg;
  /* a task of the pool runs a loop on the same pool: the waiting worker
   * helps, so this finishes even with one worker */
  return (void *)(intptr_t)conc_executor_for(for_pool, 1000, 10, inner_sum,
                                             sum);
}

START_TEST(for_from_inside_a_task) {
  for_pool = make_pool(1);
  atomic_long sum = 0;
  conc_future *f;
  ck_assert_int_eq(conc_executor_submit(for_pool, outer_task, &sum, &f), 0);
  void *r;
  ck_assert_int_eq(conc_future_result(f, -1, &r), 0);
  ck_assert_int_eq((int)(intptr_t)r, 0);
  ck_assert_int_eq(atomic_load(&sum), 999L * 1000 / 2);
  conc_future_release(f);
  ck_assert_int_eq(conc_executor_destroy(for_pool), 0);
}
END_TEST

START_TEST(for_helpers_nomem_caller_runs_all) {
  conc_executor *ex = make_pool(2);
  atomic_long sum = 0;
  /* warm up so the workers exist, then make every helper submission fail */
  ck_assert_int_eq(conc_executor_for(ex, 10, 1, inner_sum, &sum), 0);
  atomic_store(&sum, 0);
  conc_test_fail_alloc_after(1);
  int rc = conc_executor_for(ex, 1000, 10, inner_sum, &sum);
  conc_test_fail_alloc_after(0);
  ck_assert_int_eq(rc, 0);
  ck_assert_int_eq(atomic_load(&sum), 999L * 1000 / 2);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST

CONC_TEST_MAIN("executor", map_ordered_results, map_stops_at_first_error,
               map_bounded_in_flight_over_huge_source,
               map_source_error_and_invalid, map_timeout_and_early_destroy,
               as_completed_over_pool, wait_over_pool, executor_submit_task,
               python_docs_prime_example, python_docs_load_urls_example,
               for_covers_range_once, for_stops_at_body_error,
               for_from_inside_a_task, for_helpers_nomem_caller_runs_all)
