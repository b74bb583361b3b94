/* procpool-crash.c - what Python's pools get wrong: one task kills its
 * worker process.  ProcessPoolExecutor then fails every pending task with
 * BrokenProcessPool and refuses new work; multiprocessing.Pool waits
 * forever for the lost result.  conc fails that one task, with the signal,
 * replaces the worker, and runs everything else.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <conc.h>

/* in: a number; out: its square as text - unless it is 13 */
CONC_TASK(square, in, len, out) {
  int n;
  if (len != sizeof n)
    return conc_task_fail(1, "want an int");
  memcpy(&n, in, sizeof n);
  if (n == 13)
    raise(SIGSEGV); /* a bug in native code, say */
  char buf[32];
  int k = snprintf(buf, sizeof buf, "%d", n * n);
  return conc_bytes_append(out, buf, (size_t)k);
}

int main(int argc, char **argv) {
  conc_init(&argc, &argv);
  conc_executor *ex;
  int rc = conc_process_pool_create(NULL, &ex);
  if (rc) {
    fprintf(stderr, "pool: %s\n", conc_strerror(rc));
    return 1;
  }
  enum { N = 16 };
  conc_future *f[N];
  for (int i = 0; i < N; i++)
    if (conc_executor_submit_task(ex, "square", &i, sizeof i, NULL, &f[i]))
      return 1;
  int ok = 0;
  for (int i = 0; i < N; i++) {
    void *r;
    rc = conc_future_result(f[i], -1, &r);
    if (rc == 0) {
      const conc_bytes *b = r;
      printf("%d squared is %.*s\n", i, (int)b->len, (const char *)b->data);
      ok++;
    } else {
      int detail;
      const char *msg;
      conc_future_error(f[i], &detail, &msg);
      printf("%d failed: %s (%s; detail %d)\n", i, conc_strerror(rc), msg,
             detail);
    }
    conc_future_release(f[i]);
  }
  printf("%d of %d tasks succeeded\n", ok, N);
  conc_executor_destroy(ex);
  return 0;
}
