/* thread-target.c - start a thread with a target function.
 *
 * The Python it mirrors (seed tutorial, "第一种方法"):
 *
 *     from threading import Thread
 *
 *     def func():
 *         for i in range(1000):
 *             print("func", i)
 *
 *     if __name__ == '__main__':
 *         t = Thread(target=func)
 *         t.start()
 *         for i in range(1000):
 *             print("main", i)
 *
 * Two threads print at the same time, so "func" and "main" lines mix, in an
 * order that changes from run to run.  Each line is printed whole.
 *
 * Environment: CONC_EXAMPLE_N=<n> changes the count (default 1000).
 */
#include <stdio.h>
#include <stdlib.h>

#include <conc.h>

static int count = 1000;

static void check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "%s: %s\n", what, conc_strerror(rc));
    exit(1);
  }
}

/* The target: a conc_fn, taking and returning a void * (unused here). */
static void *func(void *arg) {
  (void)arg;
  for (int i = 0; i < count; i++)
    printf("func %d\n", i);
  return NULL;
}

int main(void) {
  const char *n = getenv("CONC_EXAMPLE_N");
  if (n)
    count = atoi(n);

  /* t = Thread(target=func); t.start().  The conc_thread is ours: it lives
   * in main's frame until the thread is joined.  NULL options: defaults. */
  conc_thread t;
  check(conc_thread_start(&t, func, NULL, NULL), "conc_thread_start");

  for (int i = 0; i < count; i++)
    printf("main %d\n", i);

  /* Python waits for its non-daemon threads before the program ends; in C
   * we say so: join (timeout -1: wait as long as it takes). */
  check(conc_thread_join(&t, -1, NULL), "conc_thread_join");
  return 0;
}
