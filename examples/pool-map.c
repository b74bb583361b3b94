/* pool-map.c - Executor.map: results in input order.
 *
 * The Python it mirrors (seed tutorial, "如果任务有返回值怎么办?", 方案二):
 *
 *     def func(name):
 *         time.sleep(name)
 *         return name
 *
 *     start = time.time()
 *     with ThreadPoolExecutor(10) as t:
 *         names = [5, 2, 3]
 *         results = t.map(func, names)
 *         for r in results:
 *             print("result", r)
 *     print(time.time() - start)
 *
 * The three tasks run at once, so the whole thing takes about 5 s, not 10.
 * Results come back in the order of the inputs: "result 5" first, even
 * though the 2 s and 3 s tasks finished earlier (map waits for the first).
 *
 * Environment: CONC_EXAMPLE_SLEEP_SCALE=<x> multiplies the sleeps
 * (default 1.0; the tests use a small value).
 */
#include <stdint.h>
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

/* The task: the argument is a number of seconds, carried in the pointer. */
static void *func(void *name) {
  conc_sleep((double)(intptr_t)name * scale);
  return name;
}

int main(void) {
  const char *s = getenv("CONC_EXAMPLE_SLEEP_SCALE");
  if (s)
    scale = atof(s);

  double start = conc_now();

  conc_thread_pool_options opts;
  conc_thread_pool_options_init(&opts);
  opts.max_workers = 10;
  conc_executor *t;
  check(conc_thread_pool_create(&opts, &t), "conc_thread_pool_create");

  void *names[] = {(void *)(intptr_t)5, (void *)(intptr_t)2,
                   (void *)(intptr_t)3};

  /* t.map(func, names): an iterator; NULL options are Python's defaults. */
  conc_map *results;
  check(conc_executor_map(t, func, names, 3, NULL, &results),
        "conc_executor_map");

  /* for r in results: conc_map_next returns 1 with a result, 0 at the end,
   * or a negative code if a task failed (where Python would raise). */
  void *r;
  int rc;
  while ((rc = conc_map_next(results, &r)) == 1)
    printf("result %d\n", (int)(intptr_t)r);
  check(rc, "conc_map_next");
  conc_map_destroy(results);

  check(conc_executor_destroy(t), "conc_executor_destroy");
  printf("%f\n", conc_now() - start);
  return 0;
}
