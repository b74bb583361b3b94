/* pool-extras.c - what concurrent.futures does not have: a bounded queue
 * (backpressure), priorities, deadlines, stopping a running task, a
 * progress display and statistics.
 *
 * Environment: CONC_EXAMPLE_N=<n> sets the number of tasks (default 2000).
 */
#include <stdio.h>
#include <stdlib.h>

#include <conc.h>

static void check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "%s: %s\n", what, conc_strerror(rc));
    exit(1);
  }
}

static void *work(void *arg) { /* a little CPU work per item */
  unsigned long x = (unsigned long)arg, h = 1469598103934665603ul;
  for (int i = 0; i < 2000; i++)
    h = (h ^ (x + (unsigned long)i)) * 1099511628211ul;
  return (void *)(h & 0xff);
}

/* A long task that honours a stop request. */
static void *patient(void *arg) {
  (void)arg;
  if (conc_task_wait_stop(60) == 0)
    return (void *)(long)conc_task_stopped();
  return NULL;
}

int main(void) {
  const char *e = getenv("CONC_EXAMPLE_N");
  long n = e ? atol(e) : 2000;

  /* A pool whose queue holds at most 64 waiting tasks: a producer faster
   * than the workers waits instead of filling memory.  TIMING keeps queue
   * wait and run time histograms. */
  conc_thread_pool_options po;
  conc_thread_pool_options_init(&po);
  po.max_workers = 4;
  po.max_queued = 64;
  po.flags = CONC_EXECUTOR_TIMING;
  conc_executor *ex;
  check(conc_thread_pool_create(&po, &ex), "conc_thread_pool_create");

  /* map with a progress display on stderr (a bar on a terminal, a plain
   * line otherwise); map waits for room in the bounded queue. */
  void **args = malloc((size_t)n * sizeof *args);
  for (long i = 0; i < n; i++)
    args[i] = (void *)i;
  conc_progress_options pgo;
  conc_progress_options_init(&pgo);
  pgo.label = "map";
  conc_progress *pg;
  check(conc_progress_start(&pg, (size_t)n, &pgo), "conc_progress_start");
  conc_map_options mo;
  conc_map_options_init(&mo);
  mo.chunksize = 16;
  mo.progress = pg;
  conc_map *m;
  check(conc_executor_map(ex, work, args, (size_t)n, &mo, &m),
        "conc_executor_map");
  void *r;
  long sum = 0;
  int rc;
  while ((rc = conc_map_next(m, &r)) == 1)
    sum += (long)r;
  check(rc, "conc_map_next");
  conc_map_destroy(m);
  conc_progress_stop(pg);
  printf("map: %ld results\n", n);

  /* A non-blocking submit on a full queue says so at once. */
  conc_submit_options so;
  conc_submit_options_init(&so);
  so.timeout = 0;
  conc_future *f;
  rc = conc_executor_submit_ex(ex, work, (void *)1, &so, &f);
  printf("non-blocking submit: %s\n",
         rc == 0 || rc == CONC_EAGAIN ? "ok or would block" : "error");
  if (rc == 0)
    conc_future_release(f);

  /* A deadline that has already passed: the task never runs. */
  conc_submit_options_init(&so);
  so.deadline = conc_now() - 1;
  check(conc_executor_submit_ex(ex, work, (void *)2, &so, &f), "submit");
  printf("late task: %s\n", conc_err_name(conc_future_result(f, -1, NULL)));
  conc_future_release(f);

  /* Stop a running task (cancel only works before it starts). */
  check(conc_executor_submit(ex, patient, NULL, &f), "submit");
  while (!conc_future_running(f))
    conc_sleep(0.001);
  check(conc_future_stop(f), "conc_future_stop");
  printf("stopped task: %s (cancelled: %s)\n",
         conc_err_name(conc_future_result(f, -1, NULL)),
         conc_future_cancelled(f) ? "yes" : "no");
  conc_future_release(f);

  /* Priorities: higher first among waiting tasks. */
  conc_submit_options_init(&so);
  so.priority = 5;
  check(conc_executor_submit_ex(ex, work, (void *)3, &so, &f), "submit");
  check(conc_future_result(f, -1, NULL), "priority task");
  conc_future_release(f);

  check(conc_executor_shutdown(ex, true, false), "shutdown");
  conc_executor_stats st;
  conc_executor_stats_init(&st);
  check(conc_executor_get_stats(ex, &st), "conc_executor_get_stats");
  printf("stats: submitted %llu, completed %llu, failed %llu, cancelled "
         "%llu, deadline missed %llu\n",
         st.submitted, st.completed, st.failed, st.cancelled,
         st.deadline_missed);
  printf("timing: %llu tasks timed, run time p50 <= %.0f us\n", st.timed,
         st.run_time_p50 * 1e6);
  check(conc_executor_destroy(ex), "conc_executor_destroy");
  free(args);
  (void)sum;
  return 0;
}
