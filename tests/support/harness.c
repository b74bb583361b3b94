/* harness.c - counting allocator, latch, runner.  See harness.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static atomic_long live;
static atomic_long allocs;
static atomic_long fail_at;
static bool leak_check = true;

static bool should_fail(void) {
  long n = atomic_fetch_add(&allocs, 1) + 1;
  long f = atomic_load(&fail_at);
  return f > 0 && n == f;
}

/* A header keeps blocks 16-byte aligned and marks them as ours. */
#define HDR 16
static void *t_malloc(size_t n) {
  if (should_fail())
    return NULL;
  char *p = malloc(n + HDR);
  if (!p)
    return NULL;
  atomic_fetch_add(&live, 1);
  return p + HDR;
}
static void *t_calloc(size_t c, size_t n) {
  if (n && c > ((size_t)-1 - HDR) / n)
    return NULL;
  void *p = t_malloc(c * n);
  if (p)
    memset(p, 0, c * n);
  return p;
}
static void t_free(void *p) {
  if (!p)
    return;
  atomic_fetch_sub(&live, 1);
  free((char *)p - HDR);
}
static void *t_realloc(void *p, size_t n) {
  if (!p)
    return t_malloc(n);
  if (should_fail())
    return NULL;
  char *q = realloc((char *)p - HDR, n + HDR);
  return q ? q + HDR : NULL;
}

long conc_test_live_blocks(void) { return atomic_load(&live); }
long conc_test_alloc_count(void) { return atomic_load(&allocs); }
void conc_test_fail_alloc_after(long n) {
  atomic_store(&fail_at, n > 0 ? atomic_load(&allocs) + n : 0);
}
void conc_test_no_leak_check(void) { leak_check = false; }

/* Hang diagnostics: shortly before Check's timeout kills the case, SIGALRM
 * runs gdb on the process to print every thread's stack (fork, exec and
 * waitpid are async-signal-safe; no thread is created). */
static void dump_stacks(int sig) {
  (void)sig;
  static const char msg[] = "\n*** test about to time out: stacks follow\n";
  if (write(2, msg, sizeof msg - 1) < 0) {
  }
  char pid[16];
  int n = 0;
  long p = (long)getpid();
  char tmp[16];
  do {
    tmp[n++] = (char)('0' + p % 10);
    p /= 10;
  } while (p);
  for (int i = 0; i < n; i++)
    pid[i] = tmp[n - 1 - i];
  pid[n] = 0;
  pid_t c = fork();
  if (c == 0) {
    dup2(2, 1);
    execlp("gdb", "gdb", "-batch", "-p", pid, "-ex", "thread apply all bt 20",
           (char *)NULL);
    _exit(127);
  }
  if (c > 0)
    waitpid(c, NULL, 0);
}

static void arm_watchdog(void) {
  const char *m = getenv("CK_TIMEOUT_MULTIPLIER");
  double mult = m ? atof(m) : 1.0;
  if (mult <= 0)
    mult = 1.0;
  unsigned t = (unsigned)(CONC_TEST_TIMEOUT * mult);
  if (t > 10) {
    signal(SIGALRM, dump_stacks);
    alarm(t - 5);
  }
}

static void setup(void) {
  arm_watchdog();
  atomic_store(&live, 0);
  atomic_store(&allocs, 0);
  atomic_store(&fail_at, 0);
  leak_check = true;
  conc_set_allocator(t_malloc, t_realloc, t_calloc, t_free);
}

static void teardown(void) {
  alarm(0);
  atomic_store(&fail_at, 0);
  if (leak_check) {
    long n = atomic_load(&live);
    ck_assert_msg(n == 0, "%ld block(s) allocated by conc still live", n);
  }
}

void conc_test_latch_init(conc_test_latch *l, long count) {
  pthread_mutex_init(&l->lock, NULL);
  pthread_cond_init(&l->cond, NULL);
  l->count = count;
}
void conc_test_latch_count_down(conc_test_latch *l) {
  pthread_mutex_lock(&l->lock);
  if (--l->count == 0)
    pthread_cond_broadcast(&l->cond);
  pthread_mutex_unlock(&l->lock);
}
void conc_test_latch_wait(conc_test_latch *l) {
  pthread_mutex_lock(&l->lock);
  while (l->count > 0)
    pthread_cond_wait(&l->cond, &l->lock);
  pthread_mutex_unlock(&l->lock);
}

int conc_test_fd_count(void) {
  DIR *d = opendir("/proc/self/fd");
  ck_assert_ptr_nonnull(d);
  int n = 0;
  while (readdir(d))
    n++;
  closedir(d);
  return n;
}

int conc_test_capture(const char *cmd, char **out) {
  FILE *p = popen(cmd, "r");
  if (!p)
    return -1;
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  size_t n;
  while (buf && (n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
    len += n;
    if (cap - len < 2) {
      char *nb = realloc(buf, cap *= 2);
      if (!nb) {
        free(buf);
        buf = NULL;
      } else {
        buf = nb;
      }
    }
  }
  if (buf)
    buf[len] = 0;
  int st = pclose(p);
  *out = buf;
  return st;
}

int conc_test_main(const char *suite_name, const TTest *const *tests, size_t n,
                   int argc, char **argv) {
  /* process pools: the fork server is this program run again, and stops
   * here */
  conc_init(&argc, &argv);
  Suite *s = suite_create(suite_name);
  for (size_t i = 0; i < n; i++) {
    TCase *tc = tcase_create(tests[i]->name);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, CONC_TEST_TIMEOUT);
    tcase_add_test(tc, tests[i]);
    suite_add_tcase(s, tc);
  }
  SRunner *sr = srunner_create(s);
  if (argc > 1)
    setenv("CK_RUN_CASE", argv[1], 1);
  srunner_run_all(sr, CK_ENV);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
