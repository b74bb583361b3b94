/* thread-subclass.c - the "subclass Thread and override run" pattern.
 *
 * The Python it mirrors (seed tutorial, "2. 第二种方法. 继承Thread类"):
 *
 *     from threading import Thread
 *
 *     class MyThread(Thread):
 *         def run(self):
 *             for i in range(1000):
 *                 print("func", i)
 *
 *     if __name__ == '__main__':
 *         t = MyThread()
 *         t.start()
 *         for i in range(1000):
 *             print("main", i)
 *
 * C has no classes; the same shape is a struct that embeds a conc_thread
 * (the "base class") next to its own fields, and a run function that gets
 * the conc_thread back and finds its struct with CONC_CONTAINER_OF.
 *
 * Environment: CONC_EXAMPLE_N=<n> changes the count (default 1000).
 */
#include <stdio.h>
#include <stdlib.h>

#include <conc.h>

/* class MyThread(Thread): the embedded base plus the subclass's fields. */
typedef struct my_thread {
  conc_thread base;
  int count;
} my_thread;

static void check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "%s: %s\n", what, conc_strerror(rc));
    exit(1);
  }
}

/* def run(self): self is the conc_thread; step back to the my_thread. */
static void *my_thread_run(conc_thread *base) {
  my_thread *self = CONC_CONTAINER_OF(base, my_thread, base);
  for (int i = 0; i < self->count; i++)
    printf("func %d\n", i);
  return NULL;
}

int main(void) {
  int count = 1000;
  const char *n = getenv("CONC_EXAMPLE_N");
  if (n)
    count = atoi(n);

  /* t = MyThread(); t.start() */
  my_thread t = {.count = count};
  check(conc_thread_start_run(&t.base, my_thread_run, NULL),
        "conc_thread_start_run");

  for (int i = 0; i < count; i++)
    printf("main %d\n", i);

  check(conc_thread_join(&t.base, -1, NULL), "conc_thread_join");
  return 0;
}
