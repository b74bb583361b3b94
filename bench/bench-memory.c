/* bench/bench-memory.c - conc: memory per pending task (workload 7).
 *
 *   bench-memory handle|ff N
 *
 * Both workers are first blocked on a gate; then N empty tasks are
 * submitted and stay pending.  Prints the RSS growth per pending task in
 * bytes (the caller's array of future pointers is allocated and touched
 * before the baseline: it is the caller's, not the pool's).  Then the gate
 * opens and every task is checked. */
#include "conc-bench.h"

static bench_gate gate;
static bench_counter ctr;

static void *task_gate(void *arg) {
  bench_gate_pass(&gate);
  return arg;
}
static void *task_empty(void *arg) {
  bench_account((uint64_t)(uintptr_t)arg);
  return arg;
}
static void *task_empty_ff(void *arg) {
  bench_account((uint64_t)(uintptr_t)arg);
  bench_counter_dec(&ctr);
  return NULL;
}

int main(int argc, char **argv) {
  int ff = argc > 1 && strcmp(argv[1], "ff") == 0;
  long n = bench_arg_long(argc, argv, 2, 1000000);
  conc_future **futs = calloc((size_t)n, sizeof *futs);
  conc_future *g[2];
  BENCH_CHECK(futs, "out of memory");
  /* Touch every page of the handle array now, so that it is resident
   * before the first RSS reading (a plain memset after calloc is removed
   * by the compiler, and the array's pages then counted as the pool's). */
  for (size_t b = 0; b < (size_t)n * sizeof *futs; b += 4096)
    ((volatile char *)futs)[b] = 0;
  conc_executor *ex = bench_conc_pool(2);
  bench_slots_reset();
  bench_counter_init(&ctr, ff ? n : 0);
  for (int w = 0; w < 2; w++) { /* one at a time: each must reach a worker */
    CONC_OK(conc_executor_submit(ex, task_gate, NULL, &g[w]));
    bench_gate_wait_arrived(&gate, w + 1);
  }

  long rss0 = bench_status_kb("VmRSS");
  for (long i = 1; i <= n; i++)
    CONC_OK(conc_executor_submit(ex, ff ? task_empty_ff : task_empty,
                                 (void *)(uintptr_t)i, ff ? NULL : &futs[i - 1]));
  long rss1 = bench_status_kb("VmRSS");
  BENCH_CHECK(bench_slots_total() == 0, "tasks ran while the workers were blocked");
  bench_gate_open(&gate);
  for (int w = 0; w < 2; w++) {
    CONC_OK(conc_future_result(g[w], -1, NULL));
    conc_future_release(g[w]);
  }
  if (ff) {
    bench_counter_wait(&ctr);
  } else {
    for (long i = 1; i <= n; i++) {
      void *r;
      CONC_OK(conc_future_result(futs[i - 1], -1, &r));
      BENCH_CHECK(r == (void *)(uintptr_t)i, "task %ld returned %p", i, r);
      conc_future_release(futs[i - 1]);
    }
  }
  CONC_OK(conc_executor_destroy(ex));
  bench_check_slots((uint64_t)n);
  char extra[64];
  snprintf(extra, sizeof extra, "rss_mb=%.1f", (double)(rss1 - rss0) / 1024.0);
  bench_result((double)(rss1 - rss0) * 1024.0 / (double)n, "B/task", extra);
  free(futs);
  return 0;
}
