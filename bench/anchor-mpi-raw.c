/* bench/anchor-mpi-raw.c - raw C MPI master/worker, the floor under
 * bench-mpi's figures (workload M): the same rows without conc.
 *
 *   mpiexec -n N anchor-mpi-raw one N      tiny task, 1 in flight
 *   mpiexec -n N anchor-mpi-raw pipe N W   tiny tasks, W in flight
 *   mpiexec -n N anchor-mpi-raw big N W    1 MiB in + 1 MiB out, W in flight
 *
 * Rank 0 sends 8-byte tasks (u64), workers answer u64 + 1; W tasks in
 * flight in all, round-robin over the workers.  big echoes 1 MiB (workers
 * copy the input into a separate output buffer, as a task would).  Every
 * result is checked; one RESULT line as bench/common.h prints it; a failed
 * check aborts the job (non-zero exit).  Blocking MPI calls (Open MPI spins
 * in them): the fastest a master/worker loop gets, with no future, no
 * thread hand-off and no wire format.
 */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAG 1
#define CHECK(c)                                                              \
  do {                                                                        \
    if (!(c)) {                                                               \
      fprintf(stderr, "anchor-mpi-raw: check failed at line %d: %s\n",       \
              __LINE__, #c);                                                  \
      MPI_Abort(MPI_COMM_WORLD, 1);                                           \
    }                                                                         \
  } while (0)

static void worker(void) {
  size_t cap = 1u << 20;
  unsigned char *in = malloc(cap), *out = malloc(cap);
  for (;;) {
    MPI_Status st;
    MPI_Recv(in, (int)cap, MPI_BYTE, 0, TAG, MPI_COMM_WORLD, &st);
    int n;
    MPI_Get_count(&st, MPI_BYTE, &n);
    if (n == 0)
      break;
    if (n == 8) {
      uint64_t v;
      memcpy(&v, in, 8);
      v++;
      memcpy(out, &v, 8);
    } else {
      memcpy(out, in, (size_t)n);
    }
    MPI_Send(out, n, MPI_BYTE, 0, TAG, MPI_COMM_WORLD);
  }
  free(in);
  free(out);
}

/* window tasks in flight in all, spread round-robin over the workers */
static double tiny(int nw, long n, int window) {
  uint64_t *sent = calloc((size_t)nw + 1, sizeof *sent);
  uint64_t *got = calloc((size_t)window, sizeof *got);
  MPI_Request *rq = malloc((size_t)window * sizeof *rq);
  uint64_t *val = malloc((size_t)window * sizeof *val);
  double t0 = MPI_Wtime();
  long issued = 0, done = 0;
  for (int k = 0; k < window && issued < n; k++, issued++) {
    val[k] = (uint64_t)issued;
    int dest = 1 + k % nw;
    MPI_Send(&val[k], 8, MPI_BYTE, dest, TAG, MPI_COMM_WORLD);
    MPI_Irecv(&got[k], 8, MPI_BYTE, dest, TAG, MPI_COMM_WORLD, &rq[k]);
  }
  while (done < n) {
    int k;
    MPI_Waitany(window, rq, &k, MPI_STATUS_IGNORE);
    CHECK(got[k] == val[k] + 1);
    done++;
    if (issued < n) {
      val[k] = (uint64_t)issued++;
      int dest = 1 + k % nw;
      MPI_Send(&val[k], 8, MPI_BYTE, dest, TAG, MPI_COMM_WORLD);
      MPI_Irecv(&got[k], 8, MPI_BYTE, dest, TAG, MPI_COMM_WORLD, &rq[k]);
    }
  }
  double t = MPI_Wtime() - t0;
  free(sent);
  free(got);
  free(rq);
  free(val);
  return t;
}

static double bulk(int nw, long n, int window) {
  size_t sz = 1u << 20;
  unsigned char *in = malloc(sz);
  for (size_t i = 0; i < sz; i++)
    in[i] = (unsigned char)(i * 131 + 7);
  unsigned char **out = malloc((size_t)window * sizeof *out);
  MPI_Request *rq = malloc((size_t)window * sizeof *rq);
  for (int k = 0; k < window; k++)
    out[k] = malloc(sz);
  double t0 = MPI_Wtime();
  long issued = 0, done = 0;
  for (int k = 0; k < window && issued < n; k++, issued++) {
    MPI_Irecv(out[k], (int)sz, MPI_BYTE, 1 + k % nw, TAG, MPI_COMM_WORLD,
              &rq[k]);
    MPI_Send(in, (int)sz, MPI_BYTE, 1 + k % nw, TAG, MPI_COMM_WORLD);
  }
  while (done < n) {
    int k;
    MPI_Waitany(window, rq, &k, MPI_STATUS_IGNORE);
    CHECK(memcmp(out[k], in, sz) == 0);
    done++;
    if (issued < n) {
      issued++;
      MPI_Irecv(out[k], (int)sz, MPI_BYTE, 1 + k % nw, TAG, MPI_COMM_WORLD,
                &rq[k]);
      MPI_Send(in, (int)sz, MPI_BYTE, 1 + k % nw, TAG, MPI_COMM_WORLD);
    }
  }
  double t = MPI_Wtime() - t0;
  for (int k = 0; k < window; k++)
    free(out[k]);
  free(out);
  free(rq);
  free(in);
  return t;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const char *mode = argc > 1 ? argv[1] : "";
  long n = argc > 2 ? strtol(argv[2], NULL, 10) : 1000;
  int window = argc > 3 ? atoi(argv[3]) : 1;
  if (strcmp(mode, "one") == 0)
    window = 1;
  if (size < 2 || n <= 0 || window <= 0 ||
      (strcmp(mode, "one") && strcmp(mode, "pipe") && strcmp(mode, "big"))) {
    if (rank == 0)
      fprintf(stderr, "usage: mpiexec -n N anchor-mpi-raw one|pipe|big N "
                      "[W] (N >= 2 ranks)\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  if (rank != 0) {
    worker();
  } else {
    int nw = size - 1;
    long warm = n / 10 < 10 ? 10 : n / 10;
    if (strcmp(mode, "big") == 0) {
      bulk(nw, warm < 4 ? warm : 4, window);
      double t = bulk(nw, n, window);
      printf("RESULT value=%.6g unit=GB/s task_us=%.1f\n",
             2.0 * (double)(1u << 20) * (double)n / t / 1e9,
             t / (double)n * 1e6);
    } else {
      tiny(nw, warm, window);
      double t = tiny(nw, n, window);
      printf("RESULT value=%.6g unit=ns/task window=%d\n",
             t / (double)n * 1e9, window);
    }
    fflush(stdout);
    for (int i = 1; i < size; i++)
      MPI_Send(NULL, 0, MPI_BYTE, i, TAG, MPI_COMM_WORLD);
  }
  MPI_Finalize();
  return 0;
}
