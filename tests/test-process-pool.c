/* test-process-pool.c - the process pool: tasks by name, results, errors,
 * crash isolation, run timeouts, stops, retirement, the initializer, the
 * registry check, bulk payloads, shutdown, orphans and the fork server.
 *
 * Tasks signal "started" through files in a per-test directory only where
 * a test must act on a running task (stop, kill); everything else
 * synchronises on futures.  The only sleeps poll /proc for processes that
 * must disappear (generous bound).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <dirent.h>
#include <math.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- tasks (registered in the test and in its fork server alike) ---- */

/* out = in with every byte + 1, then the byte sum as 4 bytes */
CONC_TASK(tp_inc, in, len, out) {
  const unsigned char *p = in;
  int rc = conc_bytes_reserve(out, len + 4);
  if (rc)
    return rc;
  uint32_t sum = 0;
  for (size_t i = 0; i < len; i++) {
    out->data[out->len + i] = (unsigned char)(p[i] + 1);
    sum += p[i];
  }
  out->len += len;
  return conc_bytes_append(out, &sum, sizeof sum);
}

CONC_TASK(tp_pid, in, len, out) {
  (void)in;
  (void)len;
  int pid = getpid();
  return conc_bytes_append(out, &pid, sizeof pid);
}

CONC_TASK(tp_fail, in, len, out) {
  (void)in;
  (void)len;
  (void)out;
  return conc_task_fail(42, "failed on purpose (%d)", 7);
}

/* die the way the input says */
CONC_TASK(tp_crash, in, len, out) {
  (void)out;
  char how = len ? ((const char *)in)[0] : 's';
  if (how == 's')
    raise(SIGSEGV);
  if (how == 'a')
    abort();
  if (how == 'e')
    _exit(3);
  return 0;
}

/* write a "started" marker file named by the input, then wait */
static void mark_started(const void *in, size_t len) {
  char path[512];
  snprintf(path, sizeof path, "%.*s", (int)len, (const char *)in);
  int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  if (fd >= 0)
    close(fd);
}

CONC_TASK(tp_hang, in, len, out) {
  (void)out;
  mark_started(in, len);
  for (;;)
    pause();
  return 0;
}

CONC_TASK(tp_stoppable, in, len, out) {
  (void)out;
  mark_started(in, len);
  while (conc_task_wait_stop(60) != 0) {
  }
  if (!conc_task_stop_requested())
    return 1;
  return conc_task_stopped();
}

/* in: "path|tag": append tag and a newline to path (execution order) */
CONC_TASK(tp_log, in, len, out) {
  (void)out;
  const char *s = in;
  const char *bar = memchr(s, '|', len);
  if (!bar)
    return conc_task_fail(1, "want path|tag");
  char path[256];
  snprintf(path, sizeof path, "%.*s", (int)(bar - s), s);
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    return conc_task_fail(2, "open %s", path);
  size_t tl = len - (size_t)(bar + 1 - s);
  char line[64];
  int n = snprintf(line, sizeof line, "%.*s\n", (int)tl, bar + 1);
  ssize_t w = write(fd, line, (size_t)n);
  close(fd);
  return w == n ? 0 : conc_task_fail(3, "write");
}

static int init_value;
CONC_TASK(tp_init, in, len, out) {
  (void)out;
  if (len != sizeof init_value)
    return conc_task_fail(5, "bad initargs");
  memcpy(&init_value, in, sizeof init_value);
  return 0;
}

CONC_TASK(tp_get_init, in, len, out) {
  (void)in;
  (void)len;
  return conc_bytes_append(out, &init_value, sizeof init_value);
}

/* out: len bytes of pattern (i * 7 + 3) */
CONC_TASK(tp_big, in, len, out) {
  uint64_t n;
  if (len != sizeof n)
    return conc_task_fail(1, "want a length");
  memcpy(&n, in, sizeof n);
  int rc = conc_bytes_reserve(out, n);
  if (rc)
    return rc;
  for (uint64_t i = 0; i < n; i++)
    out->data[i] = (unsigned char)(i * 7 + 3);
  out->len = n;
  return 0;
}

/* ---- helpers ---- */

static conc_executor *pool(unsigned workers) {
  conc_process_pool_options o;
  conc_process_pool_options_init(&o);
  o.max_workers = workers;
  conc_executor *ex = NULL;
  ck_assert_int_eq(conc_process_pool_create(&o, &ex), 0);
  return ex;
}

static const conc_bytes *result_of(conc_future *f) {
  void *r = NULL;
  int rc = conc_future_result(f, 120, &r);
  ck_assert_msg(rc == 0, "result: %s", conc_strerror(rc));
  return r;
}

static bool alive(int pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return false;
  char buf[512];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  const char *rp = strrchr(buf, ')');
  return rp && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
}

/* Wait (bounded) for a process to be gone. */
static bool gone(int pid) {
  for (int i = 0; i < 3000; i++) {
    if (!alive(pid))
      return true;
    usleep(10000);
  }
  return false;
}

static void wait_file(const char *path) {
  struct stat st;
  for (int i = 0; i < 12000; i++) {
    if (stat(path, &st) == 0)
      return;
    usleep(5000);
  }
  ck_abort_msg("%s never appeared", path);
}

static void tmpname(char *buf, size_t n, const char *what) {
  snprintf(buf, n, "/tmp/conc-pp-%d-%s", (int)getpid(), what);
  unlink(buf);
}

/* ---- cases ---- */

START_TEST(pp_basic) {
  int fds = conc_test_fd_count();
  conc_executor *ex = pool(2);
  ck_assert_uint_eq(conc_executor_max_workers(ex), 2);
  enum { N = 1000 };
  conc_future *fs[N];
  unsigned char in[N % 97 + 64];
  for (int i = 0; i < N; i++) {
    unsigned char b[40];
    size_t len = (size_t)(i % 40);
    for (size_t k = 0; k < len; k++)
      b[k] = (unsigned char)(i + k);
    ck_assert_int_eq(conc_executor_submit_task(ex, "tp_inc", b, len, NULL,
                                               &fs[i]),
                     0);
  }
  (void)in;
  for (int i = 0; i < N; i++) {
    const conc_bytes *o = result_of(fs[i]);
    size_t len = (size_t)(i % 40);
    ck_assert_uint_eq(o->len, len + 4);
    uint32_t sum = 0, got;
    for (size_t k = 0; k < len; k++) {
      ck_assert_uint_eq(o->data[k], (unsigned char)(i + k + 1));
      sum += (unsigned char)(i + k);
    }
    memcpy(&got, o->data + len, 4);
    ck_assert_uint_eq(got, sum);
    conc_future_release(fs[i]);
  }
  conc_executor_stats st;
  conc_executor_stats_init(&st);
  ck_assert_int_eq(conc_executor_get_stats(ex, &st), 0);
  ck_assert_uint_eq(st.submitted, N);
  ck_assert_uint_eq(st.completed, N);
  ck_assert_uint_eq(st.failed, 0);
  ck_assert_uint_eq(st.workers, 2);
  int pids[8];
  ck_assert_int_eq(conc_process_pool_pids(ex, pids, 8), 3);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
  for (int i = 0; i < 3; i++)
    ck_assert(gone(pids[i]));
  ck_assert_int_eq(conc_test_fd_count(), fds);
}
END_TEST

static void *not_a_task(void *arg) { return arg; }

START_TEST(pp_refuses_pointers_and_unknown) {
  conc_executor *ex = pool(1);
  conc_future *f = (conc_future *)1;
  ck_assert_int_eq(conc_executor_submit(ex, not_a_task, NULL, &f),
                   CONC_ENOTSUP);
  ck_assert_ptr_null(f);
  ck_assert_int_eq(conc_executor_submit_task(ex, "no_such_task", "x", 1, NULL,
                                             &f),
                   CONC_ENOENT);
  conc_map *m = NULL;
  void *args[1] = {NULL};
  ck_assert_int_eq(conc_executor_map(ex, not_a_task, args, 1, NULL, &m), 0);
  void *r;
  ck_assert_int_eq(conc_map_next(m, &r), CONC_ENOTSUP);
  conc_map_destroy(m);
  int pids[1];
  ck_assert_int_eq(conc_process_pool_pids(NULL, pids, 1), CONC_EINVAL);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST

START_TEST(pp_task_error) {
  conc_executor *ex = pool(1);
  conc_future *f;
  ck_assert_int_eq(conc_executor_submit_task(ex, "tp_fail", NULL, 0, NULL, &f),
                   0);
  void *r;
  ck_assert_int_eq(conc_future_result(f, 120, &r), CONC_ETASK);
  int detail;
  const char *msg;
  ck_assert_int_eq(conc_future_error(f, &detail, &msg), CONC_ETASK);
  ck_assert_int_eq(detail, 42);
  ck_assert_str_eq(msg, "failed on purpose (7)");
  ck_assert(!conc_future_cancelled(f));
  conc_future_release(f);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST

/* 100 tasks, one of which kills its worker: 99 succeed, one fails alone
 * with the signal; then the same with abort and exit(3). */
static void crash_among(char how, int want_detail) {
  conc_executor *ex = pool(2);
  enum { N = 100 };
  conc_future *fs[N];
  for (int i = 0; i < N; i++) {
    if (i == 37)
      ck_assert_int_eq(
          conc_executor_submit_task(ex, "tp_crash", &how, 1, NULL, &fs[i]), 0);
    else
      ck_assert_int_eq(
          conc_executor_submit_task(ex, "tp_inc", "ab", 2, NULL, &fs[i]), 0);
  }
  int ok = 0;
  for (int i = 0; i < N; i++) {
    void *r;
    int rc = conc_future_result(fs[i], 120, &r);
    if (i == 37) {
      ck_assert_int_eq(rc, CONC_EWORKER);
      int detail;
      const char *msg;
      conc_future_error(fs[i], &detail, &msg);
#if defined(CONC_TEST_ASAN) || defined(CONC_TEST_TSAN)
      /* the sanitizer's SEGV handler reports, then exits (1 or 66) or,
       * with abort_on_error, aborts */
      if (how == 's' && (detail > 0 || detail == -SIGABRT))
        want_detail = detail;
#endif
      ck_assert_int_eq(detail, want_detail);
      ck_assert_ptr_nonnull(strstr(msg, "died"));
    } else {
      ck_assert_int_eq(rc, 0);
      const conc_bytes *o = r;
      ck_assert_uint_eq(o->len, 6);
      ck_assert_int_eq(memcmp(o->data, "bc", 2), 0);
      ok++;
    }
    conc_future_release(fs[i]);
  }
  ck_assert_int_eq(ok, N - 1);
  /* the pool goes on */
  conc_future *f;
  ck_assert_int_eq(conc_executor_submit_task(ex, "tp_pid", NULL, 0, NULL, &f),
                   0);
  result_of(f);
  conc_future_release(f);
  conc_executor_stats st;
  conc_executor_stats_init(&st);
  conc_executor_get_stats(ex, &st);
  ck_assert_uint_eq(st.failed, 1);
  ck_assert_uint_eq(st.completed, N);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}

START_TEST(pp_crash_segv) { crash_among('s', -SIGSEGV); }
END_TEST
START_TEST(pp_crash_abort) { crash_among('a', -SIGABRT); }
END_TEST
START_TEST(pp_crash_exit) { crash_among('e', 3); }
END_TEST

START_TEST(pp_task_timeout) {
  conc_process_pool_options o;
  conc_process_pool_options_init(&o);
  o.max_workers = 1;
  o.task_timeout = 0.3;
  conc_executor *ex;
  ck_assert_int_eq(conc_process_pool_create(&o, &ex), 0);
  char marker[128];
  tmpname(marker, sizeof marker, "hang");
  double t0 = conc_now();
  conc_future *f, *g;
  ck_assert_int_eq(conc_executor_submit_task(ex, "tp_hang", marker,
                                             strlen(marker), NULL, &f),
                   0);
  ck_assert_int_eq(conc_executor_submit_task(ex, "tp_pid", NULL, 0, NULL, &g),
                   0);
  void *r;
  ck_assert_int_eq(conc_future_result(f, 120, &r), CONC_EKILLED);
  ck_assert(conc_now() - t0 >= 0.3);
  int detail;
  conc_future_error(f, &detail, NULL);
  ck_assert_int_eq(detail, -SIGKILL);
  result_of(g); /* queued behind it: ran on the replacement */
  conc_future_release(f);
  conc_future_release(g);
  unlink(marker);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST

START_TEST(pp_stop_running) {
  conc_process_pool_options o;
  conc_process_pool_options_init(&o);
  o.max_workers = 1;
  o.stop_grace = 0.2;
  conc_executor *ex;
  ck_assert_int_eq(conc_process_pool_create(&o, &ex), 0);
  char m1[128], m2[128];
  tmpname(m1, sizeof m1, "stop1");
  tmpname(m2, sizeof m2, "stop2");
  /* a task that honours the stop: ECANCELED, not cancelled() */
  conc_future *f;
  ck_assert_int_eq(conc_executor_submit_task(ex, "tp_stoppable", m1,
                                             strlen(m1), NULL, &f),
                   0);
  wait_file(m1);
  ck_assert_int_eq(conc_future_stop(f), 0);
  void *r;
  ck_assert_int_eq(conc_future_result(f, 120, &r), CONC_ECANCELED);
  ck_assert(!conc_future_cancelled(f));
  conc_future_release(f);
  /* a task that ignores it: killed after the grace period */
  ck_assert_int_eq(conc_executor_submit_task(ex, "tp_hang", m2, strlen(m2),
                                             NULL, &f),
                   0);
  wait_file(m2);
  double t0 = conc_now();
  ck_assert_int_eq(conc_future_stop(f), 0);
  ck_assert_int_eq(conc_future_result(f, 120, &r), CONC_EKILLED);
  ck_assert(conc_now() - t0 >= 0.2);
  conc_future_release(f);
  unlink(m1);
  unlink(m2);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST

START_TEST(pp_max_tasks_per_child) {
  conc_process_pool_options o;
  conc_process_pool_options_init(&o);
  o.max_workers = 1;
  o.max_tasks_per_child = 3;
  conc_executor *ex;
  ck_assert_int_eq(conc_process_pool_create(&o, &ex), 0);
  int pids[12];
  for (int i = 0; i < 12; i++) {
    conc_future *f;
    ck_assert_int_eq(
        conc_executor_submit_task(ex, "tp_pid", NULL, 0, NULL, &f), 0);
    const conc_bytes *b = result_of(f);
    memcpy(&pids[i], b->data, sizeof(int));
    conc_future_release(f);
  }
  for (int i = 0; i < 12; i++) {
    ck_assert_int_eq(pids[i], pids[i / 3 * 3]);
    if (i >= 3)
      ck_assert_int_ne(pids[i], pids[i - 3]);
  }
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST

START_TEST(pp_initializer) {
  conc_process_pool_options o;
  conc_process_pool_options_init(&o);
  o.max_workers = 2;
  int v = 4242;
  o.initializer = "tp_init";
  o.initargs = &v;
  o.initargs_len = sizeof v;
  conc_executor *ex;
  ck_assert_int_eq(conc_process_pool_create(&o, &ex), 0);
  for (int i = 0; i < 4; i++) {
    conc_future *f;
    ck_assert_int_eq(
        conc_executor_submit_task(ex, "tp_get_init", NULL, 0, NULL, &f), 0);
    const conc_bytes *b = result_of(f);
    int got;
    memcpy(&got, b->data, sizeof got);
    ck_assert_int_eq(got, 4242);
    conc_future_release(f);
  }
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
  /* a failing initializer breaks the pool */
  o.initargs_len = 1;
  ck_assert_int_eq(conc_process_pool_create(&o, &ex), 0);
  conc_future *f;
  int rc = conc_executor_submit_task(ex, "tp_pid", NULL, 0, NULL, &f);
  if (rc == 0) {
    void *r;
    ck_assert_int_eq(conc_future_result(f, 120, &r), CONC_EBROKEN);
    conc_future_release(f);
  } else {
    ck_assert_int_eq(rc, CONC_EBROKEN);
  }
  for (int i = 0; i < 1000; i++) { /* soon every submit is refused */
    rc = conc_executor_submit_task(ex, "tp_pid", NULL, 0, NULL, &f);
    if (rc != 0)
      break;
    void *r;
    conc_future_result(f, 120, &r);
    conc_future_release(f);
  }
  ck_assert_int_eq(rc, CONC_EBROKEN);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
  /* unknown initializer, bad options */
  o.initializer = "no_such_task";
  ck_assert_int_eq(conc_process_pool_create(&o, &ex), CONC_EINVAL);
}
END_TEST

static int late(const void *in, size_t len, conc_bytes *out) {
  (void)in;
  (void)len;
  (void)out;
  return 0;
}

START_TEST(pp_registry_mismatch) {
  ck_assert_int_eq(conc_task_register("tp_registered_late", late), 0);
  conc_executor *ex = (conc_executor *)1;
  ck_assert_int_eq(conc_process_pool_create(NULL, &ex), CONC_EREGISTRY);
  ck_assert_ptr_null(ex);
}
END_TEST

START_TEST(pp_bulk) {
  conc_process_pool_options o;
  conc_process_pool_options_init(&o);
  o.max_workers = 2;
  o.ring_size = 64 << 10; /* 64 KiB: most of these go by memfd */
  conc_executor *ex;
  ck_assert_int_eq(conc_process_pool_create(&o, &ex), 0);
  size_t sizes[] = {0, 1, 1000, 30000, 40000, 100000, 3u << 20};
  enum { K = sizeof sizes / sizeof sizes[0] };
  conc_future *in_f[K], *out_f[K];
  unsigned char *bufs[K];
  for (int i = 0; i < K; i++) {
    bufs[i] = malloc(sizes[i] + 1);
    for (size_t k = 0; k < sizes[i]; k++)
      bufs[i][k] = (unsigned char)(k * 13 + (size_t)i);
    ck_assert_int_eq(conc_executor_submit_task(ex, "tp_inc", bufs[i],
                                               sizes[i], NULL, &in_f[i]),
                     0);
    uint64_t n = sizes[i];
    ck_assert_int_eq(
        conc_executor_submit_task(ex, "tp_big", &n, sizeof n, NULL, &out_f[i]),
        0);
  }
  for (int i = 0; i < K; i++) {
    const conc_bytes *o1 = result_of(in_f[i]);
    ck_assert_uint_eq(o1->len, sizes[i] + 4);
    for (size_t k = 0; k < sizes[i]; k++)
      if (o1->data[k] != (unsigned char)(bufs[i][k] + 1))
        ck_abort_msg("byte %zu of input %d", k, i);
    const conc_bytes *o2 = result_of(out_f[i]);
    ck_assert_uint_eq(o2->len, sizes[i]);
    for (size_t k = 0; k < sizes[i]; k++)
      if (o2->data[k] != (unsigned char)(k * 7 + 3))
        ck_abort_msg("byte %zu of output %d", k, i);
    conc_future_release(in_f[i]);
    conc_future_release(out_f[i]);
    free(bufs[i]);
  }
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST

START_TEST(pp_shutdown) {
  conc_executor *ex = pool(1);
  char marker[128];
  tmpname(marker, sizeof marker, "shut");
  conc_future *running, *queued[20];
  ck_assert_int_eq(conc_executor_submit_task(ex, "tp_stoppable", marker,
                                             strlen(marker), NULL, &running),
                   0);
  for (int i = 0; i < 20; i++)
    ck_assert_int_eq(conc_executor_submit_task(ex, "tp_pid", NULL, 0, NULL,
                                               &queued[i]),
                     0);
  wait_file(marker);
  ck_assert_int_eq(conc_executor_shutdown(ex, true, true), 0);
  void *r;
  ck_assert_int_eq(conc_future_result(running, 0, &r), CONC_ECANCELED);
  int cancelled = 0;
  for (int i = 0; i < 20; i++) {
    ck_assert(conc_future_done(queued[i]));
    cancelled += conc_future_cancelled(queued[i]);
    conc_future_release(queued[i]);
  }
  ck_assert_int_gt(cancelled, 10); /* all but those already in the ring */
  conc_future_release(running);
  conc_future *f = (conc_future *)1;
  ck_assert_int_eq(conc_executor_submit_task(ex, "tp_pid", NULL, 0, NULL, &f),
                   CONC_ESHUTDOWN);
  ck_assert_ptr_null(f);
  ck_assert_int_eq(conc_executor_shutdown(ex, true, false), 0);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
  unlink(marker);
}
END_TEST

START_TEST(pp_worker_killed_while_idle) {
  conc_executor *ex = pool(2);
  conc_future *f;
  ck_assert_int_eq(conc_executor_submit_task(ex, "tp_pid", NULL, 0, NULL, &f),
                   0);
  result_of(f);
  conc_future_release(f);
  int pids[3];
  ck_assert_int_eq(conc_process_pool_pids(ex, pids, 3), 3);
  kill(pids[1], SIGKILL);
  kill(pids[2], SIGKILL);
  ck_assert(gone(pids[1]) && gone(pids[2]));
  for (int i = 0; i < 50; i++) {
    ck_assert_int_eq(
        conc_executor_submit_task(ex, "tp_pid", NULL, 0, NULL, &f), 0);
    const conc_bytes *b = result_of(f);
    int pid;
    memcpy(&pid, b->data, sizeof pid);
    ck_assert_int_ne(pid, pids[1]);
    ck_assert_int_ne(pid, pids[2]);
    conc_future_release(f);
  }
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST

/* The fork server is single-threaded while the caller runs an 8-thread
 * pool. */
static void *spin_a_bit(void *arg) {
  unsigned x = 0;
  for (unsigned i = 0; i < 100000; i++)
    __atomic_fetch_add(&x, i, __ATOMIC_RELAXED);
  return (void *)(uintptr_t)(x & 0 ? 1 : 0) == NULL ? arg : NULL;
}

START_TEST(pp_fork_server_single_threaded) {
  conc_thread_pool_options to;
  conc_thread_pool_options_init(&to);
  to.max_workers = 8;
  conc_executor *tp;
  ck_assert_int_eq(conc_thread_pool_create(&to, &tp), 0);
  conc_future *tf[64];
  for (int i = 0; i < 64; i++)
    ck_assert_int_eq(conc_executor_submit(tp, spin_a_bit, NULL, &tf[i]), 0);
  conc_executor *ex = pool(2);
  int pids[3];
  ck_assert_int_eq(conc_process_pool_pids(ex, pids, 3), 3);
  char path[64], *status = NULL;
  snprintf(path, sizeof path, "cat /proc/%d/status", pids[0]);
  ck_assert_int_eq(conc_test_capture(path, &status), 0);
  ck_assert_ptr_nonnull(strstr(status, "\nThreads:\t1\n"));
  ck_assert_ptr_nonnull(strstr(status, "Name:\tconc-forksrv"));
  free(status);
  for (int i = 0; i < 64; i++) {
    conc_future_wait(tf[i], -1);
    conc_future_release(tf[i]);
  }
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
  ck_assert_int_eq(conc_executor_destroy(tp), 0);
}
END_TEST

/* A parent SIGKILLed with a pool running: the server and every worker
 * go too, and no descriptor or /dev/shm entry is left. */
START_TEST(pp_parent_killed_no_orphans) {
  int pf[2];
  ck_assert_int_eq(pipe(pf), 0);
  pid_t child = fork();
  ck_assert_int_ge(child, 0);
  if (child == 0) {
    close(pf[0]);
    conc_executor *ex;
    CHILD_CHECK(conc_process_pool_create(NULL, &ex) == 0);
    conc_future *f;
    CHILD_CHECK(conc_executor_submit_task(ex, "tp_pid", NULL, 0, NULL, &f) ==
                0);
    void *r;
    CHILD_CHECK(conc_future_result(f, 120, &r) == 0);
    int pids[16];
    int n = conc_process_pool_pids(ex, pids, 16);
    CHILD_CHECK(n >= 2 && n <= 16);
    CHILD_CHECK(write(pf[1], pids, (size_t)n * sizeof(int)) ==
                (ssize_t)((size_t)n * sizeof(int)));
    close(pf[1]);
    for (;;)
      pause();
  }
  close(pf[1]);
  int pids[16];
  ssize_t got = 0, k;
  while ((k = read(pf[0], (char *)pids + got, sizeof pids - (size_t)got)) > 0)
    got += k;
  close(pf[0]);
  int n = (int)(got / (ssize_t)sizeof(int));
  ck_assert_int_ge(n, 2);
  kill(child, SIGKILL);
  int st;
  ck_assert_int_eq(waitpid(child, &st, 0), child);
  for (int i = 0; i < n; i++)
    ck_assert_msg(gone(pids[i]), "process %d outlived its parent", pids[i]);
  char *shm = NULL;
  /* segments are regular files (other programs on the machine may keep
   * directories there, e.g. the crawl benchmark's conc-bench-crawl.*) */
  ck_assert_int_eq(
      conc_test_capture(
          "find /dev/shm -maxdepth 1 -type f -name 'conc*' | wc -l", &shm),
      0);
  ck_assert_int_eq(atoi(shm), 0);
  free(shm);
}
END_TEST

/* Ordered task maps, one item per task and in chunks; a failing item
 * ends the map at that item; the same map on a thread pool gives the same
 * bytes. */
static void map_check(conc_executor *ex, size_t chunk) {
  enum { N = 300 };
  static unsigned char data[N][8];
  conc_buf in[N];
  for (int i = 0; i < N; i++) {
    for (int k = 0; k < 8; k++)
      data[i][k] = (unsigned char)(i * 3 + k);
    in[i] = (conc_buf){data[i], (size_t)(i % 9)};
  }
  conc_map_options o;
  conc_map_options_init(&o);
  o.chunksize = chunk;
  o.buffersize = 4;
  conc_map *m;
  ck_assert_int_eq(conc_executor_map_task(ex, "tp_inc", in, N, &o, &m), 0);
  void *r;
  int i = 0, rc;
  while ((rc = conc_map_next(m, &r)) == 1) {
    const conc_bytes *b = r;
    ck_assert_uint_eq(b->len, in[i].len + 4);
    for (size_t k = 0; k < in[i].len; k++)
      ck_assert_uint_eq(b->data[k], (unsigned char)(data[i][k] + 1));
    i++;
  }
  ck_assert_int_eq(rc, 0);
  ck_assert_int_eq(i, N);
  conc_map_destroy(m);
  /* a failing task ends the map with its error */
  ck_assert_int_eq(conc_executor_map_task(ex, "tp_fail", in, 5, &o, &m), 0);
  ck_assert_int_eq(conc_map_next(m, &r), CONC_ETASK);
  int detail;
  const char *msg;
  ck_assert_int_eq(conc_map_error(m, &detail, &msg), CONC_ETASK);
  ck_assert_int_eq(detail, 42);
  ck_assert_str_eq(msg, "failed on purpose (7)");
  conc_map_destroy(m);
  ck_assert_int_eq(conc_executor_map_task(ex, "nope", in, 5, &o, &m),
                   CONC_ENOENT);
  ck_assert_int_eq(conc_executor_map_task(ex, "tp_inc", NULL, 5, &o, &m),
                   CONC_EINVAL);
}

START_TEST(pp_map_task) {
  conc_executor *ex = pool(2);
  map_check(ex, 1);
  map_check(ex, 7);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
  conc_executor *tp;
  ck_assert_int_eq(conc_thread_pool_create(NULL, &tp), 0);
  map_check(tp, 1);
  map_check(tp, 7);
  ck_assert_int_eq(conc_executor_destroy(tp), 0);
}
END_TEST

/* The rest of the executor interface on process-pool futures. */
START_TEST(pp_wait_and_as_completed) {
  conc_executor *ex = pool(2);
  conc_future *fs[10];
  for (int i = 0; i < 10; i++)
    ck_assert_int_eq(
        conc_executor_submit_task(ex, "tp_pid", NULL, 0, NULL, &fs[i]), 0);
  conc_as_completed *it;
  ck_assert_int_eq(conc_as_completed_create(fs, 10, 120, &it), 0);
  conc_future *f;
  int n = 0;
  while (conc_as_completed_next(it, &f) == 1) {
    ck_assert(conc_future_done(f));
    n++;
  }
  ck_assert_int_eq(n, 10);
  conc_as_completed_destroy(it);
  size_t n_done = 0;
  ck_assert_int_eq(conc_wait(fs, 10, -1, CONC_ALL_COMPLETED, NULL, &n_done), 0);
  ck_assert_uint_eq(n_done, 10);
  for (int i = 0; i < 10; i++)
    conc_future_release(fs[i]);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST

/* Priorities, backpressure and deadlines on the process pool: one worker
 * held by a task that waits for a stop, one more task in its ring, the
 * rest waiting in the pool. */
START_TEST(pp_priority_backpressure_deadline) {
  conc_process_pool_options o;
  conc_process_pool_options_init(&o);
  o.max_workers = 1;
  o.max_in_flight = 1;
  o.max_queued = 4;
  conc_executor *ex;
  ck_assert_int_eq(conc_process_pool_create(&o, &ex), 0);
  char marker[128], log[128];
  tmpname(marker, sizeof marker, "prio");
  tmpname(log, sizeof log, "prio-log");
  conc_future *blocker, *f[5];
  ck_assert_int_eq(conc_executor_submit_task(ex, "tp_stoppable", marker,
                                             strlen(marker), NULL, &blocker),
                   0);
  wait_file(marker);
  const char *tags[] = {"A", "B", "C", "D"};
  int prios[] = {0, 0, 5, 1};
  for (int i = 0; i < 4; i++) {
    char in[200];
    int n = snprintf(in, sizeof in, "%s|%s", log, tags[i]);
    conc_submit_options so;
    conc_submit_options_init(&so);
    so.priority = prios[i];
    ck_assert_int_eq(
        conc_executor_submit_task(ex, "tp_log", in, (size_t)n, &so, &f[i]), 0);
  }
  /* A went to the worker's ring; B, C, D wait: room for one more */
  conc_submit_options so;
  conc_submit_options_init(&so);
  so.deadline = conc_now() - 1; /* passed already */
  ck_assert_int_eq(
      conc_executor_submit_task(ex, "tp_pid", NULL, 0, &so, &f[4]), 0);
  so.deadline = -1;
  so.timeout = 0;
  conc_future *g = (conc_future *)1;
  ck_assert_int_eq(conc_executor_submit_task(ex, "tp_pid", NULL, 0, &so, &g),
                   CONC_EAGAIN);
  ck_assert_ptr_null(g);
  so.timeout = 0.2;
  double t0 = conc_now();
  ck_assert_int_eq(conc_executor_submit_task(ex, "tp_pid", NULL, 0, &so, &g),
                   CONC_ETIMEDOUT);
  ck_assert(conc_now() - t0 >= 0.2);
  /* let them run */
  ck_assert_int_eq(conc_future_stop(blocker), 0);
  void *r;
  ck_assert_int_eq(conc_future_result(blocker, 120, &r), CONC_ECANCELED);
  for (int i = 0; i < 4; i++)
    result_of(f[i]);
  ck_assert_int_eq(conc_future_result(f[4], 120, &r), CONC_EDEADLINE);
  char cmd[200], *out = NULL;
  snprintf(cmd, sizeof cmd, "cat %s", log);
  ck_assert_int_eq(conc_test_capture(cmd, &out), 0);
  ck_assert_str_eq(out, "A\nC\nD\nB\n");
  free(out);
  conc_executor_stats st;
  conc_executor_stats_init(&st);
  conc_executor_get_stats(ex, &st);
  ck_assert_uint_eq(st.deadline_missed, 1);
  for (int i = 0; i < 5; i++)
    conc_future_release(f[i]);
  conc_future_release(blocker);
  unlink(marker);
  unlink(log);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST

/* Statistics with timing percentiles, and a progress display counting a
 * task map's results. */
START_TEST(pp_timing_and_progress) {
  conc_process_pool_options o;
  conc_process_pool_options_init(&o);
  o.max_workers = 2;
  o.flags = CONC_EXECUTOR_TIMING;
  conc_executor *ex;
  ck_assert_int_eq(conc_process_pool_create(&o, &ex), 0);
  enum { N = 40 };
  conc_buf in[N];
  for (int i = 0; i < N; i++)
    in[i] = (conc_buf){"abcdef", (size_t)(i % 6)};
  conc_progress_options po;
  conc_progress_options_init(&po);
  po.flags = CONC_PROGRESS_OFF;
  conc_progress *pr;
  ck_assert_int_eq(conc_progress_start(&pr, N, &po), 0);
  conc_map_options mo;
  conc_map_options_init(&mo);
  mo.progress = pr;
  conc_map *m;
  ck_assert_int_eq(conc_executor_map_task(ex, "tp_inc", in, N, &mo, &m), 0);
  void *r;
  int k = 0;
  while (conc_map_next(m, &r) == 1)
    k++;
  ck_assert_int_eq(k, N);
  conc_map_destroy(m);
  size_t done, errors;
  conc_progress_counts(pr, &done, &errors, NULL);
  ck_assert_uint_eq(done, N);
  ck_assert_uint_eq(errors, 0);
  conc_progress_stop(pr);
  conc_executor_stats st;
  conc_executor_stats_init(&st);
  ck_assert_int_eq(conc_executor_get_stats(ex, &st), 0);
  ck_assert_uint_eq(st.timed, N);
  ck_assert(!isnan(st.run_time_p50) && !isnan(st.queue_wait_p50));
  ck_assert(st.run_time_p99 >= st.run_time_p50);
  ck_assert(st.queue_wait_p99 >= st.queue_wait_p50);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST

/* Regression: bulk inputs submitted right after a worker died (before the
 * pool noticed) are retried elsewhere, not failed with a send error. */
START_TEST(pp_bulk_after_worker_death) {
  static unsigned char big[65536];
  memset(big, 1, sizeof big);
  for (int t = 0; t < 5; t++) {
    conc_process_pool_options o;
    conc_process_pool_options_init(&o);
    o.max_workers = 1;
    o.ring_size = 64 << 10;
    conc_executor *ex;
    ck_assert_int_eq(conc_process_pool_create(&o, &ex), 0);
    int pids[2];
    ck_assert_int_eq(conc_process_pool_pids(ex, pids, 2), 2);
    int pfd = (int)syscall(SYS_pidfd_open, pids[1], 0);
    ck_assert_int_ge(pfd, 0);
    conc_future *c, *fs[4];
    char how = 's';
    ck_assert_int_eq(
        conc_executor_submit_task(ex, "tp_crash", &how, 1, NULL, &c), 0);
    struct pollfd pf = {pfd, POLLIN, 0};
    ck_assert_int_eq(poll(&pf, 1, 60000), 1); /* the worker is dead */
    for (int i = 0; i < 4; i++)
      ck_assert_int_eq(conc_executor_submit_task(ex, "tp_inc", big, sizeof big,
                                                 NULL, &fs[i]),
                       0);
    void *r;
    ck_assert_int_eq(conc_future_result(c, 120, &r), CONC_EWORKER);
    for (int i = 0; i < 4; i++) {
      const conc_bytes *b = result_of(fs[i]);
      ck_assert_uint_eq(b->len, sizeof big + 4);
      conc_future_release(fs[i]);
    }
    conc_future_release(c);
    close(pfd);
    ck_assert_int_eq(conc_executor_destroy(ex), 0);
  }
}
END_TEST

/* Regression: a replacement worker that cannot start (no descriptors left)
 * is retried later, the pool goes on, and destroy returns. */
START_TEST(pp_respawn_failure_then_destroy) {
  conc_process_pool_options o;
  conc_process_pool_options_init(&o);
  o.max_workers = 2;
  conc_executor *ex;
  ck_assert_int_eq(conc_process_pool_create(&o, &ex), 0);
  struct rlimit old, lim;
  ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
  lim = old;
  lim.rlim_cur = 64;
  ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &lim), 0);
  int dummies[64], nd = 0;
  for (;;) {
    int fd = dup(0);
    if (fd < 0)
      break;
    ck_assert_int_lt(nd, 64);
    dummies[nd++] = fd;
  }
  conc_future *c;
  char how = 's';
  ck_assert_int_eq(conc_executor_submit_task(ex, "tp_crash", &how, 1, NULL, &c),
                   0);
  void *r;
  /* its death was settled, and the respawn tried and failed, before the
   * future was published */
  ck_assert_int_eq(conc_future_result(c, 120, &r), CONC_EWORKER);
  conc_future_release(c);
  for (int i = 0; i < nd; i++)
    close(dummies[i]);
  ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
  for (int i = 0; i < 20; i++) {
    conc_future *f;
    ck_assert_int_eq(
        conc_executor_submit_task(ex, "tp_pid", NULL, 0, NULL, &f), 0);
    result_of(f);
    conc_future_release(f);
  }
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST

/* Regression: many bulk inputs pipelined into one worker (its socket
 * fills with descriptors) never deadlock submit against the collector. */
START_TEST(pp_many_bulk_in_flight) {
  conc_process_pool_options o;
  conc_process_pool_options_init(&o);
  o.max_workers = 1;
  o.ring_size = 64 << 10;
  o.max_in_flight = 2000;
  conc_executor *ex;
  ck_assert_int_eq(conc_process_pool_create(&o, &ex), 0);
  enum { N = 600 };
  static unsigned char big[40000];
  memset(big, 3, sizeof big);
  conc_future **fs = malloc(N * sizeof *fs);
  for (int i = 0; i < N; i++)
    ck_assert_int_eq(conc_executor_submit_task(ex, "tp_inc", big, sizeof big,
                                               NULL, &fs[i]),
                     0);
  for (int i = 0; i < N; i++) {
    const conc_bytes *b = result_of(fs[i]);
    ck_assert_uint_eq(b->len, sizeof big + 4);
    ck_assert_uint_eq(b->data[0], 4);
    conc_future_release(fs[i]);
  }
  free(fs);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST

/* A task handed to a worker's ring before its deadline, but started
 * after it (the worker was busy), finishes with CONC_EDEADLINE unrun. */
START_TEST(pp_deadline_in_ring) {
  conc_process_pool_options o;
  conc_process_pool_options_init(&o);
  o.max_workers = 1;
  conc_executor *ex;
  ck_assert_int_eq(conc_process_pool_create(&o, &ex), 0);
  char marker[128];
  tmpname(marker, sizeof marker, "dlring");
  conc_future *blocker, *g;
  ck_assert_int_eq(conc_executor_submit_task(ex, "tp_stoppable", marker,
                                             strlen(marker), NULL, &blocker),
                   0);
  wait_file(marker);
  conc_submit_options so;
  conc_submit_options_init(&so);
  so.deadline = conc_now() + 0.2;
  ck_assert_int_eq(conc_executor_submit_task(ex, "tp_pid", NULL, 0, &so, &g),
                   0);
  ck_assert(conc_future_running(g)); /* in the worker's ring already */
  conc_sleep(0.3);                   /* let the deadline pass */
  ck_assert_int_eq(conc_future_stop(blocker), 0);
  void *r;
  ck_assert_int_eq(conc_future_result(blocker, 120, &r), CONC_ECANCELED);
  ck_assert_int_eq(conc_future_result(g, 120, &r), CONC_EDEADLINE);
  conc_executor_stats st;
  conc_executor_stats_init(&st);
  conc_executor_get_stats(ex, &st);
  ck_assert_uint_eq(st.deadline_missed, 1);
  conc_future_release(g);
  conc_future_release(blocker);
  unlink(marker);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST

START_TEST(pp_bad_arguments) {
  conc_process_pool_options o;
  conc_process_pool_options_init(&o);
  conc_process_pool_options_init(NULL);
  conc_executor *ex;
  ck_assert_int_eq(conc_process_pool_create(&o, NULL), CONC_EINVAL);
  o.size = 1;
  ck_assert_int_eq(conc_process_pool_create(&o, &ex), CONC_EINVAL);
  conc_process_pool_options_init(&o);
  o.ring_size = 1000;
  ck_assert_int_eq(conc_process_pool_create(&o, &ex), CONC_EINVAL);
  conc_process_pool_options_init(&o);
  o.initargs_len = 3;
  ck_assert_int_eq(conc_process_pool_create(&o, &ex), CONC_EINVAL);
  ck_assert_int_eq(conc_init(NULL, NULL), 0); /* again: harmless */
}
END_TEST

/* Big outputs are handed over in place, from the worker's output arena
 * (no copy): such a result has cap == len (a copy has a power-of-two
 * capacity; 300000 is not one).  They stay valid after the pool is gone. */
static bool pattern_ok(const conc_bytes *o, size_t n) {
  if (o->len != n)
    return false;
  for (size_t i = 0; i < n; i++)
    if (o->data[i] != (unsigned char)(i * 7 + 3))
      return false;
  return true;
}

START_TEST(pp_results_in_place) {
  conc_executor *ex = pool(2);
  uint64_t n = 300000;
  conc_future *f;
  ck_assert_int_eq(conc_executor_submit_task(ex, "tp_big", &n, sizeof n, NULL,
                                             &f),
                   0);
  ck_assert(pattern_ok(result_of(f), n)); /* the pool learns the size */
  conc_future_release(f);
  enum { N = 12 };
  conc_future *fs[N];
  for (int i = 0; i < N; i++)
    ck_assert_int_eq(conc_executor_submit_task(ex, "tp_big", &n, sizeof n,
                                               NULL, &fs[i]),
                     0);
  int views = 0;
  for (int i = 0; i < N; i++) {
    const conc_bytes *o = result_of(fs[i]);
    ck_assert(pattern_ok(o, n));
    views += o->cap == o->len;
  }
  ck_assert_int_gt(views, N / 2);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
  for (int i = 0; i < N; i++) { /* the pool is gone, the results are not */
    ck_assert(pattern_ok(result_of(fs[i]), n));
    conc_future_release(fs[i]);
  }
}
END_TEST

/* A small arena: held results exhaust it and the rest travel as before
 * (by memfd: 70000 bytes are over half a 64 KiB ring; 64 KiB and more are
 * handed over in place); an output larger than the space offered moves
 * out of it; a worker that dies does not
 * disturb results handed over from its arena. */
START_TEST(pp_results_in_place_fallbacks) {
  conc_process_pool_options o;
  conc_process_pool_options_init(&o);
  o.max_workers = 1;
  o.ring_size = 64 << 10;
  conc_executor *ex = NULL;
  ck_assert_int_eq(conc_process_pool_create(&o, &ex), 0);
  uint64_t n = 70000;
  conc_future *f0;
  ck_assert_int_eq(conc_executor_submit_task(ex, "tp_big", &n, sizeof n, NULL,
                                             &f0),
                   0);
  ck_assert(pattern_ok(result_of(f0), n));
  enum { N = 30 };
  conc_future *fs[N];
  for (int i = 0; i < N; i++)
    ck_assert_int_eq(conc_executor_submit_task(ex, "tp_big", &n, sizeof n,
                                               NULL, &fs[i]),
                     0);
  int views = 0;
  for (int i = 0; i < N; i++) {
    const conc_bytes *r = result_of(fs[i]);
    ck_assert(pattern_ok(r, n));
    views += r->cap == r->len;
  }
  ck_assert_int_gt(views, 0);
  ck_assert_int_lt(views, N);
  /* outgrows the space offered (sized for 70000) */
  uint64_t big = 100000;
  conc_future *fb;
  ck_assert_int_eq(conc_executor_submit_task(ex, "tp_big", &big, sizeof big,
                                             NULL, &fb),
                   0);
  ck_assert(pattern_ok(result_of(fb), big));
  conc_future_release(fb);
  for (int i = 1; i < N; i++) /* keep fs[0] (and f0) */
    conc_future_release(fs[i]);
  /* the worker dies; its successor writes into the same arena */
  char how = 'e';
  conc_future *fc;
  ck_assert_int_eq(conc_executor_submit_task(ex, "tp_crash", &how, 1, NULL,
                                             &fc),
                   0);
  void *r;
  ck_assert_int_eq(conc_future_result(fc, 120, &r), CONC_EWORKER);
  conc_future_release(fc);
  for (int i = 1; i < N; i++)
    ck_assert_int_eq(conc_executor_submit_task(ex, "tp_big", &n, sizeof n,
                                               NULL, &fs[i]),
                     0);
  for (int i = 1; i < N; i++) {
    ck_assert(pattern_ok(result_of(fs[i]), n));
    conc_future_release(fs[i]);
  }
  ck_assert(pattern_ok(result_of(fs[0]), n));
  ck_assert(pattern_ok(result_of(f0), n));
  conc_future_release(fs[0]);
  conc_future_release(f0);
  ck_assert_int_eq(conc_executor_destroy(ex), 0);
}
END_TEST


CONC_TEST_MAIN("process_pool", pp_basic, pp_refuses_pointers_and_unknown,
               pp_task_error, pp_crash_segv, pp_crash_abort, pp_crash_exit,
               pp_task_timeout, pp_stop_running, pp_max_tasks_per_child,
               pp_initializer, pp_registry_mismatch, pp_bulk, pp_shutdown,
               pp_worker_killed_while_idle, pp_fork_server_single_threaded,
               pp_parent_killed_no_orphans, pp_map_task,
               pp_wait_and_as_completed, pp_priority_backpressure_deadline,
               pp_timing_and_progress, pp_bulk_after_worker_death,
               pp_respawn_failure_then_destroy, pp_many_bulk_in_flight,
               pp_deadline_in_ring, pp_results_in_place,
               pp_results_in_place_fallbacks,
               pp_bad_arguments)
