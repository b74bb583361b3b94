/* pool-callback.c - tasks with return values, collected by done callbacks.
 *
 * The Python it mirrors (seed tutorial, "如果任务有返回值怎么办?", 方案一):
 *
 *     def func(name):
 *         time.sleep(2)
 *         return name
 *
 *     def do_callback(res):
 *         print(res.result())
 *
 *     with ThreadPoolExecutor(10) as t:
 *         names = ["线程1", "线程2", "线程3"]
 *         for name in names:
 *             t.submit(func, name).add_done_callback(do_callback)
 *
 * Each callback runs as soon as its task finishes, so the names come out in
 * completion order, which differs from run to run.
 *
 * Environment: CONC_EXAMPLE_SLEEP_SCALE=<x> multiplies the sleeps
 * (default 1.0; the tests use a small value).
 */
#include <stdio.h>
#include <stdlib.h>

#include <conc.h>

static double scale = 1.0;

static void check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "%s: %s\n", what, conc_strerror(rc));
    exit(1);
  }
}

/* The task: sleep, then return its argument as the result. */
static void *func(void *name) {
  conc_sleep(2 * scale);
  return name;
}

/* A done callback: runs once when the future is done, on the worker thread
 * that finished it.  The future is done, so conc_future_result does not
 * wait (timeout 0). */
static int do_callback(conc_future *res, void *arg) {
  (void)arg;
  void *name;
  int rc = conc_future_result(res, 0, &name);
  if (rc == 0)
    printf("%s\n", (const char *)name);
  else
    printf("task failed: %s\n", conc_strerror(rc));
  return 0; /* non-zero would be reported through the log handler */
}

int main(void) {
  const char *s = getenv("CONC_EXAMPLE_SLEEP_SCALE");
  if (s)
    scale = atof(s);

  conc_thread_pool_options opts;
  conc_thread_pool_options_init(&opts);
  opts.max_workers = 10;
  conc_executor *t;
  check(conc_thread_pool_create(&opts, &t), "conc_thread_pool_create");

  static const char *names[] = {"线程1", "线程2", "线程3"};
  for (int i = 0; i < 3; i++) {
    conc_future *f;
    check(conc_executor_submit(t, func, (void *)names[i], &f),
          "conc_executor_submit");
    check(conc_future_add_done_callback(f, do_callback, NULL),
          "conc_future_add_done_callback");
    /* We keep no handle, as the Python keeps none: drop our reference.  The
     * pool holds its own until the task is done and the callback ran. */
    conc_future_release(f);
  }

  /* Leaving the `with` block waits for the tasks (and their callbacks). */
  check(conc_executor_destroy(t), "conc_executor_destroy");
  return 0;
}
