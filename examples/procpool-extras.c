/* procpool-extras.c - the "beyond concurrent.futures" features on the
 * process pool: a bounded queue, priorities, a deadline, stopping a running
 * task (and killing one that ignores the request), a progress display over
 * a task map, and statistics with timing.  The same options and calls as
 * on the thread pool (pool-extras.c); the tasks are registered by name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <conc.h>

static void check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "%s: %s\n", what, conc_strerror(rc));
    exit(1);
  }
}

/* a little CPU work on the input bytes */
CONC_TASK(hash, in, len, out) {
  unsigned long h = 1469598103934665603ul;
  for (int r = 0; r < 200; r++)
    for (size_t i = 0; i < len; i++)
      h = (h ^ ((const unsigned char *)in)[i]) * 1099511628211ul;
  return conc_bytes_append(out, &h, sizeof h);
}

/* a long task that honours a stop request */
CONC_TASK(patient, in, len, out) {
  (void)in, (void)len, (void)out;
  if (conc_task_wait_stop(60) == 0)
    return conc_task_stopped();
  return 0;
}

/* a long task that ignores it (say, stuck in a library call) */
CONC_TASK(stubborn, in, len, out) {
  (void)in, (void)len, (void)out;
  for (;;)
    conc_sleep(1);
  return 0;
}

static const char *outcome(conc_future *f) {
  void *r;
  int rc = conc_future_result(f, -1, &r);
  return rc ? conc_err_name(rc) : "ok";
}

int main(int argc, char **argv) {
  conc_init(&argc, &argv);
  conc_process_pool_options o;
  conc_process_pool_options_init(&o);
  o.max_workers = 2;
  o.max_queued = 64;       /* backpressure: submit waits beyond 64 */
  o.stop_grace = 0.2;      /* a stop unanswered for 0.2 s kills the task */
  o.flags = CONC_EXECUTOR_TIMING;
  conc_executor *ex;
  check(conc_process_pool_create(&o, &ex), "process pool");

  /* a map over 200 inputs with a progress display (plain lines on stderr
   * when it is not a terminal) */
  enum { N = 200 };
  static char data[N][16];
  conc_buf in[N];
  for (int i = 0; i < N; i++) {
    int k = snprintf(data[i], sizeof data[i], "item %d", i);
    in[i] = (conc_buf){data[i], (size_t)k};
  }
  conc_progress *pr;
  check(conc_progress_start(&pr, N, NULL), "progress");
  conc_map_options mo;
  conc_map_options_init(&mo);
  mo.progress = pr;
  mo.chunksize = 8;
  conc_map *m;
  check(conc_executor_map_task(ex, "hash", in, N, &mo, &m), "map");
  void *r;
  int n = 0;
  while (conc_map_next(m, &r) == 1)
    n++;
  check(conc_map_error(m, NULL, NULL), "map");
  conc_map_destroy(m);
  conc_progress_stop(pr);
  printf("map: %d results\n", n);

  /* a deadline already passed: the task never runs */
  conc_submit_options so;
  conc_submit_options_init(&so);
  so.deadline = conc_now() - 1;
  conc_future *late;
  check(conc_executor_submit_task(ex, "hash", "x", 1, &so, &late), "late");
  printf("late task: %s\n", outcome(late));

  /* stop a task that listens, and one that does not */
  conc_future *a, *b;
  check(conc_executor_submit_task(ex, "patient", NULL, 0, NULL, &a), "a");
  check(conc_executor_submit_task(ex, "stubborn", NULL, 0, NULL, &b), "b");
  conc_executor_stats st;
  conc_executor_stats_init(&st);
  while (conc_executor_get_stats(ex, &st) == 0 && st.running < 2)
    conc_sleep(0.001); /* both started (an example may poll) */
  conc_future_stop(a);
  conc_future_stop(b);
  printf("patient task: %s (cancelled: %s)\n", outcome(a),
         conc_future_cancelled(a) ? "yes" : "no");
  printf("stubborn task: %s\n", outcome(b));

  /* a high priority overtakes the queue */
  so.deadline = -1;
  so.priority = 10;
  conc_future *urgent;
  check(conc_executor_submit_task(ex, "hash", "urgent", 6, &so, &urgent),
        "urgent");
  printf("urgent task: %s\n", outcome(urgent));

  conc_executor_get_stats(ex, &st);
  printf("stats: submitted %llu, completed %llu, failed %llu, cancelled %llu,"
         " deadline missed %llu\n",
         st.submitted, st.completed, st.failed, st.cancelled,
         st.deadline_missed);
  printf("%llu tasks timed: run time p50 <= %.0f us, queue wait p99 <= %.0f "
         "us\n",
         st.timed, st.run_time_p50 * 1e6, st.queue_wait_p99 * 1e6);
  conc_future_release(late);
  conc_future_release(a);
  conc_future_release(b);
  conc_future_release(urgent);
  check(conc_executor_destroy(ex), "destroy");
  return 0;
}
