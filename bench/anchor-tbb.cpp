/* bench/anchor-tbb.cpp - anchor: oneTBB as its documentation recommends
 * (task_group run/wait, parallel_for with the default partitioner), with
 * max_allowed_parallelism = 2 (the main thread + 1 worker; the main thread
 * runs tasks while it waits).
 *
 *   anchor-tbb submit ff SUBMITTERS N   workloads 1, 2: task_group (no handle)
 *   anchor-tbb bulk N                   workload 1 bulk: parallel_for, empty
 *   anchor-tbb map N                    workload 4: parallel_for into an array
 *   anchor-tbb fib N CUTOFF             workload 5: task_group fork-join
 *   anchor-tbb imbal N                  workload 6
 *   anchor-tbb mem N                    workload 7
 *   anchor-tbb idle THREADS MS          workload 8
 *
 * Same checks and output as the conc programs.  No round trip: task_group's
 * wait runs the task on the caller, so it is not a hand-off to a worker. */
#include <tbb/blocked_range.h>
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <tbb/task_group.h>

#include <memory>
#include <thread>
#include <vector>

#include "common.h"

static bench_counter ctr;
static long cutoff;

static void run_range(tbb::task_group &tg, long lo, long hi) {
  for (long i = lo; i < hi; i++)
    tg.run([i] {
      bench_account((uint64_t)i);
      bench_counter_dec(&ctr);
    });
}

static int run_submit(int argc, char **argv) {
  int subs = (int)bench_arg_long(argc, argv, 3, 1);
  long n = bench_arg_long(argc, argv, 4, 1000000);
  tbb::global_control gc(tbb::global_control::max_allowed_parallelism, 2);
  { /* warm up: start the worker */
    tbb::task_group tg;
    for (int i = 0; i < 1000; i++) tg.run([] {});
    tg.wait();
  }
  bench_slots_reset();
  bench_counter_init(&ctr, n);
  int64_t t0, t1;
  if (subs == 1) {
    tbb::task_group tg;
    bench_mark_submitter();
    t0 = bench_now_ns();
    run_range(tg, 1, n + 1);
    tg.wait();
    bench_counter_wait(&ctr);
    t1 = bench_now_ns();
  } else {
    std::vector<std::thread> th;
    int go = 0;
    for (int s = 0; s < subs; s++)
      th.emplace_back([&, s] {
        tbb::task_group tg;
        bench_mark_submitter();
        while (!__atomic_load_n(&go, __ATOMIC_ACQUIRE)) bench_pause();
        run_range(tg, 1 + (long)s * n / subs, 1 + (long)(s + 1) * n / subs);
        tg.wait();
      });
    bench_sleep_ns(1000000);
    t0 = bench_now_ns();
    __atomic_store_n(&go, 1, __ATOMIC_RELEASE);
    for (auto &t : th) t.join();
    bench_counter_wait(&ctr);
    t1 = bench_now_ns();
  }
  BENCH_CHECK(ctr.left == 0, "counter ended at %ld", ctr.left);
  double share = bench_check_slots((uint64_t)n);
  char extra[64];
  snprintf(extra, sizeof extra, "share=%.4f", share);
  bench_result((double)(t1 - t0) / (double)n, "ns/task", extra);
  return 0;
}

static inline uint64_t f_of(uint64_t x) { return (x * 2654435761u) & 0xffffffffu; }

/* bulk (empty body) or map (f into an array, checked in order). */
static int run_for(int argc, char **argv, bool map) {
  long n = bench_arg_long(argc, argv, 2, 1000000);
  tbb::global_control gc(tbb::global_control::max_allowed_parallelism, 2);
  std::unique_ptr<uint64_t[]> out(new uint64_t[(size_t)n]());
  tbb::parallel_for(tbb::blocked_range<long>(0, 1000), [](const tbb::blocked_range<long> &) {});
  bench_mark_submitter();
  bench_slots_reset();
  uint64_t *o = out.get();
  int64_t t0 = bench_now_ns();
  if (map)
    tbb::parallel_for(tbb::blocked_range<long>(0, n), [o](const tbb::blocked_range<long> &r) {
      for (long i = r.begin(); i != r.end(); i++) {
        bench_account((uint64_t)i + 1);
        o[i] = f_of((uint64_t)i + 1);
      }
    });
  else
    tbb::parallel_for(tbb::blocked_range<long>(0, n), [](const tbb::blocked_range<long> &r) {
      for (long i = r.begin(); i != r.end(); i++) bench_account((uint64_t)i + 1);
    });
  int64_t t1 = bench_now_ns();
  if (map)
    for (long i = 0; i < n; i++)
      BENCH_CHECK(o[i] == f_of((uint64_t)i + 1), "map result %ld wrong", i);
  double share = bench_check_slots((uint64_t)n);
  char extra[64];
  snprintf(extra, sizeof extra, "share=%.4f", share);
  bench_result((double)(t1 - t0) / (double)n, map ? "ns/item" : "ns/task", extra);
  return 0;
}

static uint64_t fib_serial(long n) { return n < 2 ? (uint64_t)n : fib_serial(n - 1) + fib_serial(n - 2); }
static uint64_t tasks_of(long n) { return n <= cutoff ? 1 : 1 + tasks_of(n - 1) + tasks_of(n - 2); }

/* The body of one task: fib(n), spawning two child tasks above the cutoff. */
static uint64_t fib_task(long n) {
  bench_slot_get()->count++;
  if (n <= cutoff) return fib_serial(n);
  uint64_t x, y;
  tbb::task_group g;
  g.run([&] { x = fib_task(n - 1); });
  g.run([&] { y = fib_task(n - 2); });
  g.wait();
  return x + y;
}

static int run_fib(int argc, char **argv) {
  long n = bench_arg_long(argc, argv, 2, 30);
  cutoff = bench_arg_long(argc, argv, 3, 12);
  tbb::global_control gc(tbb::global_control::max_allowed_parallelism, 2);
  uint64_t want = fib_serial(n), want_tasks = tasks_of(n), r = 0;
  tbb::parallel_for(tbb::blocked_range<long>(0, 1000), [](const tbb::blocked_range<long> &) {});
  bench_mark_submitter();
  bench_slots_reset();
  int64_t t0 = bench_now_ns();
  {
    tbb::task_group g;
    g.run([&] { r = fib_task(n); });
    g.wait();
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
  tbb::global_control gc(tbb::global_control::max_allowed_parallelism, 2);
  tbb::parallel_for(tbb::blocked_range<long>(0, 1000), [](const tbb::blocked_range<long> &) {});
  bench_mark_submitter();
  bench_slots_reset();
  bench_counter_init(&ctr, n);
  int64_t t0 = bench_now_ns();
  {
    tbb::task_group tg;
    for (long i = 1; i <= n; i++)
      tg.run([i, dur] {
        bench_spin_ns(dur[i - 1]);
        bench_account((uint64_t)i);
        bench_counter_dec(&ctr);
      });
    tg.wait();
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

static int run_mem(int argc, char **argv) {
  long n = bench_arg_long(argc, argv, 2, 1000000);
  static bench_gate gate;
  tbb::global_control gc(tbb::global_control::max_allowed_parallelism, 2);
  tbb::parallel_for(tbb::blocked_range<long>(0, 1000), [](const tbb::blocked_range<long> &) {});
  bench_slots_reset();
  bench_counter_init(&ctr, n);
  tbb::task_group tg;
  tg.run([] { bench_gate_pass(&gate); }); /* blocks the one worker */
  bench_gate_wait_arrived(&gate, 1);
  long rss0 = bench_status_kb("VmRSS");
  for (long i = 1; i <= n; i++)
    tg.run([i] {
      bench_account((uint64_t)i);
      bench_counter_dec(&ctr);
    });
  long rss1 = bench_status_kb("VmRSS");
  BENCH_CHECK(bench_slots_total() == 0, "tasks ran while the workers were blocked");
  bench_gate_open(&gate);
  tg.wait();
  bench_counter_wait(&ctr);
  bench_check_slots((uint64_t)n);
  char extra[64];
  snprintf(extra, sizeof extra, "rss_mb=%.1f", (double)(rss1 - rss0) / 1024.0);
  bench_result((double)(rss1 - rss0) * 1024.0 / (double)n, "B/task", extra);
  return 0;
}

static int run_idle(int argc, char **argv) {
  int threads = (int)bench_arg_long(argc, argv, 2, 8);
  long ms = bench_arg_long(argc, argv, 3, 1000);
  tbb::global_control gc(tbb::global_control::max_allowed_parallelism, (size_t)threads);
  static int arrived;
  { /* every thread of the arena takes one task that waits for the others */
    tbb::task_group tg;
    for (int i = 0; i < threads; i++)
      tg.run([threads] {
        __atomic_add_fetch(&arrived, 1, __ATOMIC_ACQ_REL);
        int64_t until = bench_now_ns() + 5000000000LL;
        while (__atomic_load_n(&arrived, __ATOMIC_ACQUIRE) < threads && bench_now_ns() < until)
          bench_sleep_ns(20000);
      });
    tg.wait();
  }
  BENCH_CHECK(arrived == threads, "only %d of %d threads ran", arrived, threads);
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
  if (!strcmp(w, "submit")) return run_submit(argc, argv);
  if (!strcmp(w, "bulk")) return run_for(argc, argv, false);
  if (!strcmp(w, "map")) return run_for(argc, argv, true);
  if (!strcmp(w, "fib")) return run_fib(argc, argv);
  if (!strcmp(w, "imbal")) return run_imbal(argc, argv);
  if (!strcmp(w, "mem")) return run_mem(argc, argv);
  if (!strcmp(w, "idle")) return run_idle(argc, argv);
  fprintf(stderr, "usage: anchor-tbb submit|bulk|map|fib|imbal|mem|idle ...\n");
  return 64;
}
