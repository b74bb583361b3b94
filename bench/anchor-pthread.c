/* bench/anchor-pthread.c - anchor: the plain mutex+condvar pool with a
 * future per task (pthread-pool.c), on every workload it can run.
 *
 *   anchor-pthread submit handle|ff SUBMITTERS N   workloads 1, 2
 *   anchor-pthread rt warm|cold N [GAP_US]          workload 3
 *   anchor-pthread imbal N                          workload 6 (ff)
 *   anchor-pthread mem handle|ff N                  workload 7
 *   anchor-pthread idle WORKERS MS                  workload 8
 *
 * Same protocol, checks and output as the conc programs (bench-*.c).  It
 * cannot run fork-join (a waiting worker does not help: it would deadlock)
 * nor an ordered map (it has none). */
#include "common.h"
#include "pthread-pool.h"

static ppool *pool;
static bench_counter ctr;
static long n_tasks;
static int submitters;
static pfuture **futs;
static int go_flag;
static int64_t *dur;
static bench_gate gate;

static void *task_handle(void *arg) {
  bench_account((uint64_t)(uintptr_t)arg);
  return arg;
}
static void *task_ff(void *arg) {
  bench_account((uint64_t)(uintptr_t)arg);
  bench_counter_dec(&ctr);
  return NULL;
}
static void *task_tid(void *arg) {
  bench_account((uint64_t)(uintptr_t)arg);
  return (void *)(intptr_t)bench_gettid();
}
static void *task_spin_ff(void *arg) {
  uint64_t i = (uint64_t)(uintptr_t)arg;
  bench_spin_ns(dur[i - 1]);
  bench_account(i);
  bench_counter_dec(&ctr);
  return NULL;
}
static void *task_gate(void *arg) {
  bench_gate_pass(&gate);
  return arg;
}

/* Start the pool and prove all its workers run (a gate every worker must
 * reach). */
static ppool *start_pool(int workers) {
  ppool *p = ppool_create(workers);
  pfuture *f[64];
  BENCH_CHECK(p && workers <= 64, "ppool_create");
  bench_gate g0 = {0, 0};
  gate = g0;
  for (int i = 0; i < workers; i++) ppool_submit(p, task_gate, NULL, &f[i]);
  bench_gate_wait_arrived(&gate, workers);
  bench_gate_open(&gate);
  for (int i = 0; i < workers; i++) {
    pfuture_result(f[i]);
    pfuture_release(f[i]);
  }
  gate = g0;
  return p;
}

static void submit_range(int s, int ff) {
  long lo = 1 + (long)s * n_tasks / submitters;
  long hi = 1 + (long)(s + 1) * n_tasks / submitters;
  for (long i = lo; i < hi; i++)
    BENCH_CHECK(ppool_submit(pool, ff ? task_ff : task_handle, (void *)(uintptr_t)i,
                             ff ? NULL : &futs[i - 1]) == 0, "submit");
  if (ff) return;
  for (long i = lo; i < hi; i++) {
    void *r = pfuture_result(futs[i - 1]);
    BENCH_CHECK(r == (void *)(uintptr_t)i, "task %ld returned %p", i, r);
    pfuture_release(futs[i - 1]);
  }
}

struct sub_arg {
  int s, ff;
};
static void *submitter_thread(void *p) {
  struct sub_arg *a = p;
  bench_mark_submitter();
  while (!__atomic_load_n(&go_flag, __ATOMIC_ACQUIRE)) bench_pause();
  submit_range(a->s, a->ff);
  return NULL;
}

static int run_submit(int argc, char **argv) {
  int ff = argc > 2 && strcmp(argv[2], "ff") == 0;
  submitters = (int)bench_arg_long(argc, argv, 3, 1);
  n_tasks = bench_arg_long(argc, argv, 4, 1000000);
  BENCH_CHECK(submitters >= 1 && submitters <= 8 && n_tasks > 0, "bad args");
  futs = calloc((size_t)n_tasks, sizeof *futs);
  BENCH_CHECK(futs, "out of memory");
  pool = start_pool(bench_workers());
  bench_slots_reset();
  bench_counter_init(&ctr, ff ? n_tasks : 0);
  int64_t t0, t1;
  if (submitters == 1) {
    bench_mark_submitter();
    t0 = bench_now_ns();
    submit_range(0, ff);
    if (ff) bench_counter_wait(&ctr);
    t1 = bench_now_ns();
  } else {
    pthread_t th[8];
    struct sub_arg a[8];
    for (int s = 0; s < submitters; s++) {
      a[s].s = s;
      a[s].ff = ff;
      BENCH_CHECK(pthread_create(&th[s], NULL, submitter_thread, &a[s]) == 0, "pthread_create");
    }
    bench_sleep_ns(1000000);
    t0 = bench_now_ns();
    __atomic_store_n(&go_flag, 1, __ATOMIC_RELEASE);
    if (ff) bench_counter_wait(&ctr);
    for (int s = 0; s < submitters; s++) pthread_join(th[s], NULL);
    t1 = bench_now_ns();
  }
  ppool_destroy(pool);
  BENCH_CHECK(ctr.left == 0, "counter ended at %ld", ctr.left);
  double share = bench_check_slots((uint64_t)n_tasks);
  char extra[64];
  snprintf(extra, sizeof extra, "share=%.4f", share);
  bench_result((double)(t1 - t0) / (double)n_tasks, "ns/task", extra);
  return 0;
}

static int run_rt(int argc, char **argv) {
  int cold = argc > 2 && strcmp(argv[2], "cold") == 0;
  long n = bench_arg_long(argc, argv, 3, 100000);
  int64_t gap = bench_arg_long(argc, argv, 4, 2000) * 1000;
  int64_t *lat = malloc((size_t)n * sizeof *lat);
  pid_t me = bench_gettid();
  BENCH_CHECK(lat && n > 0, "bad args");
  pool = start_pool(2);
  bench_mark_submitter();
  bench_slots_reset();
  double cpu0 = bench_cpu_seconds();
  for (long i = 0; i < n; i++) {
    pfuture *f;
    if (cold) bench_sleep_ns(gap);
    int64_t t0 = bench_now_ns();
    ppool_submit(pool, task_tid, (void *)(uintptr_t)(i + 1), &f);
    void *r = pfuture_result(f);
    lat[i] = bench_now_ns() - t0;
    pfuture_release(f);
    BENCH_CHECK((pid_t)(intptr_t)r != me, "round trip %ld ran on the caller", i);
  }
  double cpu = bench_cpu_seconds() - cpu0;
  ppool_destroy(pool);
  double share = bench_check_slots((uint64_t)n);
  int64_t p50 = bench_quantile(lat, (size_t)n, 0.50);
  int64_t p99 = bench_quantile(lat, (size_t)n, 0.99);
  char extra[128];
  snprintf(extra, sizeof extra, "p99=%lld cpu_us=%.3f share=%.4f", (long long)p99,
           cpu / (double)n * 1e6, share);
  bench_result((double)p50, "ns", extra);
  return 0;
}

static int run_imbal(int argc, char **argv) {
  long n = bench_arg_long(argc, argv, 2, 1000000);
  int64_t total;
  dur = bench_exp_durations((size_t)n, 1000.0, &total);
  pool = start_pool(2);
  bench_mark_submitter();
  bench_slots_reset();
  bench_counter_init(&ctr, n);
  int64_t t0 = bench_now_ns();
  for (long i = 1; i <= n; i++) ppool_submit(pool, task_spin_ff, (void *)(uintptr_t)i, NULL);
  bench_counter_wait(&ctr);
  int64_t wall = bench_now_ns() - t0;
  ppool_destroy(pool);
  double share = bench_check_slots((uint64_t)n);
  char extra[96];
  snprintf(extra, sizeof extra, "wall_ms=%.2f share=%.4f", (double)wall / 1e6, share);
  bench_result((double)total / 2 / (double)wall, "efficiency", extra);
  return 0;
}

static int run_mem(int argc, char **argv) {
  int ff = argc > 2 && strcmp(argv[2], "ff") == 0;
  long n = bench_arg_long(argc, argv, 3, 1000000);
  pfuture *g[2];
  futs = calloc((size_t)n, sizeof *futs);
  BENCH_CHECK(futs, "out of memory");
  memset(futs, 0, (size_t)n * sizeof *futs);
  pool = start_pool(2);
  bench_slots_reset();
  bench_counter_init(&ctr, ff ? n : 0);
  for (int w = 0; w < 2; w++) ppool_submit(pool, task_gate, NULL, &g[w]);
  bench_gate_wait_arrived(&gate, 2);
  long rss0 = bench_status_kb("VmRSS");
  for (long i = 1; i <= n; i++)
    ppool_submit(pool, ff ? task_ff : task_handle, (void *)(uintptr_t)i, ff ? NULL : &futs[i - 1]);
  long rss1 = bench_status_kb("VmRSS");
  BENCH_CHECK(bench_slots_total() == 0, "tasks ran while the workers were blocked");
  bench_gate_open(&gate);
  for (int w = 0; w < 2; w++) {
    pfuture_result(g[w]);
    pfuture_release(g[w]);
  }
  if (ff) {
    bench_counter_wait(&ctr);
  } else {
    for (long i = 1; i <= n; i++) {
      BENCH_CHECK(pfuture_result(futs[i - 1]) == (void *)(uintptr_t)i, "task %ld", i);
      pfuture_release(futs[i - 1]);
    }
  }
  ppool_destroy(pool);
  bench_check_slots((uint64_t)n);
  char extra[64];
  snprintf(extra, sizeof extra, "rss_mb=%.1f", (double)(rss1 - rss0) / 1024.0);
  bench_result((double)(rss1 - rss0) * 1024.0 / (double)n, "B/task", extra);
  return 0;
}

static int run_idle(int argc, char **argv) {
  int workers = (int)bench_arg_long(argc, argv, 2, 8);
  long ms = bench_arg_long(argc, argv, 3, 1000);
  pool = start_pool(workers);
  double c0 = bench_cpu_seconds();
  int64_t t0 = bench_now_ns();
  bench_sleep_ns(ms * 1000000);
  double cpu = bench_cpu_seconds() - c0;
  int64_t wall = bench_now_ns() - t0;
  ppool_destroy(pool);
  char extra[64];
  snprintf(extra, sizeof extra, "cpu_ms=%.3f", cpu * 1e3);
  bench_result(cpu / ((double)wall * 1e-9) * 100.0, "%cpu", extra);
  return 0;
}

int main(int argc, char **argv) {
  const char *w = argc > 1 ? argv[1] : "";
  if (!strcmp(w, "submit")) return run_submit(argc, argv);
  if (!strcmp(w, "rt")) return run_rt(argc, argv);
  if (!strcmp(w, "imbal")) return run_imbal(argc, argv);
  if (!strcmp(w, "mem")) return run_mem(argc, argv);
  if (!strcmp(w, "idle")) return run_idle(argc, argv);
  fprintf(stderr, "usage: anchor-pthread submit|rt|imbal|mem|idle ...\n");
  return 64;
}
