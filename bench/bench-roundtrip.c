/* bench/bench-roundtrip.c - conc: submit one task, wait for its result,
 * repeat (workload 3).
 *
 *   bench-roundtrip warm|cold N [GAP_US]
 *
 * warm: back to back, so the workers have just been busy.
 * cold: sleep GAP_US (default 2000) before each round trip, so the workers
 *       have parked.  The sleep is not part of the latency.
 * Each task returns its thread id, which must not be the caller's.  Prints
 * the median latency in ns; p99 and CPU µs per round trip (whole process,
 * getrusage) as extra fields. */
#include "conc-bench.h"

static void *task_tid(void *arg) {
  bench_account((uint64_t)(uintptr_t)arg);
  return (void *)(intptr_t)bench_gettid();
}

int main(int argc, char **argv) {
  int cold = argc > 1 && strcmp(argv[1], "cold") == 0;
  long n = bench_arg_long(argc, argv, 2, 100000);
  int64_t gap = bench_arg_long(argc, argv, 3, 2000) * 1000;
  int64_t *lat = malloc((size_t)n * sizeof *lat);
  pid_t me = bench_gettid();
  BENCH_CHECK(lat && n > 0, "bad args");
  conc_executor *ex = bench_conc_pool(2);
  bench_mark_submitter();
  bench_slots_reset();

  double cpu0 = bench_cpu_seconds();
  for (long i = 0; i < n; i++) {
    conc_future *f;
    void *r;
    if (cold) bench_sleep_ns(gap);
    int64_t t0 = bench_now_ns();
    CONC_OK(conc_executor_submit(ex, task_tid, (void *)(uintptr_t)(i + 1), &f));
    CONC_OK(conc_future_result(f, -1, &r));
    lat[i] = bench_now_ns() - t0;
    conc_future_release(f);
    BENCH_CHECK((pid_t)(intptr_t)r != me, "round trip %ld ran on the caller", i);
  }
  double cpu = bench_cpu_seconds() - cpu0;
  CONC_OK(conc_executor_destroy(ex));
  double share = bench_check_slots((uint64_t)n);
  int64_t p50 = bench_quantile(lat, (size_t)n, 0.50);
  int64_t p99 = bench_quantile(lat, (size_t)n, 0.99);
  char extra[128];
  snprintf(extra, sizeof extra, "p99=%lld cpu_us=%.3f share=%.4f",
           (long long)p99, cpu / (double)n * 1e6, share);
  bench_result((double)p50, "ns", extra);
  free(lat);
  return 0;
}
