/* bench/anchor-uv.c - anchor: libuv's thread pool, uv_queue_work, with
 * UV_THREADPOOL_SIZE = 2 (8 for the idle row).  Requests are caller-
 * allocated uv_work_t, completions come back on the loop thread, and the
 * loop thread waits in uv_run, as libuv's documentation shows.
 *
 *   anchor-uv submit handle|ff SUBMITTERS N   workloads 1, 2 (one loop per
 *                                             submitting thread)
 *   anchor-uv rt warm|cold N [GAP_US]          workload 3
 *   anchor-uv imbal N                          workload 6
 *   anchor-uv mem N                            workload 7
 *   anchor-uv idle THREADS MS                  workload 8
 *
 * handle: the after-work callback (libuv's per-request completion) checks
 * each result on the loop thread.  ff: no after-work callback; each work
 * decrements the counter.  Same checks and output as the conc programs. */
#include <uv.h>

#include "common.h"

typedef struct req {
  uv_work_t w;
  uint64_t i;
  uint64_t result;
} req;

static bench_counter ctr;
static int64_t *dur;
static bench_gate gate;
static long n_done;
static int go_flag;

static void work_handle(uv_work_t *w) {
  req *r = (req *)w;
  bench_account(r->i);
  r->result = r->i * 3;
}
static void after_handle(uv_work_t *w, int status) {
  req *r = (req *)w;
  BENCH_CHECK(status == 0 && r->result == r->i * 3, "request %llu: status %d",
              (unsigned long long)r->i, status);
  __atomic_add_fetch(&n_done, 1, __ATOMIC_RELAXED); /* loop threads */
}
static void work_ff(uv_work_t *w) {
  bench_account(((req *)w)->i);
  bench_counter_dec(&ctr);
}
static void work_tid(uv_work_t *w) {
  req *r = (req *)w;
  bench_account(r->i);
  r->result = (uint64_t)bench_gettid();
}
static void after_noop(uv_work_t *w, int status) {
  (void)w;
  BENCH_CHECK(status == 0, "status %d", status);
}
static void work_spin(uv_work_t *w) {
  req *r = (req *)w;
  bench_spin_ns(dur[r->i - 1]);
  bench_account(r->i);
  bench_counter_dec(&ctr);
}
static void work_gate(uv_work_t *w) {
  (void)w;
  bench_gate_pass(&gate);
}

/* Start the pool's threads and prove that `threads` of them run. */
static void start_pool(uv_loop_t *loop, int threads) {
  req g[64];
  BENCH_CHECK(threads <= 64, "too many threads");
  bench_gate g0 = {0, 0};
  gate = g0;
  for (int i = 0; i < threads; i++) uv_queue_work(loop, &g[i].w, work_gate, after_noop);
  bench_gate_wait_arrived(&gate, threads);
  bench_gate_open(&gate);
  uv_run(loop, UV_RUN_DEFAULT);
  gate = g0;
}

struct sub {
  req *reqs;
  long lo, hi;
  int ff;
  long done;
};

static void submit_and_run(struct sub *s) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  for (long i = s->lo; i < s->hi; i++) {
    s->reqs[i - 1].i = (uint64_t)i;
    BENCH_CHECK(uv_queue_work(&loop, &s->reqs[i - 1].w, s->ff ? work_ff : work_handle,
                              s->ff ? NULL : after_handle) == 0, "uv_queue_work");
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
}

static void *submitter_thread(void *p) {
  struct sub *s = p;
  bench_mark_submitter();
  while (!__atomic_load_n(&go_flag, __ATOMIC_ACQUIRE)) bench_pause();
  submit_and_run(s);
  return NULL;
}

static int run_submit(int argc, char **argv) {
  int ff = argc > 2 && strcmp(argv[2], "ff") == 0;
  int subs = (int)bench_arg_long(argc, argv, 3, 1);
  long n = bench_arg_long(argc, argv, 4, 1000000);
  req *reqs = calloc((size_t)n, sizeof *reqs);
  BENCH_CHECK(reqs && subs >= 1 && subs <= 8, "bad args");
  memset(reqs, 0, (size_t)n * sizeof *reqs);
  start_pool(uv_default_loop(), bench_workers());
  bench_slots_reset();
  bench_counter_init(&ctr, ff ? n : 0);
  struct sub s[8];
  for (int k = 0; k < subs; k++) {
    s[k].reqs = reqs;
    s[k].lo = 1 + (long)k * n / subs;
    s[k].hi = 1 + (long)(k + 1) * n / subs;
    s[k].ff = ff;
  }
  int64_t t0, t1;
  if (subs == 1) {
    bench_mark_submitter();
    t0 = bench_now_ns();
    submit_and_run(&s[0]);
    if (ff) bench_counter_wait(&ctr);
    t1 = bench_now_ns();
  } else {
    pthread_t th[8];
    for (int k = 0; k < subs; k++)
      BENCH_CHECK(pthread_create(&th[k], NULL, submitter_thread, &s[k]) == 0, "pthread_create");
    bench_sleep_ns(1000000);
    t0 = bench_now_ns();
    __atomic_store_n(&go_flag, 1, __ATOMIC_RELEASE);
    for (int k = 0; k < subs; k++) pthread_join(th[k], NULL);
    if (ff) bench_counter_wait(&ctr);
    t1 = bench_now_ns();
  }
  BENCH_CHECK(ctr.left == 0, "counter ended at %ld", ctr.left);
  BENCH_CHECK(ff || n_done == n, "%ld completions of %ld", n_done, n);
  double share = bench_check_slots((uint64_t)n);
  char extra[64];
  snprintf(extra, sizeof extra, "share=%.4f", share);
  bench_result((double)(t1 - t0) / (double)n, "ns/task", extra);
  free(reqs);
  return 0;
}

static int run_rt(int argc, char **argv) {
  int cold = argc > 2 && strcmp(argv[2], "cold") == 0;
  long n = bench_arg_long(argc, argv, 3, 100000);
  int64_t gap = bench_arg_long(argc, argv, 4, 2000) * 1000;
  int64_t *lat = malloc((size_t)n * sizeof *lat);
  uint64_t me = (uint64_t)bench_gettid();
  uv_loop_t *loop = uv_default_loop();
  BENCH_CHECK(lat && n > 0, "bad args");
  start_pool(loop, 2);
  bench_mark_submitter();
  bench_slots_reset();
  double cpu0 = bench_cpu_seconds();
  for (long i = 0; i < n; i++) {
    req r;
    if (cold) bench_sleep_ns(gap);
    int64_t t0 = bench_now_ns();
    r.i = (uint64_t)i + 1;
    uv_queue_work(loop, &r.w, work_tid, after_noop);
    uv_run(loop, UV_RUN_DEFAULT);
    lat[i] = bench_now_ns() - t0;
    BENCH_CHECK(r.result != me && r.result != 0, "round trip %ld ran on the caller", i);
  }
  double cpu = bench_cpu_seconds() - cpu0;
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
  uv_loop_t *loop = uv_default_loop();
  req *reqs = calloc((size_t)n, sizeof *reqs);
  BENCH_CHECK(reqs, "out of memory");
  dur = bench_exp_durations((size_t)n, 1000.0, &total);
  start_pool(loop, 2);
  bench_mark_submitter();
  bench_slots_reset();
  bench_counter_init(&ctr, n);
  int64_t t0 = bench_now_ns();
  for (long i = 1; i <= n; i++) {
    reqs[i - 1].i = (uint64_t)i;
    uv_queue_work(loop, &reqs[i - 1].w, work_spin, NULL);
  }
  uv_run(loop, UV_RUN_DEFAULT);
  bench_counter_wait(&ctr);
  int64_t wall = bench_now_ns() - t0;
  double share = bench_check_slots((uint64_t)n);
  char extra[96];
  snprintf(extra, sizeof extra, "wall_ms=%.2f share=%.4f", (double)wall / 1e6, share);
  bench_result((double)total / 2 / (double)wall, "efficiency", extra);
  return 0;
}

static int run_mem(int argc, char **argv) {
  long n = bench_arg_long(argc, argv, 2, 1000000);
  uv_loop_t *loop = uv_default_loop();
  req g[2];
  start_pool(loop, 2);
  bench_slots_reset();
  bench_counter_init(&ctr, n);
  for (int w = 0; w < 2; w++) uv_queue_work(loop, &g[w].w, work_gate, after_noop);
  bench_gate_wait_arrived(&gate, 2);
  long rss0 = bench_status_kb("VmRSS");
  /* the uv_work_t records are the pool's per-task state: counted */
  req *reqs = malloc((size_t)n * sizeof *reqs);
  BENCH_CHECK(reqs, "out of memory");
  for (long i = 1; i <= n; i++) {
    reqs[i - 1].i = (uint64_t)i;
    uv_queue_work(loop, &reqs[i - 1].w, work_ff, NULL);
  }
  long rss1 = bench_status_kb("VmRSS");
  BENCH_CHECK(bench_slots_total() == 0, "tasks ran while the workers were blocked");
  bench_gate_open(&gate);
  uv_run(loop, UV_RUN_DEFAULT);
  bench_counter_wait(&ctr);
  bench_check_slots((uint64_t)n);
  char extra[64];
  snprintf(extra, sizeof extra, "rss_mb=%.1f", (double)(rss1 - rss0) / 1024.0);
  bench_result((double)(rss1 - rss0) * 1024.0 / (double)n, "B/task", extra);
  free(reqs);
  return 0;
}

static int run_idle(int argc, char **argv) {
  int threads = (int)bench_arg_long(argc, argv, 2, 8);
  long ms = bench_arg_long(argc, argv, 3, 1000);
  start_pool(uv_default_loop(), threads);
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
  /* the pool reads its size once, at its first use */
  char nw[16];
  snprintf(nw, sizeof nw, "%d", bench_workers()); /* 2 unless the row says */
  setenv("UV_THREADPOOL_SIZE", strcmp(w, "idle") ? nw : (argc > 2 ? argv[2] : "8"), 1);
  if (!strcmp(w, "submit")) return run_submit(argc, argv);
  if (!strcmp(w, "rt")) return run_rt(argc, argv);
  if (!strcmp(w, "imbal")) return run_imbal(argc, argv);
  if (!strcmp(w, "mem")) return run_mem(argc, argv);
  if (!strcmp(w, "idle")) return run_idle(argc, argv);
  fprintf(stderr, "usage: anchor-uv submit|rt|imbal|mem|idle ...\n");
  return 64;
}
