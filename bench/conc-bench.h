/* bench/conc-bench.h - creating a conc thread pool for a benchmark row:
 * max_workers as asked, no exit hook, and every worker started and proven
 * distinct before the clock starts (workers start lazily, so each row warms
 * them the same way). */
#ifndef CONC_BENCH_CONC_BENCH_H
#define CONC_BENCH_CONC_BENCH_H

#include "common.h"

#include <conc/error.h>
#include <conc/executor.h>
#include <conc/future.h>
#include <conc/thread_pool.h>

#define CONC_OK(call)                                                         \
  do {                                                                        \
    int rc_ = (call);                                                         \
    BENCH_CHECK(rc_ == 0, "%s: %s", #call, conc_strerror(rc_));               \
  } while (0)

static int bench_conc_started;
static int bench_conc_need;

/* Arrive, then wait (≤ 5 s) until all the pool's workers arrived. */
static void *bench_conc_starter(void *arg) {
  (void)arg;
  __atomic_add_fetch(&bench_conc_started, 1, __ATOMIC_ACQ_REL);
  int64_t until = bench_now_ns() + 5000000000LL;
  while (__atomic_load_n(&bench_conc_started, __ATOMIC_ACQUIRE) <
             bench_conc_need &&
         bench_now_ns() < until)
    bench_sleep_ns(20000);
  return (void *)(intptr_t)bench_gettid();
}

/* Start every worker: submit one task at a time and wait until it runs
 * before submitting the next (the pool starts a worker when a submission
 * finds none idle, so this works whatever its spin policy), while the
 * earlier ones keep their workers busy; then check that they ran on
 * `workers` distinct threads, none of them the caller. */
static void bench_conc_start_workers(conc_executor *ex, unsigned workers) {
  conc_future *f[64];
  pid_t tid[64];
  BENCH_CHECK(workers <= 64, "too many workers");
  __atomic_store_n(&bench_conc_started, 0, __ATOMIC_RELEASE);
  bench_conc_need = (int)workers;
  for (unsigned i = 0; i < workers; i++) {
    CONC_OK(conc_executor_submit(ex, bench_conc_starter, NULL, &f[i]));
    int64_t until = bench_now_ns() + 5000000000LL;
    while (__atomic_load_n(&bench_conc_started, __ATOMIC_ACQUIRE) < (int)i + 1) {
      BENCH_CHECK(bench_now_ns() < until,
                  "warm-up task %u of %u did not start within 5 s", i + 1, workers);
      bench_sleep_ns(20000);
    }
  }
  for (unsigned i = 0; i < workers; i++) {
    void *r;
    CONC_OK(conc_future_result(f[i], -1, &r));
    conc_future_release(f[i]);
    tid[i] = (pid_t)(intptr_t)r;
    BENCH_CHECK(tid[i] != bench_gettid(), "warm-up task ran on the caller");
    for (unsigned j = 0; j < i; j++)
      BENCH_CHECK(tid[j] != tid[i], "pool did not start %u workers", workers);
  }
}

static conc_executor *bench_conc_pool(unsigned workers) {
  conc_thread_pool_options o;
  conc_executor *ex = NULL;
  conc_thread_pool_options_init(&o);
  o.max_workers = workers;
  o.flags = CONC_EXECUTOR_NO_EXIT_HOOK;
  CONC_OK(conc_thread_pool_create(&o, &ex));
  BENCH_CHECK(conc_executor_max_workers(ex) == workers, "max_workers %u",
              conc_executor_max_workers(ex));
  bench_conc_start_workers(ex, workers);
  return ex;
}

#endif
