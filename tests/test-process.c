/* test-process.c - conc_process: start, join, exit codes, signals, daemons.
 *
 * Ordering uses pipes and joins, never sleeps; the only loop with a sleep
 * polls /proc for a process that must disappear (generous timeout).
 * Timeouts are checked as lower bounds.  Children never start threads.
 * Registered tasks run in children of the fork server (a fresh run of
 * this program, stopped in the harness's conc_init) or forked.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static int ret_arg(void *arg) { return (int)(intptr_t)arg; }

static int die_by(void *arg) {
  raise((int)(intptr_t)arg);
  return 99;
}

/* Restore SIGTERM's default action (Check's handler, inherited through
 * fork, would signal the whole test's process group), say "ready", then
 * block until the pipe's write end closes (the test says "go"). */
static int ready_fd = -1;
static int wait_pipe(void *arg) {
  int *pf = arg, fd = pf[0];
  close(pf[1]);
  signal(SIGTERM, SIG_DFL);
  char c = 'r';
  if (write(ready_fd, &c, 1) != 1)
    return 1;
  while (read(fd, &c, 1) < 0 && errno == EINTR) {
  }
  return 3;
}

START_TEST(process_exit_code) {
  int fds = conc_test_fd_count();
  conc_process p = {0};
  ck_assert_int_eq(conc_process_start(&p, ret_arg, (void *)(intptr_t)7, NULL),
                   0);
  ck_assert_int_gt(conc_process_pid(&p), 0);
  ck_assert_int_eq(conc_process_join(&p, -1), 0);
  ck_assert_int_eq(conc_process_join(&p, 0), 0); /* again: still 0 */
  int code = -1;
  ck_assert_int_eq(conc_process_exitcode(&p, &code), 0);
  ck_assert_int_eq(code, 7);
  ck_assert(!conc_process_is_alive(&p));
  ck_assert_int_eq(conc_process_terminate(&p), 0); /* ended: no-op */
  ck_assert_int_eq(conc_process_kill(&p), 0);
  /* the storage may be started again once joined */
  ck_assert_int_eq(conc_process_start(&p, ret_arg, (void *)(intptr_t)300,
                                      NULL),
                   0);
  ck_assert_int_eq(conc_process_join(&p, 30), 0);
  ck_assert_int_eq(conc_process_exitcode(&p, &code), 0);
  ck_assert_int_eq(code, 300 & 255);
  ck_assert_int_eq(conc_test_fd_count(), fds);
}
END_TEST

START_TEST(process_signal_exit) {
  conc_process p = {0};
  ck_assert_int_eq(
      conc_process_start(&p, die_by, (void *)(intptr_t)SIGUSR1, NULL), 0);
  ck_assert_int_eq(conc_process_join(&p, -1), 0);
  int code = 0;
  ck_assert_int_eq(conc_process_exitcode(&p, &code), 0);
  ck_assert_int_eq(code, -SIGUSR1);
}
END_TEST

START_TEST(process_timeout_terminate_kill) {
  int fds = conc_test_fd_count();
  int pf[2], rf[2];
  ck_assert_int_eq(pipe(pf), 0);
  ck_assert_int_eq(pipe(rf), 0);
  ready_fd = rf[1];
  conc_process a = {0}, b = {0};
  ck_assert_int_eq(conc_process_start(&a, wait_pipe, pf, NULL), 0);
  ck_assert_int_eq(conc_process_start(&b, wait_pipe, pf, NULL), 0);
  for (int i = 0; i < 2; i++) { /* both ready */
    char c;
    ck_assert_int_eq(read(rf[0], &c, 1), 1);
  }
  double t0 = conc_now();
  ck_assert_int_eq(conc_process_join(&a, 0.05), CONC_ETIMEDOUT);
  ck_assert(conc_now() - t0 >= 0.05);
  ck_assert_int_eq(conc_process_join(&a, 0), CONC_ETIMEDOUT);
  ck_assert(conc_process_is_alive(&a));
  int code = 0;
  ck_assert_int_eq(conc_process_exitcode(&a, &code), CONC_EAGAIN);
  ck_assert_int_eq(conc_process_start(&a, ret_arg, NULL, NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_process_terminate(&a), 0);
  ck_assert_int_eq(conc_process_join(&a, -1), 0);
  ck_assert_int_eq(conc_process_exitcode(&a, &code), 0);
  ck_assert_int_eq(code, -SIGTERM);
  ck_assert_int_eq(conc_process_kill(&b), 0);
  ck_assert_int_eq(conc_process_join(&b, 30), 0);
  ck_assert_int_eq(conc_process_exitcode(&b, &code), 0);
  ck_assert_int_eq(code, -SIGKILL);
  /* a child that ends by itself when the pipe closes */
  ck_assert_int_eq(conc_process_start(&a, wait_pipe, pf, NULL), 0);
  close(pf[1]);
  ck_assert_int_eq(conc_process_join(&a, -1), 0);
  ck_assert_int_eq(conc_process_exitcode(&a, &code), 0);
  ck_assert_int_eq(code, 3);
  close(pf[0]);
  close(rf[0]);
  close(rf[1]);
  ck_assert_int_eq(conc_test_fd_count(), fds);
}
END_TEST

START_TEST(process_bad_input) {
  conc_process p = {0};
  conc_process_options o;
  conc_process_options_init(&o);
  conc_process_options_init(NULL);
  ck_assert(!o.daemon);
  ck_assert_int_eq(conc_process_start(NULL, ret_arg, NULL, NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_process_start(&p, NULL, NULL, NULL), CONC_EINVAL);
  o.size = 1;
  ck_assert_int_eq(conc_process_start(&p, ret_arg, NULL, &o), CONC_EINVAL);
  ck_assert_int_eq(conc_process_join(&p, 0), CONC_EINVAL);
  ck_assert_int_eq(conc_process_join(NULL, 0), CONC_EINVAL);
  int code;
  ck_assert_int_eq(conc_process_exitcode(&p, &code), CONC_EINVAL);
  ck_assert_int_eq(conc_process_exitcode(NULL, &code), CONC_EINVAL);
  ck_assert_int_eq(conc_process_terminate(&p), CONC_EINVAL);
  ck_assert_int_eq(conc_process_kill(NULL), CONC_EINVAL);
  ck_assert(!conc_process_is_alive(&p));
  ck_assert(!conc_process_is_alive(NULL));
  ck_assert_int_eq(conc_process_pid(&p), 0);
  ck_assert_int_eq(conc_process_pid(NULL), 0);
}
END_TEST

START_TEST(process_many_no_fd_leak) {
  int fds = conc_test_fd_count();
  enum { N = 20 };
  conc_process p[N];
  memset(p, 0, sizeof p);
  conc_process_options o;
  conc_process_options_init(&o);
  for (int i = 0; i < N; i++) {
    o.daemon = i % 2;
    ck_assert_int_eq(conc_process_start(&p[i], ret_arg, (void *)(intptr_t)i,
                                        &o),
                     0);
  }
  for (int i = N - 1; i >= 0; i--) {
    int code = -1;
    ck_assert_int_eq(conc_process_join(&p[i], -1), 0);
    ck_assert_int_eq(conc_process_exitcode(&p[i], &code), 0);
    ck_assert_int_eq(code, i);
  }
  ck_assert_int_eq(conc_test_fd_count(), fds);
}
END_TEST

/* ---- daemons die with their parent, even when it is SIGKILLed ---- */

static int report_fd = -1;

/* The daemon: report its pid, then wait forever. */
static int daemon_main(void *arg) {
  (void)arg;
  int pid = (int)getpid();
  if (write(report_fd, &pid, sizeof pid) != sizeof pid)
    return 1;
  for (;;)
    pause();
}

static conc_process daemon_proc;

static bool start_as_daemon = true;

static void *start_daemon(void *arg) {
  (void)arg;
  conc_process_options o;
  conc_process_options_init(&o);
  o.daemon = start_as_daemon;
  if (conc_process_start(&daemon_proc, daemon_main, NULL, &o) != 0)
    _exit(2);
  return NULL;
}

/* Is pid gone (no /proc entry, or a zombie nobody reaped yet)? */
static bool gone(int pid) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  int fd = open(path, O_RDONLY);
  if (fd < 0)
    return true;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0)
    return true;
  buf[n] = '\0';
  char *rp = strrchr(buf, ')');
  return rp && (rp[2] == 'Z' || rp[2] == 'X');
}

static void daemon_outlives_nothing(bool from_thread) {
  int rep[2];
  ck_assert_int_eq(pipe(rep), 0);
  pid_t parent = fork();
  ck_assert_int_ge(parent, 0);
  if (parent == 0) {
    report_fd = rep[1];
    if (from_thread) {
      /* PR_SET_PDEATHSIG would fire when this thread ends */
      conc_thread t;
      memset(&t, 0, sizeof t);
      if (conc_thread_start(&t, start_daemon, NULL, NULL) != 0 ||
          conc_thread_join(&t, -1, NULL) != 0)
        _exit(3);
    } else {
      start_daemon(NULL);
    }
    int me = (int)getpid();
    if (write(rep[1], &me, sizeof me) != sizeof me)
      _exit(4);
    for (;;)
      pause();
  }
  close(rep[1]);
  int pids[2] = {0, 0};
  for (int i = 0; i < 2; i++)
    ck_assert_int_eq(read(rep[0], &pids[i], sizeof pids[i]),
                     (ssize_t)sizeof pids[i]);
  close(rep[0]);
  int dpid = pids[0] == (int)parent ? pids[1] : pids[0];
  ck_assert_int_gt(dpid, 0);
  ck_assert(!gone(dpid));
  ck_assert_int_eq(kill(parent, SIGKILL), 0);
  int st;
  ck_assert_int_eq(waitpid(parent, &st, 0), parent);
  ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  double t0 = conc_now();
  while (!gone(dpid)) {
    ck_assert_msg(conc_now() - t0 < 30, "daemon %d outlived its parent", dpid);
    conc_sleep(0.01);
  }
}

START_TEST(process_daemon_dies_with_killed_parent) {
  daemon_outlives_nothing(false);
}
END_TEST

/* The control: a child that is not a daemon survives its killed parent
 * (so the daemon test above measures the daemon mechanism). */
START_TEST(process_non_daemon_survives_parent) {
  int rep[2];
  ck_assert_int_eq(pipe(rep), 0);
  pid_t parent = fork();
  ck_assert_int_ge(parent, 0);
  if (parent == 0) {
    report_fd = rep[1];
    start_as_daemon = false;
    start_daemon(NULL);
    for (;;)
      pause();
  }
  close(rep[1]);
  int dpid = 0;
  ck_assert_int_eq(read(rep[0], &dpid, sizeof dpid), (ssize_t)sizeof dpid);
  close(rep[0]);
  ck_assert_int_eq(kill(parent, SIGKILL), 0);
  int st;
  ck_assert_int_eq(waitpid(parent, &st, 0), parent);
  ck_assert(!gone(dpid));
  ck_assert_int_eq(kill(dpid, SIGKILL), 0);
  double t0 = conc_now();
  while (!gone(dpid)) {
    ck_assert(conc_now() - t0 < 30);
    conc_sleep(0.01);
  }
}
END_TEST

#ifndef CONC_TEST_TSAN
/* The intermediate parent starts a thread after being forked: plain and
 * ASan builds only (DECISIONS "Fork under TSan"). */
START_TEST(process_daemon_from_exited_thread) {
  daemon_outlives_nothing(true);
}
END_TEST
#endif

/* Several threads join one process at once: all see it end. */
static conc_process shared_proc;
static void *joiner(void *arg) {
  (void)arg;
  return (void *)(intptr_t)conc_process_join(&shared_proc, 60);
}

START_TEST(process_concurrent_join) {
  int fds = conc_test_fd_count();
  int pf[2], rf[2];
  ck_assert_int_eq(pipe(pf), 0);
  ck_assert_int_eq(pipe(rf), 0);
  ready_fd = rf[1];
  memset(&shared_proc, 0, sizeof shared_proc);
  ck_assert_int_eq(conc_process_start(&shared_proc, wait_pipe, pf, NULL), 0);
  char c;
  ck_assert_int_eq(read(rf[0], &c, 1), 1);
  conc_thread t[3];
  memset(t, 0, sizeof t);
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(conc_thread_start(&t[i], joiner, NULL, NULL), 0);
  close(pf[1]); /* the child ends */
  for (int i = 0; i < 3; i++) {
    void *r = NULL;
    ck_assert_int_eq(conc_thread_join(&t[i], -1, &r), 0);
    ck_assert_int_eq((int)(intptr_t)r, 0);
  }
  int code;
  ck_assert_int_eq(conc_process_exitcode(&shared_proc, &code), 0);
  ck_assert_int_eq(code, 3);
  close(pf[0]);
  close(rf[0]);
  close(rf[1]);
  ck_assert_int_eq(conc_test_fd_count(), fds);
}
END_TEST

/* ---- registered tasks in a process: the fork server and fork ---- */

static int marker; /* set at run time by the test: only fork copies it */

/* in: "hello" and a byte: succeed, or fail with that byte as the code */
CONC_TASK(pt_hello, in, len, out) {
  (void)out;
  if (len != 6 || memcmp(in, "hello", 5) != 0)
    return conc_task_fail(99, "bad input (%zu bytes)", len);
  unsigned char c = ((const unsigned char *)in)[5];
  return c ? conc_task_fail(c, "asked to fail with %u", c) : 0;
}

CONC_TASK(pt_signal, in, len, out) {
  (void)in, (void)len, (void)out;
  raise(SIGUSR1);
  return 0;
}

CONC_TASK(pt_forever, in, len, out) {
  (void)in, (void)len, (void)out;
  signal(SIGTERM, SIG_DFL); /* forked: Check's handler (see wait_pipe) */
  for (;;)
    pause();
  return 0;
}

/* exits with 10 x (threads in this process) + (marker != 0) */
CONC_TASK(pt_probe, in, len, out) {
  (void)in, (void)len, (void)out;
  FILE *f = fopen("/proc/self/status", "r");
  int threads = 0;
  char line[256];
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "Threads: %d", &threads) == 1)
      break;
  if (f)
    fclose(f);
  fflush(NULL);
  _exit(10 * threads + (marker != 0));
}

/* in: 1 MiB; exits 0 if it is the pattern the test wrote */
CONC_TASK(pt_big, in, len, out) {
  (void)out;
  const unsigned char *b = in;
  if (len != (1u << 20))
    return conc_task_fail(2, "%zu bytes", len);
  for (size_t i = 0; i < len; i++)
    if (b[i] != (unsigned char)(i * 7 + 3))
      return conc_task_fail(3, "byte %zu", i);
  return 0;
}

static const conc_start_method methods[] = {CONC_START_DEFAULT,
                                            CONC_START_FORKSERVER,
                                            CONC_START_FORK};

static int start_task(conc_process *p, const char *name, const void *in,
                      size_t len, conc_start_method m, bool daemon) {
  conc_process_options o;
  conc_process_options_init(&o);
  o.start_method = m;
  o.daemon = daemon;
  return conc_process_start_task(p, name, in, len, &o);
}

START_TEST(process_task_exit_codes) {
  int fds = conc_test_fd_count();
  for (size_t k = 0; k < sizeof methods / sizeof methods[0]; k++) {
    conc_process p = {0};
    int code = -1;
    ck_assert_int_eq(start_task(&p, "pt_hello", "hello", 6, methods[k], false),
                     0);
    ck_assert_int_gt(conc_process_pid(&p), 0);
    ck_assert_int_eq(conc_process_join(&p, -1), 0);
    ck_assert_int_eq(conc_process_exitcode(&p, &code), 0);
    ck_assert_int_eq(code, 0);
    ck_assert(!conc_process_is_alive(&p));
    /* a failed task: its own code (its message goes to the log) */
    ck_assert_int_eq(start_task(&p, "pt_hello", "hello\7", 6, methods[k],
                                k == 1),
                     0);
    ck_assert_int_eq(conc_process_join(&p, 60), 0);
    ck_assert_int_eq(conc_process_exitcode(&p, &code), 0);
    ck_assert_int_eq(code, 7);
    /* a signal */
    ck_assert_int_eq(start_task(&p, "pt_signal", NULL, 0, methods[k], false),
                     0);
    ck_assert_int_eq(conc_process_join(&p, -1), 0);
    ck_assert_int_eq(conc_process_exitcode(&p, &code), 0);
    ck_assert_int_eq(code, -SIGUSR1);
  }
  /* NULL options: the fork server; big input arrives whole */
  unsigned char *big = malloc(1u << 20);
  for (size_t i = 0; i < (1u << 20); i++)
    big[i] = (unsigned char)(i * 7 + 3);
  conc_process p = {0};
  ck_assert_int_eq(conc_process_start_task(&p, "pt_big", big, 1u << 20, NULL),
                   0);
  free(big);
  int code = -1;
  ck_assert_int_eq(conc_process_join(&p, -1), 0);
  ck_assert_int_eq(conc_process_exitcode(&p, &code), 0);
  ck_assert_int_eq(code, 0);
  /* the server is library state: shutdown stops it (nothing unjoined) */
  ck_assert_int_eq(conc_library_shutdown(), 0);
  ck_assert_int_eq(conc_test_fd_count(), fds);
  /* and a later start begins a new one */
  ck_assert_int_eq(conc_process_start_task(&p, "pt_hello", "hello", 6, NULL),
                   0);
  ck_assert_int_eq(conc_process_join(&p, -1), 0);
  ck_assert_int_eq(conc_process_exitcode(&p, &code), 0);
  ck_assert_int_eq(code, 0);
  ck_assert_int_eq(conc_library_shutdown(), 0);
  ck_assert_int_eq(conc_test_fd_count(), fds);
}
END_TEST

START_TEST(process_task_timeout_terminate_kill) {
  for (size_t k = 0; k < sizeof methods / sizeof methods[0]; k++) {
    conc_process a = {0}, b = {0};
    ck_assert_int_eq(start_task(&a, "pt_forever", NULL, 0, methods[k], false),
                     0);
    ck_assert_int_eq(start_task(&b, "pt_forever", NULL, 0, methods[k], true),
                     0);
    double t0 = conc_now();
    ck_assert_int_eq(conc_process_join(&a, 0.05), CONC_ETIMEDOUT);
    ck_assert(conc_now() - t0 >= 0.05);
    ck_assert(conc_process_is_alive(&a));
    int code = 0;
    ck_assert_int_eq(conc_process_exitcode(&a, &code), CONC_EAGAIN);
    ck_assert_int_eq(start_task(&a, "pt_forever", NULL, 0, methods[k], false),
                     CONC_EINVAL); /* started, not joined */
    ck_assert_int_eq(conc_process_terminate(&a), 0);
    ck_assert_int_eq(conc_process_join(&a, -1), 0);
    ck_assert_int_eq(conc_process_exitcode(&a, &code), 0);
    ck_assert_int_eq(code, -SIGTERM);
    ck_assert_int_eq(conc_process_kill(&b), 0);
    ck_assert_int_eq(conc_process_join(&b, 30), 0);
    ck_assert_int_eq(conc_process_exitcode(&b, &code), 0);
    ck_assert_int_eq(code, -SIGKILL);
  }
  ck_assert_int_eq(conc_library_shutdown(), 0);
}
END_TEST

/* From a parent running threads: the fork server's child is a fresh
 * single-threaded program (no memory of the parent's); fork's child is a
 * copy with one thread. */
static conc_test_latch probe_go;
static void *parked(void *arg) {
  (void)arg;
  conc_test_latch_wait(&probe_go);
  return NULL;
}

START_TEST(process_task_multithreaded_parent) {
  marker = 1;
  conc_test_latch_init(&probe_go, 1);
  conc_thread t[4];
  memset(t, 0, sizeof t);
  for (int i = 0; i < 4; i++)
    ck_assert_int_eq(conc_thread_start(&t[i], parked, NULL, NULL), 0);
  int want[] = {10, 10, 11}; /* one thread each; marker only with fork */
  for (size_t k = 0; k < sizeof methods / sizeof methods[0]; k++) {
    conc_process p = {0};
    int code = -1;
    ck_assert_int_eq(start_task(&p, "pt_probe", NULL, 0, methods[k], false),
                     0);
    ck_assert_int_eq(conc_process_join(&p, -1), 0);
    ck_assert_int_eq(conc_process_exitcode(&p, &code), 0);
#ifdef CONC_TEST_TSAN
    /* TSan's runtime starts its background thread again in a fork child */
    if (code / 10 == 2)
      code -= 10;
#endif
    ck_assert_int_eq(code, want[k]);
  }
  conc_test_latch_count_down(&probe_go);
  for (int i = 0; i < 4; i++)
    ck_assert_int_eq(conc_thread_join(&t[i], -1, NULL), 0);
  ck_assert_int_eq(conc_library_shutdown(), 0);
}
END_TEST

/* After fork() a child does not talk to its parent's server: it starts
 * its own; the parent's keeps working. */
START_TEST(process_task_server_across_fork) {
  conc_process p = {0};
  int code = -1;
  ck_assert_int_eq(conc_process_start_task(&p, "pt_hello", "hello", 6, NULL),
                   0); /* the parent's server is up */
  ck_assert_int_eq(conc_process_join(&p, -1), 0);
  pid_t c = fork();
  ck_assert_int_ge(c, 0);
  if (c == 0) {
    conc_process q = {0};
    CHILD_CHECK(conc_process_start_task(&q, "pt_hello", "hello\5", 6, NULL) ==
                0);
    CHILD_CHECK(conc_process_join(&q, 60) == 0);
    CHILD_CHECK(conc_process_exitcode(&q, &code) == 0 && code == 5);
    CHILD_CHECK(conc_library_shutdown() == 0);
    _exit(0);
  }
  int st;
  ck_assert_int_eq(waitpid(c, &st, 0), c);
  ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  ck_assert_int_eq(conc_process_start_task(&p, "pt_hello", "hello\6", 6, NULL),
                   0);
  ck_assert_int_eq(conc_process_join(&p, -1), 0);
  ck_assert_int_eq(conc_process_exitcode(&p, &code), 0);
  ck_assert_int_eq(code, 6);
  ck_assert_int_eq(conc_library_shutdown(), 0);
}
END_TEST

START_TEST(process_task_bad_input) {
  conc_process p = {0};
  conc_process_options o;
  conc_process_options_init(&o);
  ck_assert_int_eq(o.start_method, CONC_START_DEFAULT);
  ck_assert_int_eq(conc_process_start_task(NULL, "pt_hello", NULL, 0, NULL),
                   CONC_EINVAL);
  ck_assert_int_eq(conc_process_start_task(&p, NULL, NULL, 0, NULL),
                   CONC_EINVAL);
  ck_assert_int_eq(conc_process_start_task(&p, "pt_hello", NULL, 1, NULL),
                   CONC_EINVAL);
  ck_assert_int_eq(conc_process_start_task(&p, "no_such_task", NULL, 0, NULL),
                   CONC_ENOENT);
  o.start_method = (conc_start_method)7;
  ck_assert_int_eq(conc_process_start_task(&p, "pt_hello", NULL, 0, &o),
                   CONC_EINVAL);
  ck_assert_int_eq(conc_process_start(&p, ret_arg, NULL, &o), CONC_EINVAL);
  o.start_method = CONC_START_FORKSERVER; /* a pointer cannot go there */
  ck_assert_int_eq(conc_process_start(&p, ret_arg, NULL, &o), CONC_ENOTSUP);
  o.start_method = CONC_START_DEFAULT;
  o.size = 1;
  ck_assert_int_eq(conc_process_start_task(&p, "pt_hello", NULL, 0, &o),
                   CONC_EINVAL);
  ck_assert_int_eq(conc_process_pid(&p), 0);
}
END_TEST

/* A daemon task started by the fork server dies with its SIGKILLed
 * parent (and so does the server); a non-daemon one survives it. */
static void task_daemon_case(bool daemon) {
  int rep[2];
  ck_assert_int_eq(pipe(rep), 0);
  pid_t parent = fork();
  ck_assert_int_ge(parent, 0);
  if (parent == 0) {
    close(rep[0]);
    conc_process_options o;
    conc_process_options_init(&o);
    o.daemon = daemon;
    conc_process p = {0};
    CHILD_CHECK(conc_process_start_task(&p, "pt_forever", NULL, 0, &o) == 0);
    int pid = conc_process_pid(&p);
    CHILD_CHECK(write(rep[1], &pid, sizeof pid) == sizeof pid);
    for (;;)
      pause();
  }
  close(rep[1]);
  int dpid = 0;
  ck_assert_int_eq(read(rep[0], &dpid, sizeof dpid), (ssize_t)sizeof dpid);
  close(rep[0]);
  ck_assert_int_gt(dpid, 0);
  ck_assert(!gone(dpid));
  ck_assert_int_eq(kill(parent, SIGKILL), 0);
  int st;
  ck_assert_int_eq(waitpid(parent, &st, 0), parent);
  double t0 = conc_now();
  if (daemon) {
    while (!gone(dpid)) {
      ck_assert_msg(conc_now() - t0 < 30, "daemon %d outlived its parent",
                    dpid);
      conc_sleep(0.01);
    }
  } else {
    ck_assert(!gone(dpid));
    ck_assert_int_eq(kill(dpid, SIGKILL), 0);
    while (!gone(dpid)) {
      ck_assert(conc_now() - t0 < 30);
      conc_sleep(0.01);
    }
  }
}

START_TEST(process_task_daemon_dies_with_killed_parent) {
  task_daemon_case(true);
}
END_TEST

START_TEST(process_task_non_daemon_survives_parent) {
  task_daemon_case(false);
}
END_TEST

/* ---- pipe ---- */

static conc_conn pipe_a, pipe_b;

/* Echo every message back, reversed in case; stop at "bye". */
static int echo_main(void *arg) {
  (void)arg;
  conc_conn_close(&pipe_a);
  for (;;) {
    void *m;
    size_t n;
    int r = conc_conn_recv(&pipe_b, &m, &n, 60);
    if (r != 0)
      return 10;
    bool bye = n == 3 && memcmp(m, "bye", 3) == 0;
    r = conc_conn_send(&pipe_b, m, n, 60);
    conc_queue_msg_free(m);
    if (r != 0)
      return 11;
    if (bye)
      break;
  }
  conc_conn_close(&pipe_b);
  return 0;
}

START_TEST(pipe_round_trip) {
  int fds = conc_test_fd_count();
  ck_assert_int_eq(conc_pipe_open(&pipe_a, &pipe_b), 0);
  conc_process p = {0};
  ck_assert_int_eq(conc_process_start(&p, echo_main, NULL, NULL), 0);
  ck_assert_int_eq(conc_conn_close(&pipe_b), 0);
  size_t sizes[] = {0, 1, 100, 1 << 20};
  unsigned char *big = malloc(1 << 20);
  for (size_t i = 0; i < (1u << 20); i++)
    big[i] = (unsigned char)(i * 13);
  for (size_t k = 0; k < 4; k++) {
    ck_assert_int_eq(conc_conn_send(&pipe_a, big, sizes[k], 30), 0);
    void *m;
    size_t n;
    ck_assert_int_eq(conc_conn_recv(&pipe_a, &m, &n, 30), 0);
    ck_assert_uint_eq(n, sizes[k]);
    ck_assert(memcmp(m, big, n) == 0);
    conc_queue_msg_free(m);
  }
  free(big);
  ck_assert_int_eq(conc_conn_send(&pipe_a, "bye", 3, 30), 0);
  void *m;
  size_t n;
  ck_assert_int_eq(conc_conn_recv(&pipe_a, &m, &n, 30), 0);
  conc_queue_msg_free(m);
  ck_assert_int_eq(conc_process_join(&p, -1), 0);
  int code;
  ck_assert_int_eq(conc_process_exitcode(&p, &code), 0);
  ck_assert_int_eq(code, 0);
  /* the peer is gone: receive says closed; send says closed, no SIGPIPE
   * (the test process keeps SIGPIPE's default action: it would die) */
  ck_assert_int_eq(conc_conn_recv(&pipe_a, &m, &n, 30), CONC_ECLOSED);
  ck_assert_int_eq(conc_conn_send(&pipe_a, "x", 1, 30), CONC_ECLOSED);
  ck_assert_int_eq(conc_conn_close(&pipe_a), 0);
  ck_assert_int_eq(conc_test_fd_count(), fds);
}
END_TEST

START_TEST(pipe_timeouts_and_bad_input) {
  conc_conn a, b;
  memset(&a, 0, sizeof a);
  ck_assert_int_eq(conc_pipe_open(NULL, &b), CONC_EINVAL);
  ck_assert_int_eq(conc_pipe_open(&a, &b), 0);
  void *m;
  size_t n;
  double t0 = conc_now();
  ck_assert_int_eq(conc_conn_recv(&a, &m, &n, 0.05), CONC_ETIMEDOUT);
  ck_assert(conc_now() - t0 >= 0.05);
  ck_assert_int_eq(conc_conn_recv(&a, &m, &n, 0), CONC_ETIMEDOUT);
  /* fill the socket buffer: a send that cannot start times out */
  static unsigned char chunk[4096]; /* well under the buffer's free part */
  int r;
  do
    r = conc_conn_send(&a, chunk, sizeof chunk, 0);
  while (r == 0);
  ck_assert_int_eq(r, CONC_ETIMEDOUT);
  ck_assert_int_eq(conc_conn_send(NULL, "x", 1, 0), CONC_EINVAL);
  ck_assert_int_eq(conc_conn_send(&a, NULL, 1, 0), CONC_EINVAL);
  ck_assert_int_eq(conc_conn_recv(&a, NULL, &n, 0), CONC_EINVAL);
  ck_assert_int_eq(conc_conn_close(&a), 0);
  ck_assert_int_eq(conc_conn_close(&a), CONC_EINVAL);
  ck_assert_int_eq(conc_conn_close(NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_conn_send(&a, "x", 1, 0), CONC_ECLOSED);
  ck_assert_int_eq(conc_conn_recv(&a, &m, &n, 0), CONC_ECLOSED);
  /* b still holds the messages sent before a closed, then says closed */
  size_t got = 0;
  while ((r = conc_conn_recv(&b, &m, &n, 0)) == 0) {
    ck_assert_uint_eq(n, sizeof chunk);
    conc_queue_msg_free(m);
    got++;
  }
  ck_assert_int_eq(r, CONC_ECLOSED);
  ck_assert_uint_gt(got, 0);
  ck_assert_int_eq(conc_conn_close(&b), 0);
}
END_TEST

/* A peer that is not a conc_conn sends a length no conc peer would. */
START_TEST(pipe_garbage_length) {
  conc_conn a, b;
  ck_assert_int_eq(conc_pipe_open(&a, &b), 0);
  uint64_t junk = UINT64_MAX;
  int fd = -1;
  memcpy(&fd, &a, sizeof fd); /* src/process.c stores fd + 1 */
  fd -= 1;
  ck_assert_int_eq(write(fd, &junk, sizeof junk), (ssize_t)sizeof junk);
  void *m;
  size_t n;
  ck_assert_int_eq(conc_conn_recv(&b, &m, &n, 30), CONC_ERANGE);
  conc_conn_close(&a);
  conc_conn_close(&b);
}
END_TEST

CONC_TEST_MAIN("process", process_exit_code, process_signal_exit,
               process_timeout_terminate_kill, process_bad_input,
               process_many_no_fd_leak,
               process_daemon_dies_with_killed_parent,
               process_non_daemon_survives_parent, process_concurrent_join,
               pipe_round_trip,
               pipe_timeouts_and_bad_input, pipe_garbage_length,
               process_task_exit_codes, process_task_timeout_terminate_kill,
               process_task_multithreaded_parent, process_task_bad_input,
               process_task_server_across_fork,
               process_task_daemon_dies_with_killed_parent,
               process_task_non_daemon_survives_parent
#ifndef CONC_TEST_TSAN
               ,
               process_daemon_from_exited_thread
#endif
)
