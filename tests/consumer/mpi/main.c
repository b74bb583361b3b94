/* consumer mpi/main.c - a program built against the *installed* conc_mpi
 * (see tools/consumers.sh), run as `mpiexec -n 2 prog`: rank 0 submits a
 * registered task to the MPI executor, rank 1 runs it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <conc.h>
#include <conc/mpi.h>

CONC_TASK(square, in, len, out) {
  int64_t x;
  if (len != sizeof x)
    return conc_task_fail(1, "want 8 bytes");
  memcpy(&x, in, sizeof x);
  x *= x;
  return conc_bytes_append(out, &x, sizeof x);
}

static void check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "consumer (MPI): %s: %s\n", what, conc_strerror(rc));
    exit(1);
  }
}

int main(int argc, char **argv) {
  conc_init(&argc, &argv);
  conc_executor *ex;
  check(conc_mpi_executor_create(NULL, &ex), "conc_mpi_executor_create");
  int64_t x = 7, y = 0;
  conc_future *f;
  check(conc_executor_submit_task(ex, "square", &x, sizeof x, NULL, &f),
        "conc_executor_submit_task");
  void *r;
  check(conc_future_result(f, -1, &r), "conc_future_result");
  const conc_bytes *b = r;
  if (b->len == sizeof y)
    memcpy(&y, b->data, sizeof y);
  conc_future_release(f);
  check(conc_executor_destroy(ex), "conc_executor_destroy");
  if (y != 49) {
    fprintf(stderr, "consumer (MPI): 7 * 7 = %lld\n", (long long)y);
    return 1;
  }
  printf("7 * 7 = %lld (MPI executor, %s)\n", (long long)y,
         conc_version_string());
  return 0;
}
