/* bench/bench-mpi.c - the MPI executor (issue 9's figures).
 *
 *   mpiexec -n N bench-mpi [--no-isolate] [--quick] [--spin S]
 *                          [--sleep-max S]
 *   bench-mpi --pool [--quick]      the same rows on a process pool of 1
 *
 * Rows (one line each, "name value unit"), all self-checked (a wrong result
 * exits 1):
 *   tiny-1        tiny task (8 bytes in, 8 out), one in flight: us / task
 *   tiny-pipe     the same, 8 x workers in flight (window): us / task
 *   bulk-1        1 MiB in, 1 MiB out (the task copies), one in flight:
 *                 GB/s of verified payload (in + out bytes / time)
 *   bulk-pipe     the same, 2 x workers in flight
 *   idle-client   rank 0's CPU while nothing is in flight (1 s): % of a core
 *   idle-waiting  rank 0's CPU while one long task runs (1 s): % of a core
 *   idle-worker   a worker rank's CPU while it waits for work (1 s)
 * Numbers depend on the machine and the transport (mpiexec --mca btl ...);
 * bench/driver.py does not run this program yet.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <conc.h>
#include <conc/mpi.h>

static int isolated = 1;

#define CHECK(c)                                                              \
  do {                                                                        \
    if (!(c)) {                                                               \
      fprintf(stderr, "bench-mpi: check failed at line %d: %s\n", __LINE__,  \
              #c);                                                            \
      exit(1);                                                                \
    }                                                                         \
  } while (0)

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

static double self_cpu(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 +
         (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
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

static void tiny(conc_executor *ex, long n, size_t window, const char *row) {
  conc_future **ring = calloc(window, sizeof *ring);
  uint64_t *want = calloc(window, sizeof *want);
  CHECK(ring && want);
  double t0 = conc_now();
  for (long i = 0; i < n + (long)window; i++) {
    size_t k = (size_t)i % window;
    if (ring[k]) {
      CHECK(tiny_result(ring[k]) == want[k]);
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
  printf("%-13s %10.2f us/task   (%ld tasks, %zu in flight)\n", row,
         t / (double)n * 1e6, n, window);
  free(ring);
  free(want);
}

static void bulk(conc_executor *ex, long n, size_t window, const char *row) {
  size_t sz = 1u << 20;
  unsigned char *in = malloc(sz);
  CHECK(in);
  for (size_t i = 0; i < sz; i++)
    in[i] = (unsigned char)(i * 131 + 7);
  conc_future **ring = calloc(window, sizeof *ring);
  CHECK(ring);
  double t0 = conc_now();
  for (long i = 0; i < n + (long)window; i++) {
    size_t k = (size_t)i % window;
    if (ring[k]) {
      void *r;
      CHECK(conc_future_result(ring[k], -1, &r) == 0);
      const conc_bytes *b = r;
      CHECK(b->len == sz && memcmp(b->data, in, sz) == 0);
      conc_future_release(ring[k]);
      ring[k] = NULL;
    }
    if (i < n)
      CHECK(conc_executor_submit_task(ex, "bm_echo", in, sz, NULL,
                                      &ring[k]) == 0);
  }
  double t = conc_now() - t0;
  printf("%-13s %10.2f GB/s     (%ld x 1 MiB in + out, %zu in flight)\n",
         row, 2.0 * (double)sz * (double)n / t / 1e9, n, window);
  free(ring);
  free(in);
}

int main(int argc, char **argv) {
  conc_init(&argc, &argv);
  int quick = 0;
  conc_mpi_options o;
  conc_mpi_options_init(&o);
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--no-isolate") == 0)
      o.isolate = false;
    if (strcmp(argv[i], "--quick") == 0)
      quick = 1;
    if (strcmp(argv[i], "--spin") == 0 && i + 1 < argc)
      o.idle_spin = atof(argv[++i]);
    if (strcmp(argv[i], "--sleep-max") == 0 && i + 1 < argc)
      o.idle_sleep_max = atof(argv[++i]);
  }
  isolated = o.isolate;
  bool pool = false;
  for (int i = 1; i < argc; i++)
    pool |= strcmp(argv[i], "--pool") == 0;
  conc_executor *ex;
  int rc;
  if (pool) { /* the same rows on a process pool, for comparison */
    conc_process_pool_options po;
    conc_process_pool_options_init(&po);
    po.max_workers = 1;
    po.max_in_flight = 8;
    rc = conc_process_pool_create(&po, &ex);
    isolated = 0; /* bm_rank_cpu: the pool worker itself */
  } else {
    rc = conc_mpi_executor_create(&o, &ex);
  }
  if (rc) {
    fprintf(stderr, "bench-mpi: create: %s\n", conc_strerror(rc));
    return 1;
  }
  unsigned nw = conc_executor_max_workers(ex);
  printf("bench-mpi: %u worker%s, %s\n", nw, nw == 1 ? "" : "s",
         pool ? "process pool (no MPI)"
              : isolated ? "crash isolation on" : "no isolation");
  long n1 = quick ? 2000 : 20000, n2 = quick ? 20000 : 200000;
  long nb = quick ? 20 : 300;
  tiny(ex, n1 / 10, 1, "warm-up");
  tiny(ex, n1, 1, "tiny-1");
  tiny(ex, n2, 8 * (size_t)nw, "tiny-pipe");
  bulk(ex, nb, 1, "bulk-1");
  bulk(ex, nb, 2 * (size_t)nw, "bulk-pipe");

  double idle = quick ? 0.2 : 1.0;
  /* rank 0, nothing in flight */
  double c0 = self_cpu(), t0 = conc_now();
  conc_sleep(idle);
  printf("%-13s %10.2f %% of a core\n", "idle-client",
         (self_cpu() - c0) / (conc_now() - t0) * 100);
  /* rank 0 while a long task runs */
  conc_future *f;
  CHECK(conc_executor_submit_task(ex, "bm_sleep", &idle, sizeof idle, NULL,
                                  &f) == 0);
  c0 = self_cpu();
  t0 = conc_now();
  CHECK(conc_future_wait(f, -1) == 0);
  printf("%-13s %10.2f %% of a core\n", "idle-waiting",
         (self_cpu() - c0) / (conc_now() - t0) * 100);
  conc_future_release(f);
  /* a worker rank waiting for work: its CPU time, idle seconds apart */
  unsigned char iso = (unsigned char)isolated;
  void *r;
  CHECK(conc_executor_submit_task(ex, "bm_rank_cpu", &iso, 1, NULL, &f) == 0);
  CHECK(conc_future_result(f, -1, &r) == 0);
  int32_t pid1;
  double cpu1;
  memcpy(&pid1, ((const conc_bytes *)r)->data, sizeof pid1);
  memcpy(&cpu1, ((const conc_bytes *)r)->data + 4, sizeof cpu1);
  conc_future_release(f);
  t0 = conc_now();
  conc_sleep(idle);
  CHECK(conc_executor_submit_task(ex, "bm_rank_cpu", &iso, 1, NULL, &f) == 0);
  CHECK(conc_future_result(f, -1, &r) == 0);
  int32_t pid2;
  double cpu2;
  memcpy(&pid2, ((const conc_bytes *)r)->data, sizeof pid2);
  memcpy(&cpu2, ((const conc_bytes *)r)->data + 4, sizeof cpu2);
  conc_future_release(f);
  if (pid1 == pid2 && cpu1 >= 0)
    printf("%-13s %10.2f %% of a core (rank pid %d)\n", "idle-worker",
           (cpu2 - cpu1) / (conc_now() - t0) * 100, pid1);
  else
    printf("%-13s  (two different ranks answered; not measured)\n",
           "idle-worker");
  CHECK(conc_executor_destroy(ex) == 0);
  return 0;
}
