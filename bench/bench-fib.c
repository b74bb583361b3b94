/* bench/bench-fib.c - conc: fork-join fib (workload 5).
 *
 *   bench-fib N CUTOFF
 *
 * A task for fib(n), n > CUTOFF, submits fib(n-1) and fib(n-2) as two tasks
 * of the same pool and waits for both with conc_future_result (the waiting
 * worker runs queued tasks meanwhile); at n <= CUTOFF it computes serially.
 * Checks the value and the number of tasks run.  Prints ms per fib(N). */
#include "conc-bench.h"

static conc_executor *ex;
static long cutoff;

static uint64_t fib_serial(long n) { return n < 2 ? (uint64_t)n : fib_serial(n - 1) + fib_serial(n - 2); }

/* Tasks a fib(n) task spawns below itself, itself included. */
static uint64_t tasks_of(long n) { return n <= cutoff ? 1 : 1 + tasks_of(n - 1) + tasks_of(n - 2); }

static void *fib_task(void *arg) {
  long n = (long)(intptr_t)arg;
  bench_slot_get()->count++;
  if (n <= cutoff) return (void *)(uintptr_t)fib_serial(n);
  conc_future *a, *b;
  void *ra, *rb;
  CONC_OK(conc_executor_submit(ex, fib_task, (void *)(intptr_t)(n - 1), &a));
  CONC_OK(conc_executor_submit(ex, fib_task, (void *)(intptr_t)(n - 2), &b));
  CONC_OK(conc_future_result(a, -1, &ra));
  CONC_OK(conc_future_result(b, -1, &rb));
  conc_future_release(a);
  conc_future_release(b);
  return (void *)((uintptr_t)ra + (uintptr_t)rb);
}

int main(int argc, char **argv) {
  long n = bench_arg_long(argc, argv, 1, 30);
  cutoff = bench_arg_long(argc, argv, 2, 12);
  uint64_t want = fib_serial(n), want_tasks = tasks_of(n);
  ex = bench_conc_pool(2);
  bench_mark_submitter();
  bench_slots_reset();

  conc_future *f;
  void *r;
  int64_t t0 = bench_now_ns();
  CONC_OK(conc_executor_submit(ex, fib_task, (void *)(intptr_t)n, &f));
  CONC_OK(conc_future_result(f, -1, &r));
  int64_t t1 = bench_now_ns();
  conc_future_release(f);
  CONC_OK(conc_executor_destroy(ex));
  BENCH_CHECK((uint64_t)(uintptr_t)r == want, "fib(%ld) = %llu, expected %llu",
              n, (unsigned long long)(uintptr_t)r, (unsigned long long)want);
  uint64_t cnt = 0, on_sub = 0;
  for (int i = 0; i < bench_nslots; i++) {
    cnt += bench_slots[i].count;
    if (bench_slots[i].submitter) on_sub += bench_slots[i].count;
  }
  BENCH_CHECK(cnt == want_tasks, "%llu tasks ran, expected %llu",
              (unsigned long long)cnt, (unsigned long long)want_tasks);
  char extra[96];
  snprintf(extra, sizeof extra, "share=%.4f tasks=%llu", (double)on_sub / (double)cnt,
           (unsigned long long)cnt);
  bench_result((double)(t1 - t0) / 1e6, "ms", extra);
  return 0;
}
