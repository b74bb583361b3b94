/* test-mpi.c - the MPI executor, run by ctest under mpiexec (mpi/run.sh).
 *
 * Not a Check suite: Check forks every case, and an MPI process must not
 * fork itself into a second MPI process.  Each scenario is one run of this
 * program under `mpiexec -n N`; rank 0 checks everything and exits 0 only
 * if all held (worker ranks never return from conc_mpi_executor_create).
 * Deterministic: no sleeps, everything synchronises on futures.
 *
 *   test-mpi basic [--no-isolate]  results, errors, map with chunks, bulk
 *                                  payloads, as_completed, stats, shutdown
 *   test-mpi crash                 a crashing task fails alone (EWORKER)
 *   test-mpi die                   without isolation a crash kills the rank:
 *                                  mpiexec must fail (run.sh checks it)
 *   test-mpi stop                  stop requests reach a task already sent;
 *                                  one ignoring them is killed (EKILLED)
 *   test-mpi deadline --no-isolate a start deadline that passes while the task
 *                                  waits at its worker rank: CONC_EDEADLINE
 *   test-mpi registry              a worker rank registers a task at run
 *                                  time: create fails with CONC_EREGISTRY
 *   test-mpi spawn N               MPI_Comm_spawn of N workers
 *   test-mpi pool                  the basic checks on a process pool (the
 *                                  same tasks and bytes as on MPI)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conc.h"
#include "conc/mpi.h"

/* cmake/Sanitizers.cmake defines CONC_TEST_ASAN=1 / CONC_TEST_TSAN=1 in
 * the sanitizer builds */
#ifndef CONC_TEST_ASAN
#define CONC_TEST_ASAN 0
#endif
#ifndef CONC_TEST_TSAN
#define CONC_TEST_TSAN 0
#endif

static int failures;
#define CHECK(cond)                                                           \
  do {                                                                        \
    if (!(cond)) {                                                            \
      fprintf(stderr, "test-mpi: check failed at line %d: %s\n", __LINE__,    \
              #cond);                                                         \
      failures++;                                                             \
    }                                                                         \
  } while (0)
#define CHECK_RC(expr, want)                                                  \
  do {                                                                        \
    int rc_ = (expr);                                                         \
    if (rc_ != (want)) {                                                      \
      fprintf(stderr, "test-mpi: line %d: %s returned %s (%d), want %s\n",    \
              __LINE__, #expr, conc_err_name(rc_), rc_, conc_err_name(want)); \
      failures++;                                                             \
    }                                                                         \
  } while (0)

/* ---- a counting allocator: rank 0 ends with no block of conc's live ---- */

static atomic_long live;
static void *t_malloc(size_t n) {
  void *p = malloc(n);
  if (p)
    atomic_fetch_add(&live, 1);
  return p;
}
static void *t_calloc(size_t c, size_t n) {
  void *p = calloc(c, n);
  if (p)
    atomic_fetch_add(&live, 1);
  return p;
}
static void *t_realloc(void *q, size_t n) {
  void *p = realloc(q, n);
  if (p && !q)
    atomic_fetch_add(&live, 1);
  return p;
}
static void t_free(void *p) {
  if (p)
    atomic_fetch_sub(&live, 1);
  free(p);
}

/* ---- tasks ---- */

/* out = in with every byte + 1 */
CONC_TASK(tm_inc, in, len, out) {
  int rc = conc_bytes_reserve(out, len);
  if (rc)
    return rc;
  const unsigned char *p = in;
  for (size_t i = 0; i < len; i++)
    out->data[i] = (unsigned char)(p[i] + 1);
  out->len = len;
  return 0;
}

/* in: u32; out: u32 squared */
CONC_TASK(tm_square, in, len, out) {
  uint32_t v;
  if (len != sizeof v)
    return conc_task_fail(1, "tm_square wants 4 bytes, got %zu", len);
  memcpy(&v, in, sizeof v);
  v *= v;
  return conc_bytes_append(out, &v, sizeof v);
}

CONC_TASK(tm_fail, in, len, out) {
  (void)in;
  (void)len;
  (void)out;
  return conc_task_fail(42, "failed on purpose (%d)", 7);
}

CONC_TASK(tm_crash, in, len, out) {
  (void)in;
  (void)len;
  (void)out;
  raise(SIGSEGV);
  return 0;
}

/* waits for a stop request and honours it */
CONC_TASK(tm_stoppable, in, len, out) {
  (void)in;
  (void)len;
  (void)out;
  while (conc_task_wait_stop(60) != 0) {
  }
  return conc_task_stopped();
}

/* ignores stop requests */
CONC_TASK(tm_hang, in, len, out) {
  (void)in;
  (void)len;
  (void)out;
  for (;;)
    pause();
  return 0;
}

/* wait until the file named by the input exists */
CONC_TASK(tm_gate, in, len, out) {
  (void)out;
  char path[512];
  snprintf(path, sizeof path, "%.*s", (int)len, (const char *)in);
  while (access(path, F_OK) != 0)
    conc_sleep(0.001);
  return 0;
}

CONC_TASK(tm_sleep, in, len, out) {
  (void)in;
  (void)len;
  (void)out;
  return conc_sleep(0.3);
}

/* for the registry scenario: registered at run time on worker ranks */
static int tm_extra(const void *in, size_t len, conc_bytes *out) {
  (void)in;
  (void)len;
  (void)out;
  return 0;
}

static void *not_a_task(void *arg) { return arg; }

static uint32_t square_of(conc_future *f) {
  void *r = NULL;
  uint32_t v = 0;
  if (conc_future_result(f, -1, &r) == 0) {
    const conc_bytes *b = r;
    if (b->len == sizeof v)
      memcpy(&v, b->data, sizeof v);
  }
  return v;
}

/* ---- scenarios ---- */

/* A done callback that submits a task to the same executor (callbacks
 * never run under the lock that serializes MPI calls, so the submission
 * may send the task itself).  It must not wait for it: callbacks may run
 * on the progress thread, which is the one that would receive it. */
static conc_executor *cb_ex;
static conc_future *cb_next[4];
static int cb_resubmit(conc_future *f, void *arg) {
  (void)f;
  uintptr_t i = (uintptr_t)arg;
  uint32_t v = (uint32_t)i + 10;
  conc_future *g = NULL;
  if (conc_executor_submit_task(cb_ex, "tm_square", &v, sizeof v, NULL, &g))
    g = NULL;
  __atomic_store_n(&cb_next[i], g, __ATOMIC_RELEASE);
  return 0;
}

/* Submitters and waiters on several threads at once: each drives MPI in
 * turn (submit sends, waiting receives), one task in flight per thread. */
typedef struct {
  conc_executor *ex;
  uint32_t base;
  int bad;
} rt_arg;
static void *round_trips(void *p) {
  rt_arg *a = p;
  for (uint32_t i = 0; i < 200; i++) {
    uint32_t v = a->base + i;
    conc_future *f;
    if (conc_executor_submit_task(a->ex, "tm_square", &v, sizeof v, NULL,
                                  &f)) {
      a->bad++;
      continue;
    }
    a->bad += square_of(f) != v * v;
    conc_future_release(f);
  }
  return NULL;
}

static void check_basic(conc_executor *ex) {
  /* many small tasks in flight at once, results matched by id */
  enum { NT = 300 };
  conc_future *fs[NT];
  for (uint32_t i = 0; i < NT; i++)
    CHECK_RC(conc_executor_submit_task(ex, "tm_square", &i, sizeof i, NULL,
                                       &fs[i]),
             0);
  for (uint32_t i = 0; i < NT; i++) {
    CHECK(square_of(fs[i]) == i * i);
    conc_future_release(fs[i]);
  }

  /* as_completed over a few */
  conc_future *few[5];
  for (uint32_t i = 0; i < 5; i++)
    CHECK_RC(conc_executor_submit_task(ex, "tm_square", &i, sizeof i, NULL,
                                       &few[i]),
             0);
  conc_as_completed *ac;
  CHECK_RC(conc_as_completed_create(few, 5, -1, &ac), 0);
  int seen = 0;
  conc_future *f;
  while (conc_as_completed_next(ac, &f) == 1)
    seen++;
  conc_as_completed_destroy(ac);
  CHECK(seen == 5);
  for (int i = 0; i < 5; i++)
    conc_future_release(few[i]);

  /* done callbacks that submit to the executor themselves */
  cb_ex = ex;
  conc_future *cbf[4];
  for (uint32_t i = 0; i < 4; i++) {
    __atomic_store_n(&cb_next[i], NULL, __ATOMIC_RELAXED);
    CHECK_RC(conc_executor_submit_task(ex, "tm_square", &i, sizeof i, NULL,
                                       &cbf[i]),
             0);
    CHECK_RC(conc_future_add_done_callback(cbf[i], cb_resubmit,
                                           (void *)(uintptr_t)i),
             0);
  }
  for (uint32_t i = 0; i < 4; i++) {
    CHECK(square_of(cbf[i]) == i * i);
    /* callbacks run just after the future is published: wait for it
     * (a callback that never runs hangs the test: run.sh's bound) */
    conc_future *g;
    while (!(g = __atomic_load_n(&cb_next[i], __ATOMIC_ACQUIRE)))
      sched_yield();
    CHECK(square_of(g) == (i + 10) * (i + 10));
    conc_future_release(g);
    conc_future_release(cbf[i]);
  }

  /* three threads submitting and waiting at once */
  pthread_t th[3];
  rt_arg ra[3];
  for (int i = 0; i < 3; i++) {
    ra[i] = (rt_arg){ex, (uint32_t)(1000 * (i + 1)), 0};
    CHECK(pthread_create(&th[i], NULL, round_trips, &ra[i]) == 0);
  }
  for (int i = 0; i < 3; i++) {
    pthread_join(th[i], NULL);
    CHECK(ra[i].bad == 0);
  }

  /* a task's own failure */
  CHECK_RC(conc_executor_submit_task(ex, "tm_fail", NULL, 0, NULL, &f), 0);
  CHECK_RC(conc_future_wait(f, -1), 0);
  int detail = 0;
  const char *msg = NULL;
  CHECK_RC(conc_future_error(f, &detail, &msg), CONC_ETASK);
  CHECK(detail == 42);
  CHECK(msg && strcmp(msg, "failed on purpose (7)") == 0);
  conc_future_release(f);

  /* refused before anything is sent */
  CHECK_RC(conc_executor_submit_task(ex, "no_such_task", NULL, 0, NULL, &f),
           CONC_ENOENT);
  CHECK_RC(conc_executor_submit(ex, not_a_task, NULL, &f), CONC_ENOTSUP);

  /* map with chunks ("conc.batch") and without */
  enum { NM = 101 };
  uint32_t vals[NM];
  conc_buf in[NM];
  for (uint32_t i = 0; i < NM; i++) {
    vals[i] = i + 1000;
    in[i] = (conc_buf){&vals[i], sizeof vals[i]};
  }
  for (size_t chunk = 1; chunk <= 7; chunk += 6) {
    conc_map_options mo;
    conc_map_options_init(&mo);
    mo.chunksize = chunk;
    mo.buffersize = 4;
    conc_map *m;
    CHECK_RC(conc_executor_map_task(ex, "tm_square", in, NM, &mo, &m), 0);
    void *r;
    size_t k = 0;
    while (conc_map_next(m, &r) == 1) {
      const conc_bytes *b = r;
      uint32_t v = 0;
      if (b->len == sizeof v)
        memcpy(&v, b->data, sizeof v);
      CHECK(k < NM && v == vals[k] * vals[k]);
      k++;
    }
    CHECK(k == NM);
    CHECK_RC(conc_map_error(m, NULL, NULL), 0);
    conc_map_destroy(m);
  }

  /* bulk payloads, both ways (above the 64 KiB inline limit) */
  size_t big = (3u << 20) + 5;
  unsigned char *buf = malloc(big);
  CHECK(buf != NULL);
  for (size_t i = 0; i < big; i++)
    buf[i] = (unsigned char)(i * 7 + 3);
  CHECK_RC(conc_executor_submit_task(ex, "tm_inc", buf, big, NULL, &f), 0);
  void *r = NULL;
  CHECK_RC(conc_future_result(f, -1, &r), 0);
  const conc_bytes *b = r;
  CHECK(b && b->len == big);
  size_t bad = 0;
  for (size_t i = 0; b && i < b->len; i++)
    bad += b->data[i] != (unsigned char)(buf[i] + 1);
  CHECK(bad == 0);
  conc_future_release(f);
  free(buf);

  conc_executor_stats st;
  conc_executor_stats_init(&st);
  CHECK_RC(conc_executor_get_stats(ex, &st), 0);
  CHECK(st.submitted >= NT + 5 + 1 + 1);
  CHECK(st.failed >= 1);
}

static void check_shutdown(conc_executor *ex) {
  CHECK_RC(conc_executor_shutdown(ex, true, false), 0);
  uint32_t v = 3;
  conc_future *f;
  CHECK_RC(conc_executor_submit_task(ex, "tm_square", &v, sizeof v, NULL, &f),
           CONC_ESHUTDOWN);
  CHECK_RC(conc_executor_destroy(ex), 0);
}

static int create(int argc, char **argv, unsigned spawn,
                  conc_executor **ex) {
  conc_mpi_options o;
  conc_mpi_options_init(&o);
  o.spawn = spawn;
  for (int i = 2; i < argc; i++) {
    if (strcmp(argv[i], "--no-isolate") == 0)
      o.isolate = false;
    if (strcmp(argv[i], "--in-flight") == 0 && i + 1 < argc)
      o.max_in_flight = (unsigned)atoi(argv[++i]);
    if (strcmp(argv[i], "--stop-grace") == 0 && i + 1 < argc)
      o.stop_grace = atof(argv[++i]);
    if (strcmp(argv[i], "--procs") == 0 && i + 1 < argc)
      o.procs_per_rank = (unsigned)atoi(argv[++i]);
  }
  return conc_mpi_executor_create(&o, ex);
}

static int finish(const char *what) {
  conc_library_shutdown(); /* drains conc's record cache */
  long n = atomic_load(&live);
  if (n != 0)
    fprintf(stderr, "test-mpi: %ld block(s) allocated by conc still live\n",
            n);
  CHECK(n == 0);
  printf("test-mpi %s: %s (%d failed checks)\n", what,
         failures ? "FAIL" : "ok", failures);
  return failures ? 1 : 0;
}

int main(int argc, char **argv) {
  conc_set_allocator(t_malloc, t_realloc, t_calloc, t_free);
  conc_init(&argc, &argv);
  const char *what = argc > 1 ? argv[1] : "basic";
  const char *rank = getenv("OMPI_COMM_WORLD_RANK");
  if (strcmp(what, "registry") == 0 && rank && strcmp(rank, "0") != 0)
    conc_task_register("tm_extra", tm_extra);

  /* argument checks need no MPI */
  {
    conc_mpi_options bad;
    conc_mpi_options_init(&bad);
    conc_mpi_options_init(NULL);
    conc_executor *ex = NULL;
    CHECK_RC(conc_mpi_executor_create(NULL, NULL), CONC_EINVAL);
    bad.size = 1;
    CHECK_RC(conc_mpi_executor_create(&bad, &ex), CONC_EINVAL);
    conc_mpi_options_init(&bad);
    bad.idle_spin = NAN;
    CHECK_RC(conc_mpi_executor_create(&bad, &ex), CONC_EINVAL);
  }

  conc_executor *ex = NULL;
  int rc;
  if (strcmp(what, "pool") == 0) {
    CHECK_RC(conc_process_pool_create(NULL, &ex), 0);
    if (ex) {
      check_basic(ex);
      check_shutdown(ex);
    }
  } else if (strcmp(what, "basic") == 0 || strcmp(what, "spawn") == 0) {
    unsigned spawn = strcmp(what, "spawn") == 0
                         ? (unsigned)(argc > 2 ? atoi(argv[2]) : 2)
                         : 0;
    rc = create(argc, argv, spawn, &ex);
    CHECK_RC(rc, 0);
    if (ex) {
      conc_executor *again = NULL;
      CHECK_RC(conc_mpi_executor_create(NULL, &again), CONC_EBUSY);
      check_basic(ex);
      check_shutdown(ex);
    }
  } else if (strcmp(what, "crash") == 0) {
    rc = create(argc, argv, 0, &ex);
    CHECK_RC(rc, 0);
    if (ex) {
      enum { N = 20 };
      conc_future *fs[N], *boom;
      for (uint32_t i = 0; i < N / 2; i++)
        CHECK_RC(conc_executor_submit_task(ex, "tm_square", &i, sizeof i,
                                           NULL, &fs[i]),
                 0);
      CHECK_RC(conc_executor_submit_task(ex, "tm_crash", NULL, 0, NULL, &boom),
               0);
      for (uint32_t i = N / 2; i < N; i++)
        CHECK_RC(conc_executor_submit_task(ex, "tm_square", &i, sizeof i,
                                           NULL, &fs[i]),
                 0);
      CHECK_RC(conc_future_wait(boom, -1), 0);
      int detail = 0;
      const char *msg = NULL;
      CHECK_RC(conc_future_error(boom, &detail, &msg), CONC_EWORKER);
#if CONC_TEST_ASAN || CONC_TEST_TSAN /* its handler reports, then dies */
      CHECK(detail == -SIGSEGV || detail == -SIGABRT || detail > 0);
#else
      CHECK(detail == -SIGSEGV);
#endif
      printf("crash: %s\n", msg ? msg : "(no message)");
      conc_future_release(boom);
      for (uint32_t i = 0; i < N; i++) {
        CHECK(square_of(fs[i]) == i * i);
        conc_future_release(fs[i]);
      }
      check_basic(ex); /* the job goes on */
      check_shutdown(ex);
    }
  } else if (strcmp(what, "stop") == 0) {
    rc = create(argc, argv, 0, &ex);
    CHECK_RC(rc, 0);
    if (ex) {
      /* honoured: CONC_ECANCELED, not cancelled() (it had started) */
      conc_future *f, *g, *h;
      CHECK_RC(conc_executor_submit_task(ex, "tm_stoppable", NULL, 0, NULL,
                                         &f),
               0);
      CHECK_RC(conc_future_stop(f), 0);
      CHECK_RC(conc_future_wait(f, -1), 0);
      CHECK_RC(conc_future_error(f, NULL, NULL), CONC_ECANCELED);
      CHECK(!conc_future_cancelled(f));
      conc_future_release(f);
      /* ignored: its process is killed after stop_grace */
      CHECK_RC(conc_executor_submit_task(ex, "tm_hang", NULL, 0, NULL, &g), 0);
      CHECK_RC(conc_future_stop(g), 0);
      CHECK_RC(conc_future_wait(g, -1), 0);
      const char *msg = NULL;
      CHECK_RC(conc_future_error(g, NULL, &msg), CONC_EKILLED);
      printf("stop: %s\n", msg ? msg : "(no message)");
      conc_future_release(g);
      /* shutdown(cancel_futures) stops what runs */
      CHECK_RC(conc_executor_submit_task(ex, "tm_stoppable", NULL, 0, NULL,
                                         &h),
               0);
      CHECK_RC(conc_executor_shutdown(ex, true, true), 0);
      int oc = conc_future_error(h, NULL, NULL);
      CHECK(oc == CONC_ECANCELED);
      conc_future_release(h);
      CHECK_RC(conc_executor_destroy(ex), 0);
    }
  } else if (strcmp(what, "deadline") == 0) {
    /* one worker rank, busy in a gate task while the next frames queue up
     * at it; released once they are sent, it receives them together, and
     * the third task's 0.1 s start deadline passes while it waits behind
     * a 0.3 s task at the worker */
    rc = create(argc, argv, 0, &ex);
    CHECK_RC(rc, 0);
    if (ex) {
      char dir[] = "/tmp/conc-test-mpi-XXXXXX", rel[600];
      CHECK(mkdtemp(dir) != NULL);
      snprintf(rel, sizeof rel, "%s/release", dir);
      conc_future *gate, *slow, *late, *after;
      conc_submit_options so;
      conc_submit_options_init(&so);
      CHECK_RC(conc_executor_submit_task(ex, "tm_gate", rel, strlen(rel),
                                         NULL, &gate),
               0);
      CHECK_RC(conc_executor_submit_task(ex, "tm_sleep", NULL, 0, NULL,
                                         &slow),
               0);
      double t0 = conc_now();
      so.deadline = t0 + 0.1;
      uint32_t v = 5;
      CHECK_RC(conc_executor_submit_task(ex, "tm_square", &v, sizeof v, &so,
                                         &late),
               0);
      CHECK_RC(conc_executor_submit_task(ex, "tm_square", &v, sizeof v, NULL,
                                         &after),
               0);
      /* sent (RUNNING on rank 0) before the gate opens */
      while (!conc_future_running(after) && !conc_future_done(after))
        conc_sleep(0.001);
      FILE *fp = fopen(rel, "w");
      CHECK(fp != NULL);
      if (fp)
        fclose(fp);
      CHECK_RC(conc_future_result(gate, -1, NULL), 0);
      CHECK_RC(conc_future_wait(late, -1), 0);
      const char *msg = NULL;
      CHECK_RC(conc_future_error(late, NULL, &msg), CONC_EDEADLINE);
      CHECK(conc_now() - t0 >= 0.1);
      printf("deadline: %s\n", msg ? msg : "(no message)");
      CHECK(square_of(after) == 25);
      CHECK_RC(conc_future_result(slow, -1, NULL), 0);
      conc_executor_stats st;
      conc_executor_stats_init(&st);
      CHECK_RC(conc_executor_get_stats(ex, &st), 0);
      CHECK(st.deadline_missed == 1);
      conc_future_release(gate);
      conc_future_release(slow);
      conc_future_release(late);
      unlink(rel);
      rmdir(dir);
      conc_future_release(after);
      CHECK_RC(conc_executor_destroy(ex), 0);
    }
  } else if (strcmp(what, "die") == 0) {
    rc = create(argc, argv, 0, &ex);
    CHECK_RC(rc, 0);
    if (ex) {
      conc_future *f;
      CHECK_RC(conc_executor_submit_task(ex, "tm_crash", NULL, 0, NULL, &f),
               0);
      conc_future_wait(f, -1); /* never returns: mpiexec ends the job */
      printf("die: the job survived a dead rank\n");
      return 1;
    }
  } else if (strcmp(what, "registry") == 0) {
    rc = create(argc, argv, 0, &ex);
    CHECK_RC(rc, CONC_EREGISTRY);
    printf("registry: create returned %s\n", conc_err_name(rc));
    if (ex)
      conc_executor_destroy(ex);
    return failures ? 1 : 2; /* 2: the expected failure (run.sh) */
  } else {
    fprintf(stderr, "test-mpi: unknown scenario %s\n", what);
    return 2;
  }
  return finish(what);
}
