/* bench/bench-idle.c - conc: CPU used by an idle pool (workload 8).
 *
 *   bench-idle WORKERS MS
 *
 * Starts WORKERS workers (each proven to run a task), lets them go idle and
 * measures the process's CPU time over MS ms of sleep in the main thread.
 * Prints the percentage of one CPU. */
#include "conc-bench.h"

int main(int argc, char **argv) {
  unsigned workers = (unsigned)bench_arg_long(argc, argv, 1, 8);
  long ms = bench_arg_long(argc, argv, 2, 1000);
  conc_executor *ex = bench_conc_pool(workers);
  double c0 = bench_cpu_seconds();
  int64_t t0 = bench_now_ns();
  bench_sleep_ns(ms * 1000000);
  double cpu = bench_cpu_seconds() - c0;
  int64_t wall = bench_now_ns() - t0;
  CONC_OK(conc_executor_destroy(ex));
  char extra[64];
  snprintf(extra, sizeof extra, "cpu_ms=%.3f", cpu * 1e3);
  bench_result(cpu / ((double)wall * 1e-9) * 100.0, "%cpu", extra);
  return 0;
}
