/* bench/bench-mpi.c - the MPI executor, workload M of bench/driver.py
 * (issue 9).  One row per run, under mpiexec (rank 0 is the client, the
 * other ranks serve; bench/mpi-row.sh starts it as the driver does):
 *
 *   mpiexec -n 2 bench-mpi one N [--no-isolate]     tiny task, 1 in flight
 *   mpiexec -n 2 bench-mpi pipe N W [--no-isolate]  tiny tasks, W in flight
 *   mpiexec -n 2 bench-mpi big N W [--no-isolate]   1 MiB in + 1 MiB out
 *   mpiexec -n 2 bench-mpi idle MS [--no-isolate]   idle CPU, rank 0 + worker
 *   bench-mpi --pool MODE ...                       the same on a process
 *                                                   pool of 1 (no MPI)
 *
 * Tiny task: 8 bytes in (u64), 8 out (u64 + 1); every result is checked.
 * Pipelined: a ring of W futures over submit_task, max_in_flight = W so
 * that all of them reach the worker rank.  1 MiB: the task copies its input
 * to its output; every output is compared with the input byte for byte;
 * GB/s = (in + out bytes) / time.  A warm-up of N/10 (at least 10) tasks
 * runs first, untimed.  Output: one RESULT line (bench/common.h); a failed
 * check prints CHECK FAILED and exits 2 (mpiexec then ends the job).
 */
#include "common.h"

#include <conc.h>
#include <conc/mpi.h>

static int isolated = 1;

#define CHECK(c) BENCH_CHECK(c, "bench-mpi line %d: %s", __LINE__, #c)

/* out = in + 1 (u64) */
CONC_TASK(bm_tiny, in, len, out) {
  uint64_t v;
  if (len != sizeof v)
    return conc_task_fail(1, "want 8 bytes");
  memcpy(&v, in, sizeof v);
  v++;
  return conc_bytes_append(out, &v, sizeof v);
}

/* out = in */
CONC_TASK(bm_echo, in, len, out) { return conc_bytes_append(out, in, len); }

/* in: seconds (double) */
CONC_TASK(bm_sleep, in, len, out) {
  (void)out;
  double s;
  if (len != sizeof s)
    return conc_task_fail(1, "want a double");
  memcpy(&s, in, sizeof s);
  return conc_sleep(s);
}

/* CPU seconds (utime + stime) of a process, from /proc. */
static double proc_cpu(int pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')');
  if (!p)
    return -1;
  unsigned long ut = 0, st = 0;
  int ppid = 0;
  /* after ")": state ppid pgrp session tty tpgid flags minflt cminflt
   * majflt cmajflt utime stime */
  if (sscanf(p + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
             &ppid, &ut, &st) != 3)
    return -1;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static int parent_of(int pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')');
  int ppid = -1;
  if (!p || sscanf(p + 2, "%*c %d", &ppid) != 1)
    return -1;
  return ppid;
}

/* The CPU time of the worker rank this task runs for: the process itself
 * without isolation, else the grandparent (rank -> fork server -> worker).
 * in: one byte, 1 if isolated; out: pid (i32) + CPU seconds (double). */
CONC_TASK(bm_rank_cpu, in, len, out) {
  int pid = getpid();
  if (len == 1 && ((const unsigned char *)in)[0])
    pid = parent_of(parent_of(pid));
  double cpu = proc_cpu(pid);
  int32_t p32 = pid;
  int rc = conc_bytes_append(out, &p32, sizeof p32);
  return rc ? rc : conc_bytes_append(out, &cpu, sizeof cpu);
}

static uint64_t tiny_result(conc_future *f) {
  void *r;
  CHECK(conc_future_result(f, -1, &r) == 0);
  const conc_bytes *b = r;
  uint64_t v;
  CHECK(b->len == sizeof v);
  memcpy(&v, b->data, sizeof v);
  return v;
}

static double p50, p99; /* of the last tiny() with window 1 */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* n tiny tasks, window in flight; seconds */
static double tiny(conc_executor *ex, long n, size_t window) {
  conc_future **ring = calloc(window, sizeof *ring);
  uint64_t *want = calloc(window, sizeof *want);
  CHECK(ring && want);
  double *lat = window == 1 ? calloc((size_t)n + 1, sizeof *lat) : NULL;
  double t0 = conc_now(), ts = t0;
  for (long i = 0; i < n + (long)window; i++) {
    size_t k = (size_t)i % window;
    if (ring[k]) {
      CHECK(tiny_result(ring[k]) == want[k]);
      if (lat) {
        double t = conc_now();
        lat[i - 1] = t - ts;
        ts = t;
      }
      conc_future_release(ring[k]);
      ring[k] = NULL;
    }
    if (i < n) {
      uint64_t v = (uint64_t)i * 3;
      want[k] = v + 1;
      CHECK(conc_executor_submit_task(ex, "bm_tiny", &v, sizeof v, NULL,
                                      &ring[k]) == 0);
    }
  }
  double t = conc_now() - t0;
  if (lat) { /* p50 / p99 of the round trips, for the notes column */
    qsort(lat, (size_t)n, sizeof *lat, cmp_double);
    p50 = lat[n / 2];
    p99 = lat[n * 99 / 100];
    free(lat);
  }
  free(ring);
  free(want);
  return t;
}

#define BIG (1u << 20)

/* n tasks of 1 MiB in + out, window in flight; seconds */
static double bulk(conc_executor *ex, long n, size_t window) {
  unsigned char *in = malloc(BIG);
  CHECK(in);
  for (size_t i = 0; i < BIG; i++)
    in[i] = (unsigned char)(i * 131 + 7);
  conc_future **ring = calloc(window, sizeof *ring);
  unsigned char *first = calloc(window, 1);
  CHECK(ring && first);
  double t0 = conc_now();
  for (long i = 0; i < n + (long)window; i++) {
    size_t k = (size_t)i % window;
    if (ring[k]) {
      void *r;
      CHECK(conc_future_result(ring[k], -1, &r) == 0);
      const conc_bytes *b = r;
      CHECK(b->len == BIG && b->data[0] == first[k] &&
            memcmp(b->data + 1, in + 1, BIG - 1) == 0);
      conc_future_release(ring[k]);
      ring[k] = NULL;
    }
    if (i < n) {
      /* a different payload each time (submit copies the input) */
      in[0] = first[k] = (unsigned char)(i * 7 + 1);
      CHECK(conc_executor_submit_task(ex, "bm_echo", in, BIG, NULL,
                                      &ring[k]) == 0);
    }
  }
  double t = conc_now() - t0;
  free(ring);
  free(first);
  free(in);
  return t;
}

/* rank 0's and the worker rank's CPU over ms of idleness (% of a core) */
static void idle(conc_executor *ex, long ms) {
  double s = (double)ms / 1e3;
  unsigned char iso = (unsigned char)isolated;
  conc_future *f;
  void *r;
  int32_t pid[2];
  double cpu[2], c0 = 0, t0 = 0;
  for (int k = 0; k < 2; k++) {
    CHECK(conc_executor_submit_task(ex, "bm_rank_cpu", &iso, 1, NULL, &f) ==
          0);
    CHECK(conc_future_result(f, -1, &r) == 0);
    CHECK(((const conc_bytes *)r)->len == 12);
    memcpy(&pid[k], ((const conc_bytes *)r)->data, 4);
    memcpy(&cpu[k], ((const conc_bytes *)r)->data + 4, sizeof cpu[k]);
    conc_future_release(f);
    if (k == 0) {
      c0 = bench_cpu_seconds();
      t0 = conc_now();
      conc_sleep(s);
    }
  }
  double el = conc_now() - t0, mine = bench_cpu_seconds() - c0;
  CHECK(pid[0] == pid[1] && cpu[0] >= 0);
  char extra[128];
  snprintf(extra, sizeof extra, "client_pct=%.3f worker_pct=%.3f",
           mine / el * 100, (cpu[1] - cpu[0]) / el * 100);
  bench_result((mine + cpu[1] - cpu[0]) / el * 100, "%CPU", extra);
}

int main(int argc, char **argv) {
  conc_init(&argc, &argv);
  conc_mpi_options o;
  conc_mpi_options_init(&o);
  bool pool = false;
  char *pos[4] = {0};
  int npos = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--no-isolate") == 0)
      o.isolate = false;
    else if (strcmp(argv[i], "--pool") == 0)
      pool = true;
    else if (npos < 4)
      pos[npos++] = argv[i];
  }
  const char *mode = pos[0] ? pos[0] : "";
  long n = pos[1] ? strtol(pos[1], NULL, 10) : 1000;
  size_t window = pos[2] ? (size_t)strtoul(pos[2], NULL, 10) : 1;
  if (strcmp(mode, "one") == 0)
    window = 1;
  if (n <= 0 || window == 0 || window > 4096) {
    fprintf(stderr, "usage: bench-mpi one|pipe|big|idle N [W] "
                    "[--no-isolate] [--pool]\n");
    return 2;
  }
  isolated = o.isolate;
  o.max_in_flight = (unsigned)window;
  conc_executor *ex;
  int rc;
  if (pool) { /* the same rows on a process pool, for comparison */
    conc_process_pool_options po;
    conc_process_pool_options_init(&po);
    po.max_workers = 1;
    po.max_in_flight = (unsigned)window;
    rc = conc_process_pool_create(&po, &ex);
    isolated = 0; /* bm_rank_cpu: the pool worker itself */
  } else {
    rc = conc_mpi_executor_create(&o, &ex);
  }
  CHECK(rc == 0);
  CHECK(conc_executor_max_workers(ex) >= 1);
  char extra[128];
  long warm = n / 10 < 10 ? 10 : n / 10;
  if (strcmp(mode, "one") == 0 || strcmp(mode, "pipe") == 0) {
    tiny(ex, warm, window);
    double t = tiny(ex, n, window);
    if (window == 1)
      snprintf(extra, sizeof extra, "p50=%.0f p99=%.0f", p50 * 1e9,
               p99 * 1e9);
    else
      snprintf(extra, sizeof extra, "window=%zu", window);
    bench_result(t / (double)n * 1e9, "ns/task", extra);
  } else if (strcmp(mode, "big") == 0) {
    bulk(ex, warm < 4 ? warm : 4, window);
    double t = bulk(ex, n, window);
    snprintf(extra, sizeof extra, "task_us=%.1f", t / (double)n * 1e6);
    bench_result(2.0 * BIG * (double)n / t / 1e9, "GB/s", extra);
  } else if (strcmp(mode, "idle") == 0) {
    tiny(ex, 1000, 1);
    idle(ex, n);
  } else {
    fprintf(stderr, "bench-mpi: unknown mode '%s'\n", mode);
    return 2;
  }
  CHECK(conc_executor_destroy(ex) == 0);
  return 0;
}
