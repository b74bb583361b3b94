/* bench/anchor-omp.c - anchor: OpenMP (gcc's libgomp) as its specification
 * intends: explicit tasks created by one thread (`single` + `task`, waited
 * for at the region's barrier, where every thread runs tasks), `taskloop`,
 * and `parallel for` with the default schedule; 2 threads.
 *
 *   anchor-omp submit ff SUBMITTERS N   workloads 1, 2 (SUBMITTERS 2: both
 *                                       team threads create tasks)
 *   anchor-omp bulk N                   workload 1 bulk: parallel for, empty
 *   anchor-omp taskloop N               workload 1 bulk: taskloop, empty
 *   anchor-omp map N                    workload 4: parallel for into an array
 *   anchor-omp fib N CUTOFF             workload 5: task + taskwait
 *   anchor-omp imbal N                  workload 6
 *   anchor-omp idle THREADS MS          workload 8
 *
 * Same checks and output as the conc programs.  No round trip (no hand-off
 * to a worker outside a region) and no memory row: libgomp runs a new task
 * at once in its creator when more than 64 x threads are queued, so 10^6
 * tasks cannot be pending. */
#include <omp.h>

#include "common.h"

static bench_counter ctr;
static long cutoff;

static void warm(int threads) {
#pragma omp parallel num_threads(threads)
  bench_slot_get();
}

static int run_submit(int argc, char **argv) {
  int subs = (int)bench_arg_long(argc, argv, 3, 1);
  long n = bench_arg_long(argc, argv, 4, 1000000);
  BENCH_CHECK(subs == 1 || subs == 2, "1 or 2 submitters");
  warm(2);
  bench_slots_reset();
  bench_counter_init(&ctr, n);
  int64_t t0 = bench_now_ns();
#pragma omp parallel num_threads(2)
  {
    if (subs == 1) {
#pragma omp single
      {
        bench_mark_submitter();
        for (long i = 1; i <= n; i++) {
#pragma omp task firstprivate(i)
          {
            bench_account((uint64_t)i);
            bench_counter_dec(&ctr);
          }
        }
      }
    } else {
      int t = omp_get_thread_num();
      bench_mark_submitter();
      for (long i = 1 + (long)t * n / 2; i < 1 + (long)(t + 1) * n / 2; i++) {
#pragma omp task firstprivate(i)
        {
          bench_account((uint64_t)i);
          bench_counter_dec(&ctr);
        }
      }
    }
  }
  bench_counter_wait(&ctr);
  int64_t t1 = bench_now_ns();
  BENCH_CHECK(ctr.left == 0, "counter ended at %ld", ctr.left);
  double share = bench_check_slots((uint64_t)n);
  char extra[64];
  snprintf(extra, sizeof extra, "share=%.4f", share);
  bench_result((double)(t1 - t0) / (double)n, "ns/task", extra);
  return 0;
}

static inline uint64_t f_of(uint64_t x) { return (x * 2654435761u) & 0xffffffffu; }

/* mode 0: parallel for, empty; 1: parallel for into an array; 2: taskloop */
static int run_for(int argc, char **argv, int mode) {
  long n = bench_arg_long(argc, argv, 2, 1000000);
  uint64_t *out = calloc((size_t)n, sizeof *out);
  BENCH_CHECK(out, "out of memory");
  memset(out, 0, (size_t)n * sizeof *out); /* touched before the clock */
  warm(2);
  bench_mark_submitter();
  bench_slots_reset();
  int64_t t0 = bench_now_ns();
  if (mode == 0) {
#pragma omp parallel for num_threads(2)
    for (long i = 0; i < n; i++) bench_account((uint64_t)i + 1);
  } else if (mode == 1) {
#pragma omp parallel for num_threads(2)
    for (long i = 0; i < n; i++) {
      bench_account((uint64_t)i + 1);
      out[i] = f_of((uint64_t)i + 1);
    }
  } else {
#pragma omp parallel num_threads(2)
#pragma omp single
#pragma omp taskloop
    for (long i = 0; i < n; i++) bench_account((uint64_t)i + 1);
  }
  int64_t t1 = bench_now_ns();
  if (mode == 1)
    for (long i = 0; i < n; i++)
      BENCH_CHECK(out[i] == f_of((uint64_t)i + 1), "map result %ld wrong", i);
  double share = bench_check_slots((uint64_t)n);
  char extra[64];
  snprintf(extra, sizeof extra, "share=%.4f", share);
  bench_result((double)(t1 - t0) / (double)n, mode == 1 ? "ns/item" : "ns/task", extra);
  free(out);
  return 0;
}

static uint64_t fib_serial(long n) { return n < 2 ? (uint64_t)n : fib_serial(n - 1) + fib_serial(n - 2); }
static uint64_t tasks_of(long n) { return n <= cutoff ? 1 : 1 + tasks_of(n - 1) + tasks_of(n - 2); }

static uint64_t fib_task(long n) {
  bench_slot_get()->count++;
  if (n <= cutoff) return fib_serial(n);
  uint64_t x, y;
#pragma omp task shared(x)
  x = fib_task(n - 1);
#pragma omp task shared(y)
  y = fib_task(n - 2);
#pragma omp taskwait
  return x + y;
}

static int run_fib(int argc, char **argv) {
  long n = bench_arg_long(argc, argv, 2, 30);
  cutoff = bench_arg_long(argc, argv, 3, 12);
  uint64_t want = fib_serial(n), want_tasks = tasks_of(n), r = 0;
  warm(2);
  bench_mark_submitter();
  bench_slots_reset();
  int64_t t0 = bench_now_ns();
#pragma omp parallel num_threads(2)
#pragma omp single
  {
#pragma omp task shared(r)
    r = fib_task(n);
  }
  int64_t t1 = bench_now_ns();
  BENCH_CHECK(r == want, "fib(%ld) = %llu", n, (unsigned long long)r);
  uint64_t cnt = 0, on_sub = 0;
  for (int i = 0; i < bench_nslots; i++) {
    cnt += bench_slots[i].count;
    if (bench_slots[i].submitter) on_sub += bench_slots[i].count;
  }
  BENCH_CHECK(cnt == want_tasks, "%llu tasks ran, expected %llu", (unsigned long long)cnt,
              (unsigned long long)want_tasks);
  char extra[96];
  snprintf(extra, sizeof extra, "share=%.4f tasks=%llu", (double)on_sub / (double)cnt,
           (unsigned long long)cnt);
  bench_result((double)(t1 - t0) / 1e6, "ms", extra);
  return 0;
}

static int run_imbal(int argc, char **argv) {
  long n = bench_arg_long(argc, argv, 2, 1000000);
  int64_t total;
  int64_t *dur = bench_exp_durations((size_t)n, 1000.0, &total);
  warm(2);
  bench_slots_reset();
  bench_counter_init(&ctr, n);
  int64_t t0 = bench_now_ns();
#pragma omp parallel num_threads(2)
#pragma omp single
  {
    bench_mark_submitter();
    for (long i = 1; i <= n; i++) {
#pragma omp task firstprivate(i)
      {
        bench_spin_ns(dur[i - 1]);
        bench_account((uint64_t)i);
        bench_counter_dec(&ctr);
      }
    }
  }
  bench_counter_wait(&ctr);
  int64_t wall = bench_now_ns() - t0;
  double share = bench_check_slots((uint64_t)n);
  char extra[96];
  snprintf(extra, sizeof extra, "wall_ms=%.2f share=%.4f", (double)wall / 1e6, share);
  bench_result((double)total / 2 / (double)wall, "efficiency", extra);
  free(dur);
  return 0;
}

static int run_idle(int argc, char **argv) {
  int threads = (int)bench_arg_long(argc, argv, 2, 8);
  long ms = bench_arg_long(argc, argv, 3, 1000);
  int seen = 0;
#pragma omp parallel num_threads(threads)
  __atomic_add_fetch(&seen, 1, __ATOMIC_RELAXED);
  BENCH_CHECK(seen == threads, "only %d of %d threads ran", seen, threads);
  double c0 = bench_cpu_seconds();
  int64_t t0 = bench_now_ns();
  bench_sleep_ns(ms * 1000000);
  double cpu = bench_cpu_seconds() - c0;
  int64_t wall = bench_now_ns() - t0;
  char extra[64];
  snprintf(extra, sizeof extra, "cpu_ms=%.3f", cpu * 1e3);
  bench_result(cpu / ((double)wall * 1e-9) * 100.0, "%cpu", extra);
  return 0;
}

int main(int argc, char **argv) {
  const char *w = argc > 1 ? argv[1] : "";
  omp_set_dynamic(0);
  if (!strcmp(w, "submit")) return run_submit(argc, argv);
  if (!strcmp(w, "bulk")) return run_for(argc, argv, 0);
  if (!strcmp(w, "map")) return run_for(argc, argv, 1);
  if (!strcmp(w, "taskloop")) return run_for(argc, argv, 2);
  if (!strcmp(w, "fib")) return run_fib(argc, argv);
  if (!strcmp(w, "imbal")) return run_imbal(argc, argv);
  if (!strcmp(w, "idle")) return run_idle(argc, argv);
  fprintf(stderr, "usage: anchor-omp submit|bulk|taskloop|map|fib|imbal|idle ...\n");
  return 64;
}
