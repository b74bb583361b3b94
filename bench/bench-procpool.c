/* bench/bench-procpool.c - conc's process pool (workload 9).
 *
 *   bench-procpool one N              tiny tasks, one in flight per worker
 *   bench-procpool map CHUNK N [D [F]] tiny tasks through
 *                                     conc_executor_map_task (chunksize
 *                                     CHUNK, buffersize 4096; pool option
 *                                     max_in_flight D, 0: the pool's) with
 *                                     issue 7's feature F switched on:
 *                                     timing (CONC_EXECUTOR_TIMING),
 *                                     bounded (max_queued, never full),
 *                                     stats (statistics read at the end)
 *   bench-procpool big N              1 MiB in, 1 MiB out per task
 *                                     (map_task, chunksize 1, buffersize 4)
 *   bench-procpool start N [MB]       N times: create the pool and get a
 *                                     first result (after touching MB MiB
 *                                     of the parent's memory first)
 *   bench-procpool idle MS            CPU of the whole pool over MS ms once
 *                                     idle, after some work
 *
 * Two workers everywhere.  Every result is checked (procpool-common.h: the
 * tiny task's mix of its input; the payload compared byte for byte); a
 * wrong one exits 2.  conc_init is the first call: the pool's fork server is
 * this program run again, and stops there.
 *
 * Per task: total time / N.  `one` also reports the CPU seconds per task of
 * the whole pool - this process (getrusage: the caller and the collector
 * thread) plus the fork server and the workers (/proc) - as cpu_task_us.
 */
#include "procpool-common.h"

#include <conc/base.h>
#include <conc/error.h>
#include <conc/executor.h>
#include <conc/future.h>
#include <conc/process_pool.h>
#include <conc/task.h>

#define CONC_OK(call)                                                         \
  do {                                                                        \
    int rc_ = (call);                                                         \
    BENCH_CHECK(rc_ == 0, "%s: %s", #call, conc_strerror(rc_));               \
  } while (0)

#define WORKERS 2

CONC_TASK(pb_tiny, in, len, out) {
  uint64_t x;
  if (len != sizeof x) return conc_task_fail(1, "pb_tiny: %zu bytes", len);
  memcpy(&x, in, sizeof x);
  x = pp_tiny(x);
  return conc_bytes_append(out, &x, sizeof x);
}

CONC_TASK(pb_big, in, len, out) {
  int rc = conc_bytes_reserve(out, len);
  if (rc) return rc;
  pp_big((const unsigned char *)in, len, out->data + out->len);
  out->len += len;
  return 0;
}

static unsigned max_in_flight; /* 0: the pool's default */
static const char *feature = ""; /* issue 7's feature cost rows */

static conc_executor *pool(void) {
  conc_process_pool_options o;
  conc_executor *ex = NULL;
  conc_process_pool_options_init(&o);
  o.max_workers = WORKERS;
  o.flags = CONC_EXECUTOR_NO_EXIT_HOOK;
  o.max_in_flight = max_in_flight;
  if (strcmp(feature, "timing") == 0)
    o.flags |= CONC_EXECUTOR_TIMING;
  else if (strcmp(feature, "bounded") == 0)
    o.max_queued = 1u << 20;
  CONC_OK(conc_process_pool_create(&o, &ex));
  return ex;
}

static void check_tiny(const conc_bytes *b, uint64_t i) {
  uint64_t y;
  BENCH_CHECK(b && b->len == sizeof y, "task %llu: %zu bytes out",
              (unsigned long long)i, b ? b->len : 0);
  memcpy(&y, b->data, sizeof y);
  BENCH_CHECK(y == pp_tiny(i), "task %llu: wrong result", (unsigned long long)i);
}

static conc_future *submit_tiny(conc_executor *ex, uint64_t i) {
  conc_future *f;
  CONC_OK(conc_executor_submit_task(ex, "pb_tiny", &i, sizeof i, NULL, &f));
  return f;
}

static void wait_tiny(conc_future *f, uint64_t i) {
  void *r;
  int rc = conc_future_result(f, -1, &r);
  BENCH_CHECK(rc == 0, "task %llu: %s", (unsigned long long)i, conc_strerror(rc));
  check_tiny(r, i);
  conc_future_release(f);
}

/* Keep exactly one task in flight per worker; n tasks from `first`. */
static void run_window(conc_executor *ex, uint64_t first, long n) {
  conc_future *f[WORKERS];
  long k = n < WORKERS ? n : WORKERS;
  for (long j = 0; j < k; j++) f[j] = submit_tiny(ex, first + (uint64_t)j);
  for (long i = 0; i < n; i++) {
    wait_tiny(f[i % WORKERS], first + (uint64_t)i);
    if (i + WORKERS < n)
      f[i % WORKERS] = submit_tiny(ex, first + (uint64_t)(i + WORKERS));
  }
}

static int pool_pids(conc_executor *ex, int *pids) {
  int np = conc_process_pool_pids(ex, pids, 8);
  BENCH_CHECK(np == 1 + WORKERS, "%d pool processes, expected %d", np, 1 + WORKERS);
  return np;
}

static void row_one(long n) {
  conc_executor *ex = pool();
  int pids[8];
  run_window(ex, 1u << 30, 200); /* warm-up */
  int np = pool_pids(ex, pids);
  double c0 = pp_total_cpu(pids, np);
  int64_t t0 = bench_now_ns();
  run_window(ex, 1, n);
  int64_t el = bench_now_ns() - t0;
  double cpu = pp_total_cpu(pids, np) - c0;
  CONC_OK(conc_executor_destroy(ex));
  char extra[96];
  snprintf(extra, sizeof extra, "cpu_task_us=%.3f", cpu / (double)n * 1e6);
  bench_result((double)el / (double)n, "ns/task", extra);
}

static void row_map(long chunk, long n) {
  conc_executor *ex = pool();
  uint64_t *x = malloc((size_t)n * sizeof *x);
  conc_buf *in = malloc((size_t)n * sizeof *in);
  BENCH_CHECK(x && in && chunk > 0, "bad args");
  for (long i = 0; i < n; i++) {
    x[i] = (uint64_t)i + 1;
    in[i] = (conc_buf){&x[i], sizeof x[i]};
  }
  run_window(ex, 1u << 30, 200); /* warm-up */
  conc_map_options mo;
  conc_map_options_init(&mo);
  mo.chunksize = (size_t)chunk;
  mo.buffersize = 4096;
  int pids[8];
  int np = pool_pids(ex, pids);
  double c0 = pp_total_cpu(pids, np);
  int64_t t0 = bench_now_ns();
  conc_map *m;
  CONC_OK(conc_executor_map_task(ex, "pb_tiny", in, (size_t)n, &mo, &m));
  long got = 0;
  void *r;
  int rc;
  while ((rc = conc_map_next(m, &r)) == 1) {
    BENCH_CHECK(got < n, "map yielded more than %ld results", n);
    check_tiny(r, x[got]);
    got++;
  }
  BENCH_CHECK(rc == 0, "map: %s", conc_strerror(rc));
  BENCH_CHECK(got == n, "map yielded %ld of %ld", got, n);
  conc_map_destroy(m);
  if (strcmp(feature, "stats") == 0 || strcmp(feature, "timing") == 0) {
    conc_executor_stats st;
    conc_executor_stats_init(&st);
    CONC_OK(conc_executor_get_stats(ex, &st));
    BENCH_CHECK(st.completed >= (unsigned long long)n / (unsigned long long)chunk,
                "stats: %llu completed", st.completed);
    BENCH_CHECK(strcmp(feature, "stats") == 0 || st.timed > 0, "nothing timed");
  }
  int64_t el = bench_now_ns() - t0;
  double cpu = pp_total_cpu(pids, np) - c0;
  CONC_OK(conc_executor_destroy(ex));
  char extra[96];
  snprintf(extra, sizeof extra, "cpu_task_us=%.3f", cpu / (double)n * 1e6);
  bench_result((double)el / (double)n, "ns/task", extra);
  free(x);
  free(in);
}

static void row_big(long n) {
  unsigned char *bin[PP_NBUF], *expect[PP_NBUF];
  pp_big_inputs(bin, expect);
  conc_buf *in = malloc((size_t)n * sizeof *in);
  BENCH_CHECK(in, "out of memory");
  for (long i = 0; i < n; i++) in[i] = (conc_buf){bin[i % PP_NBUF], PP_BIG};
  conc_executor *ex = pool();
  conc_map_options mo;
  conc_map_options_init(&mo);
  mo.chunksize = 1;
  mo.buffersize = 2 * WORKERS;
  int64_t el = 0;
  for (int pass = 0; pass < 2; pass++) { /* pass 0: warm-up, 2 x WORKERS tasks */
    long cnt = pass ? n : 2 * WORKERS;
    int64_t t0 = bench_now_ns();
    conc_map *m;
    CONC_OK(conc_executor_map_task(ex, "pb_big", in, (size_t)cnt, &mo, &m));
    long got = 0;
    void *r;
    int rc;
    while ((rc = conc_map_next(m, &r)) == 1) {
      const conc_bytes *b = r;
      BENCH_CHECK(got < cnt, "map yielded too many results");
      BENCH_CHECK(b->len == PP_BIG && memcmp(b->data, expect[got % PP_NBUF], PP_BIG) == 0,
                  "payload task %ld: wrong output", got);
      got++;
    }
    BENCH_CHECK(rc == 0, "map: %s", conc_strerror(rc));
    BENCH_CHECK(got == cnt, "map yielded %ld of %ld", got, cnt);
    conc_map_destroy(m);
    el = bench_now_ns() - t0;
  }
  CONC_OK(conc_executor_destroy(ex));
  double bytes = 2.0 * (double)PP_BIG * (double)n;
  char extra[96];
  snprintf(extra, sizeof extra, "task_us=%.1f", (double)el / (double)n / 1e3);
  bench_result(bytes / (double)el, "GB/s", extra);
}

static void row_start(long n, long mb) {
  if (mb > 0) pp_ballast((size_t)mb << 20);
  int64_t *ms = malloc((size_t)n * sizeof *ms);
  BENCH_CHECK(ms && n > 0, "bad args");
  for (long i = 0; i < n; i++) {
    int64_t t0 = bench_now_ns();
    conc_executor *ex = pool();
    wait_tiny(submit_tiny(ex, (uint64_t)i + 7), (uint64_t)i + 7);
    ms[i] = bench_now_ns() - t0;
    CONC_OK(conc_executor_destroy(ex));
  }
  int64_t mn = bench_quantile(ms, (size_t)n, 0);
  int64_t p50 = bench_quantile(ms, (size_t)n, 0.5);
  char extra[96];
  snprintf(extra, sizeof extra, "min_ms=%.3f parent_mb=%.0f", (double)mn / 1e6,
           (double)bench_status_kb("VmRSS") / 1024.0);
  bench_result((double)p50 / 1e6, "ms", extra);
  free(ms);
}

static void row_idle(long ms) {
  conc_executor *ex = pool();
  int pids[8];
  run_window(ex, 1, 2000); /* some work: one in flight per worker */
  int np = pool_pids(ex, pids);
  double c0 = pp_total_cpu(pids, np);
  int64_t t0 = bench_now_ns();
  bench_sleep_ns(ms * 1000000);
  double cpu = pp_total_cpu(pids, np) - c0;
  int64_t el = bench_now_ns() - t0;
  BENCH_CHECK(conc_process_pool_pids(ex, NULL, 0) == np, "pool lost a process while idle");
  CONC_OK(conc_executor_destroy(ex));
  bench_result(cpu / ((double)el * 1e-9) * 100.0, "%CPU", NULL);
}

int main(int argc, char **argv) {
  conc_init(&argc, &argv);
  const char *mode = argc > 1 ? argv[1] : "";
  if (strcmp(mode, "one") == 0)
    row_one(bench_arg_long(argc, argv, 2, 100000));
  else if (strcmp(mode, "map") == 0) {
    max_in_flight = (unsigned)bench_arg_long(argc, argv, 4, 0);
    if (argc > 5)
      feature = argv[5];
    row_map(bench_arg_long(argc, argv, 2, 1), bench_arg_long(argc, argv, 3, 100000));
  } else if (strcmp(mode, "big") == 0)
    row_big(bench_arg_long(argc, argv, 2, 200));
  else if (strcmp(mode, "start") == 0)
    row_start(bench_arg_long(argc, argv, 2, 10), bench_arg_long(argc, argv, 3, 0));
  else if (strcmp(mode, "idle") == 0)
    row_idle(bench_arg_long(argc, argv, 2, 1000));
  else
    BENCH_FAIL("usage: bench-procpool one|map|big|start|idle ...");
  return 0;
}
