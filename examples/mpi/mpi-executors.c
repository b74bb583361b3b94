/* mpi-executors.c - the seed's thread-pool example (pool-map.c, 方案二) on
 * the executor of your choice: threads, processes, or MPI ranks.
 *
 *     def func(name):
 *         time.sleep(name)
 *         return name
 *
 *     with ThreadPoolExecutor(10) as t:        # or ProcessPoolExecutor(),
 *         for r in t.map(func, [5, 2, 3]):     # or MPIPoolExecutor()
 *             print("result", r)
 *
 * The task is written once, as a registered task (a name, bytes in, bytes
 * out), and the code that maps it does not change: only the line that
 * creates the executor does.
 *
 *   ./mpi-executors --threads                 a thread pool of 10
 *   ./mpi-executors --processes               a process pool
 *   mpiexec -n 3 ./mpi-executors --mpi        rank 0 maps, ranks 1-2 work
 *
 * Under mpiexec every rank runs main; ranks other than 0 stay inside
 * conc_mpi_executor_create (they serve tasks) and exit there.
 *
 * Environment: CONC_EXAMPLE_SLEEP_SCALE=<x> multiplies the sleeps.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <conc.h>
#include <conc/mpi.h>

static double scale(void) {
  const char *s = getenv("CONC_EXAMPLE_SLEEP_SCALE");
  return s ? atof(s) : 1.0;
}

/* The task: in, a number of seconds (int32); out, the same number. */
CONC_TASK(func, in, len, out) {
  int32_t name;
  if (len != sizeof name)
    return conc_task_fail(1, "func wants 4 bytes, got %zu", len);
  memcpy(&name, in, sizeof name);
  conc_sleep(name * scale());
  return conc_bytes_append(out, &name, sizeof name);
}

static void check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "%s: %s\n", what, conc_strerror(rc));
    exit(1);
  }
}

int main(int argc, char **argv) {
  conc_init(&argc, &argv); /* first: the process pool's fork server */
  const char *mode = argc > 1 ? argv[1] : "--threads";
  double start = conc_now();

  conc_executor *t;
  if (strcmp(mode, "--threads") == 0) {
    conc_thread_pool_options o;
    conc_thread_pool_options_init(&o);
    o.max_workers = 10;
    check(conc_thread_pool_create(&o, &t), "conc_thread_pool_create");
  } else if (strcmp(mode, "--processes") == 0) {
    check(conc_process_pool_create(NULL, &t), "conc_process_pool_create");
  } else if (strcmp(mode, "--mpi") == 0) {
    check(conc_mpi_executor_create(NULL, &t), "conc_mpi_executor_create");
  } else {
    fprintf(stderr, "usage: %s --threads | --processes | --mpi\n", argv[0]);
    return 2;
  }

  /* From here on the code is the same whatever the executor. */
  int32_t names[] = {5, 2, 3};
  conc_buf in[3];
  for (int i = 0; i < 3; i++)
    in[i] = (conc_buf){&names[i], sizeof names[i]};
  conc_map *results;
  check(conc_executor_map_task(t, "func", in, 3, NULL, &results),
        "conc_executor_map_task");
  void *r;
  int rc;
  while ((rc = conc_map_next(results, &r)) == 1) {
    const conc_bytes *b = r;
    int32_t v;
    memcpy(&v, b->data, sizeof v);
    printf("result %d\n", (int)v);
  }
  check(rc, "conc_map_next");
  conc_map_destroy(results);
  check(conc_executor_destroy(t), "conc_executor_destroy");
  printf("%f\n", conc_now() - start);
  return 0;
}
