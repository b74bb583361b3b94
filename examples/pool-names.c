/* pool-names.c - a pool of 10 workers running 100 named tasks.
 *
 * The Python it mirrors (seed tutorial, "3. 线程池"):
 *
 *     from concurrent.futures import ThreadPoolExecutor
 *
 *     def fn(name):
 *         for i in range(1000):
 *             print(name, i)
 *
 *     with ThreadPoolExecutor(10) as t:
 *         for i in range(100):
 *             t.submit(fn, name=f"线程{i}")
 *
 * The pool creates its threads for us (lazily, at most 10) and hands the 100
 * tasks to whichever worker is free.  Lines of different tasks interleave;
 * each task's own lines stay in order.
 *
 * Environment: CONC_EXAMPLE_N=<n> shortens each task's loop (default 1000).
 */
#include <stdio.h>
#include <stdlib.h>

#include <conc.h>

enum { N_TASKS = 100 };

static int count = 1000; /* lines per task */

/* Stop with a message if a conc call failed: every conc call returns 0 or a
 * negative CONC_E* code, which conc_strerror() names. */
static void check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "%s: %s\n", what, conc_strerror(rc));
    exit(1);
  }
}

/* A task: a conc_fn takes one void * and returns one. */
static void *fn(void *arg) {
  const char *name = arg;
  for (int i = 0; i < count; i++)
    printf("%s %d\n", name, i);
  return NULL;
}

int main(void) {
  const char *n = getenv("CONC_EXAMPLE_N");
  if (n)
    count = atoi(n);

  /* ThreadPoolExecutor(10): options start from their defaults, then we set
   * what we need (so a newer library with more options still works). */
  conc_thread_pool_options opts;
  conc_thread_pool_options_init(&opts);
  opts.max_workers = 10;
  conc_executor *t;
  check(conc_thread_pool_create(&opts, &t), "conc_thread_pool_create");

  /* The names must live until the tasks have run: keep them in main. */
  static char names[N_TASKS][32];
  for (int i = 0; i < N_TASKS; i++) {
    snprintf(names[i], sizeof names[i], "线程%d", i);
    /* t.submit(fn, name=...): Python drops the returned future, so we pass
     * NULL for it and the task runs without a handle. */
    check(conc_executor_submit(t, fn, names[i], NULL), "conc_executor_submit");
  }

  /* Leaving the `with` block: wait for every task, then free the pool. */
  check(conc_executor_destroy(t), "conc_executor_destroy");
  return 0;
}
