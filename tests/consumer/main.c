/* consumer main.c - a program built against the *installed* conc, as a
 * user's project would be (see tools/consumers.sh).  Submits a task to a
 * thread pool and checks its result and the library version. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <conc.h>

static void *square(void *arg) {
  intptr_t x = (intptr_t)arg;
  return (void *)(x * x);
}

static void check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "consumer (C): %s: %s\n", what, conc_strerror(rc));
    exit(1);
  }
}

int main(void) {
  if (conc_version() != CONC_VERSION_HEX) {
    fprintf(stderr, "consumer (C): header %s, library %s\n", "mismatch",
            conc_version_string());
    return 1;
  }
  conc_thread_pool_options opts;
  conc_thread_pool_options_init(&opts);
  opts.max_workers = 2;
  conc_executor *ex;
  check(conc_thread_pool_create(&opts, &ex), "conc_thread_pool_create");
  conc_future *f;
  check(conc_executor_submit(ex, square, (void *)(intptr_t)7, &f),
        "conc_executor_submit");
  void *r;
  check(conc_future_result(f, -1, &r), "conc_future_result");
  conc_future_release(f);
  check(conc_executor_destroy(ex), "conc_executor_destroy");
  if ((intptr_t)r != 49) {
    fprintf(stderr, "consumer (C): 7 * 7 gave %ld\n", (long)(intptr_t)r);
    return 1;
  }
  printf("consumer (C): 7 * 7 = 49 with conc %s\n", conc_version_string());
  return 0;
}
