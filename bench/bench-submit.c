/* bench/bench-submit.c - conc: N empty tasks, then wait for all of them
 * (workloads 1 and 2).
 *
 *   bench-submit handle|ff|bulk SUBMITTERS N [CHUNK [FEATURE]]
 *
 * handle: every submit returns a future; each submitter then waits for its
 *         own futures in order, checks each result, releases it.
 * ff:     submit with out == NULL; each task decrements a counter that the
 *         main thread waits on (spin, then futex).
 * bulk:   one conc_executor_for over N items with grain CHUNK, the caller
 *         taking chunks too, as TBB's parallel_for (1 submitter only).
 * Prints ns per task.  Inputs are 1..N; every task is accounted for. */
#include "conc-bench.h"

#define WORKERS bench_workers()

static conc_executor *ex;
static bench_counter ctr;
static long n_tasks;
static int submitters;
static conc_future **futs;
static int go_flag;

static void *task_handle(void *arg) {
  bench_account((uint64_t)(uintptr_t)arg);
  return arg;
}

static void *task_ff(void *arg) {
  bench_account((uint64_t)(uintptr_t)arg);
  bench_counter_dec(&ctr);
  return NULL;
}

static int bulk_body(size_t b, size_t e, void *ctx) {
  (void)ctx;
  for (size_t i = b; i < e; i++)
    bench_account((uint64_t)i + 1);
  return 0;
}

/* Submitter s takes inputs lo..hi-1 of 1..N. */
/* FEATURE (5th argument: timing|bounded|prio|stats): the same run with one
 * of issue 7's features switched on, to show what each costs. */
static const char *feature;
static int prio_of_task;

static void submit_range(int s, int ff) {
  long lo = 1 + (long)s * n_tasks / submitters;
  long hi = 1 + (long)(s + 1) * n_tasks / submitters;
  conc_submit_options so;
  conc_submit_options_init(&so);
  so.priority = prio_of_task;
  for (long i = lo; i < hi; i++)
    CONC_OK(conc_executor_submit_ex(ex, ff ? task_ff : task_handle,
                                    (void *)(uintptr_t)i, &so,
                                    ff ? NULL : &futs[i - 1]));
  if (ff) return;
  for (long i = lo; i < hi; i++) {
    void *r;
    CONC_OK(conc_future_result(futs[i - 1], -1, &r));
    BENCH_CHECK(r == (void *)(uintptr_t)i, "task %ld returned %p", i, r);
    conc_future_release(futs[i - 1]);
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

int main(int argc, char **argv) {
  const char *cls = argc > 1 ? argv[1] : "handle";
  int ff = strcmp(cls, "ff") == 0, bulk = strcmp(cls, "bulk") == 0;
  submitters = (int)bench_arg_long(argc, argv, 2, 1);
  n_tasks = bench_arg_long(argc, argv, 3, 1000000);
  long chunk = bench_arg_long(argc, argv, 4, 1024);
  BENCH_CHECK(submitters >= 1 && submitters <= 8 && n_tasks > 0, "bad args");
  BENCH_CHECK(!bulk || submitters == 1, "bulk takes one submitter");

  futs = calloc((size_t)n_tasks, sizeof *futs);
  void **args = malloc((size_t)n_tasks * sizeof *args);
  BENCH_CHECK(futs && args, "out of memory");
  for (long i = 0; i < n_tasks; i++) args[i] = (void *)(uintptr_t)(i + 1);
  feature = argc > 5 ? argv[5] : NULL;
  if (feature && *feature) {
    conc_thread_pool_options o;
    conc_thread_pool_options_init(&o);
    o.max_workers = WORKERS;
    o.flags = CONC_EXECUTOR_NO_EXIT_HOOK;
    if (strcmp(feature, "timing") == 0)
      o.flags |= CONC_EXECUTOR_TIMING;
    else if (strcmp(feature, "bounded") == 0)
      o.max_queued = 2 * (size_t)n_tasks; /* counted, never full */
    else if (strcmp(feature, "prio") == 0)
      prio_of_task = 1; /* every task through the priority queue */
    else
      BENCH_CHECK(strcmp(feature, "stats") == 0, "unknown feature %s",
                  feature);
    CONC_OK(conc_thread_pool_create(&o, &ex));
    bench_conc_start_workers(ex, WORKERS);
  } else {
    ex = bench_conc_pool(WORKERS);
  }
  bench_slots_reset();
  bench_counter_init(&ctr, ff ? n_tasks : 0);

  int64_t t0, t1;
  if (bulk) {
    /* one call over the range: conc_executor_for with grain CHUNK */
    bench_mark_submitter();
    t0 = bench_now_ns();
    CONC_OK(conc_executor_for(ex, (size_t)n_tasks, (size_t)chunk, bulk_body,
                              NULL));
    t1 = bench_now_ns();
  } else if (submitters == 1) {
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
      BENCH_CHECK(pthread_create(&th[s], NULL, submitter_thread, &a[s]) == 0,
                  "pthread_create");
    }
    bench_sleep_ns(1000000);
    t0 = bench_now_ns();
    __atomic_store_n(&go_flag, 1, __ATOMIC_RELEASE);
    if (ff) bench_counter_wait(&ctr);
    for (int s = 0; s < submitters; s++) pthread_join(th[s], NULL);
    t1 = bench_now_ns();
  }
  if (feature && *feature) {
    conc_executor_stats st;
    conc_executor_stats_init(&st);
    CONC_OK(conc_executor_shutdown(ex, true, false));
    CONC_OK(conc_executor_get_stats(ex, &st));
    BENCH_CHECK(st.completed >= (unsigned long long)n_tasks && st.queued == 0,
                "stats: completed %llu queued %llu", st.completed, st.queued);
  }
  CONC_OK(conc_executor_destroy(ex));
  BENCH_CHECK(ctr.left == 0, "counter ended at %ld", ctr.left);
  double share = bench_check_slots((uint64_t)n_tasks);
  char extra[64];
  snprintf(extra, sizeof extra, "share=%.4f", share);
  bench_result((double)(t1 - t0) / (double)n_tasks, "ns/task", extra);
  free(futs);
  free(args);
  return 0;
}
