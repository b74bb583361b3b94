/* bench/bench-imbalanced.c - conc: imbalanced work (workload 6).
 *
 *   bench-imbalanced ff|handle N
 *
 * N tasks spin for exponentially distributed durations (mean 1 µs, the same
 * seeded sequence as every anchor).  Efficiency = (sum of durations /
 * workers) / wall time; 1.0 is perfect.  Prints the efficiency; the wall
 * time in ms as an extra field. */
#include "conc-bench.h"

#define WORKERS 2

static int64_t *dur;
static bench_counter ctr;

static void *task_spin(void *arg) {
  uint64_t i = (uint64_t)(uintptr_t)arg;
  bench_spin_ns(dur[i - 1]);
  bench_account(i);
  return arg;
}
static void *task_spin_ff(void *arg) {
  task_spin(arg);
  bench_counter_dec(&ctr);
  return NULL;
}

int main(int argc, char **argv) {
  int ff = argc > 1 && strcmp(argv[1], "ff") == 0;
  long n = bench_arg_long(argc, argv, 2, 1000000);
  int64_t total;
  dur = bench_exp_durations((size_t)n, 1000.0, &total);
  conc_future **futs = ff ? NULL : malloc((size_t)n * sizeof *futs);
  BENCH_CHECK(ff || futs, "out of memory");
  conc_executor *ex = bench_conc_pool(WORKERS);
  bench_mark_submitter();
  bench_slots_reset();
  bench_counter_init(&ctr, ff ? n : 0);

  int64_t t0 = bench_now_ns();
  for (long i = 1; i <= n; i++)
    CONC_OK(conc_executor_submit(ex, ff ? task_spin_ff : task_spin,
                                 (void *)(uintptr_t)i, ff ? NULL : &futs[i - 1]));
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
  int64_t wall = bench_now_ns() - t0;
  CONC_OK(conc_executor_destroy(ex));
  double share = bench_check_slots((uint64_t)n);
  char extra[96];
  snprintf(extra, sizeof extra, "wall_ms=%.2f share=%.4f", (double)wall / 1e6, share);
  bench_result((double)total / WORKERS / (double)wall, "efficiency", extra);
  free(futs);
  free(dur);
  return 0;
}
