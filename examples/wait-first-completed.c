/* wait-first-completed.c - concurrent.futures.wait with FIRST_COMPLETED:
 * handle each task as soon as it is done, whatever the submission order.
 *
 *     delays = [0.4, 0.1, 0.3, 0.2]
 *     with ThreadPoolExecutor() as executor:
 *         not_done = {executor.submit(job, i, d) for i, d in enumerate(delays)}
 *         while not_done:
 *             done, not_done = wait(not_done, return_when=FIRST_COMPLETED)
 *             for f in done:
 *                 print(f.result())
 *             print(len(not_done), "still running")
 *
 * Environment: CONC_EXAMPLE_SLEEP_SCALE=<x> multiplies the delays
 * (default 1.0).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <conc.h>

static const double DELAYS[] = {0.4, 0.1, 0.3, 0.2};
enum { N = sizeof DELAYS / sizeof DELAYS[0] };

static double scale = 1.0;

static void check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "%s: %s\n", what, conc_strerror(rc));
    exit(1);
  }
}

/* The task: job i sleeps DELAYS[i] seconds and returns i. */
static void *job(void *arg) {
  intptr_t i = (intptr_t)arg;
  conc_sleep(DELAYS[i] * scale);
  return arg;
}

int main(void) {
  const char *s = getenv("CONC_EXAMPLE_SLEEP_SCALE");
  if (s)
    scale = atof(s);

  conc_thread_pool_options opts;
  conc_thread_pool_options_init(&opts);
  conc_executor *executor;
  check(conc_thread_pool_create(&opts, &executor), "conc_thread_pool_create");

  conc_future *not_done[N];
  size_t n = 0;
  for (intptr_t i = 0; i < N; i++)
    check(conc_executor_submit(executor, job, (void *)i, &not_done[n++]),
          "conc_executor_submit");

  while (n > 0) {
    /* Block until at least one is done (timeout -1: no limit).  done[i]
     * tells which; the others stay in not_done for the next round. */
    bool done[N];
    check(conc_wait(not_done, n, -1, CONC_FIRST_COMPLETED, done, NULL),
          "conc_wait");
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
      if (!done[i]) {
        not_done[kept++] = not_done[i];
        continue;
      }
      void *r;
      check(conc_future_result(not_done[i], 0, &r), "conc_future_result");
      printf("job %d done after %.1f s\n", (int)(intptr_t)r,
             DELAYS[(intptr_t)r]);
      conc_future_release(not_done[i]);
    }
    n = kept;
    printf("%zu still running\n", n);
  }

  check(conc_executor_destroy(executor), "conc_executor_destroy");
  return 0;
}
