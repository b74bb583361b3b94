/* bench/anchor-mpi-raw.c - raw C MPI master/worker, the floor under
 * bench-mpi's figures: the same rows without conc.
 *
 *   mpiexec -n N anchor-mpi-raw [--quick]
 *
 * Rank 0 sends 8-byte tasks (u64), workers answer u64 + 1; tiny-1 keeps one
 * in flight, tiny-pipe 8 per worker.  bulk-1 / bulk-pipe echo 1 MiB
 * (workers copy the input into a separate output buffer, as a task would).
 * Results are checked.  Blocking MPI calls (Open MPI spins in them).
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
static void tiny(int nw, long n, int window, const char *row) {
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
  printf("%-13s %10.2f us/task   (%ld tasks, %d in flight)\n", row,
         t / (double)n * 1e6, n, window);
  free(sent);
  free(got);
  free(rq);
  free(val);
}

static void bulk(int nw, long n, int window, const char *row) {
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
  printf("%-13s %10.2f GB/s     (%ld x 1 MiB in + out, %d in flight)\n",
         row, 2.0 * (double)sz * (double)n / t / 1e9, n, window);
  for (int k = 0; k < window; k++)
    free(out[k]);
  free(out);
  free(rq);
  free(in);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
  if (size < 2) {
    fprintf(stderr, "anchor-mpi-raw: run with mpiexec -n N, N >= 2\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  if (rank != 0) {
    worker();
  } else {
    int nw = size - 1;
    long n1 = quick ? 2000 : 20000, n2 = quick ? 20000 : 200000;
    long nb = quick ? 20 : 300;
    printf("anchor-mpi-raw: %d workers\n", nw);
    tiny(nw, n1 / 10, 1, "warm-up");
    tiny(nw, n1, 1, "tiny-1");
    tiny(nw, n2, 8 * nw, "tiny-pipe");
    bulk(nw, nb, 1, "bulk-1");
    bulk(nw, nb, 2 * nw, "bulk-pipe");
    for (int i = 1; i < size; i++)
      MPI_Send(NULL, 0, MPI_BYTE, i, TAG, MPI_COMM_WORLD);
  }
  MPI_Finalize();
  return 0;
}
