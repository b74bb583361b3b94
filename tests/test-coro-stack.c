/* test-coro-stack.c - coroutine stacks at scale and their overflow report
 * (src/coro.c's SIGSEGV handler, src/stack.c's guard modes, through the
 * loop).
 *
 * DESIGN: coro_million parks 10^6 coroutines (10^4 under the sanitizers:
 * gcc's TSan tracks at most 8128 fibers... plus ASan's shadow cost) in a
 * channel receive, each with 256 B of live locals on its stack, then checks
 * /proc/self/maps stays under the default vm.max_map_count, prints the
 * guard mode and the memory per coroutine ((RSS + page tables) growth / N),
 * wakes them all with one value each and checks every coroutine's locals
 * survived.  coro_many_mprotect forces the fallback guard mode through the
 * loop: guards until the map budget is spent, then unguarded stacks (logged
 * once), still under the map limit.  (tests/test-ctx.c covers the pool
 * itself in both modes: many stacks, the forced fallback, its budget and a
 * raw guard-page hit.)  The overflow cases run a coroutine that recurses
 * forever in a forked child and read its stderr: conc's message names the
 * coroutine and the stack size, then the child dies of SIGSEGV (plain
 * builds), or the sanitizer's own report ends it, or the user's handler
 * installed before it runs (chaining).  Nothing here is timed.
 *
 * Memory: coro_million needs about 4.5 GB of RAM in the plain builds (one
 * committed 4 KiB stack page, a record and page tables per coroutine).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#define CONC_TEST_TIMEOUT 300
#include "harness.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conc/chan.h"
#include "stack.h"

#if defined(CONC_TEST_ASAN) || defined(CONC_TEST_TSAN)
#define SANITIZED 1
#define MILLION 10000L
#define MANY_MPROT 20000L
#else
#define MILLION 1000000L
#define MANY_MPROT 100000L
#endif

static long maps_lines(void) {
  int fd = open("/proc/self/maps", O_RDONLY);
  ck_assert_int_ge(fd, 0);
  char buf[65536];
  long n = 0;
  ssize_t r;
  while ((r = read(fd, buf, sizeof buf)) > 0)
    for (ssize_t i = 0; i < r; i++)
      n += buf[i] == '\n';
  close(fd);
  return n;
}

/* Resident bytes plus page-table bytes of this process. */
static long mem_bytes(void) {
  FILE *f = fopen("/proc/self/status", "r");
  ck_assert_ptr_nonnull(f);
  char line[256];
  long rss = -1, pte = -1;
  while (fgets(line, sizeof line, f)) {
    sscanf(line, "VmRSS: %ld kB", &rss);
    sscanf(line, "VmPTE: %ld kB", &pte);
  }
  fclose(f);
  ck_assert(rss >= 0 && pte >= 0);
  return (rss + pte) * 1024;
}

/* ---- 10^6 coroutines parked in a channel receive ---- */

typedef struct million {
  conc_chan *ch;
  long n;
  long parked;
  long woken;
  long sum;
  long bad;
  conc__guard_mode mode; /* the loop's stacks' */
} million;

static int receiver(void *arg, void **result) {
  million *m = arg;
  (void)result;
  volatile unsigned char locals[256]; /* live across the wait */
  long me = m->parked;
  for (int i = 0; i < 256; i++)
    locals[i] = (unsigned char)(me * 31 + i);
  m->parked++;
  void *v = NULL;
  int err = conc_chan_recv(m->ch, &v, -1);
  if (err != 0)
    m->bad++;
  for (int i = 0; i < 256; i++)
    if (locals[i] != (unsigned char)(me * 31 + i)) {
      m->bad++;
      break;
    }
  m->sum += (long)(intptr_t)v;
  m->woken++;
  return 0;
}

static int million_driver(void *arg, void **result) {
  million *m = arg;
  (void)result;
  long maps0 = maps_lines();
  long mem0 = mem_bytes();
  for (long i = 0; i < m->n; i++)
    ck_assert_int_eq(conc_coro_spawn(NULL, receiver, m, NULL, NULL), 0);
  while (m->parked < m->n) /* each runs once, up to its receive */
    ck_assert_int_eq(conc_coro_yield(), 0);
  long maps1 = maps_lines();
  long mem1 = mem_bytes();
  conc__guard_mode mode = m->mode;
  printf("coro_million: %ld coroutines parked in a channel receive, guard "
         "mode %s; /proc/self/maps %ld -> %ld lines; (RSS + page tables) "
         "growth %.0f bytes per coroutine\n",
         m->n, conc__guard_mode_name(mode), maps0, maps1,
         (double)(mem1 - mem0) / (double)m->n);
  fflush(stdout);
  ck_assert_int_lt(maps1, 65530);
#ifndef SANITIZED /* TSan maps shadow of its own per stack */
  if (mode == CONC__GUARD_INSTALL) /* one line per slab of 256 stacks */
    ck_assert_int_lt(maps1 - maps0, m->n / 100 + 100);
  /* a loose ceiling (the target, 4.5 KB, is measured by bench-coro) */
  ck_assert_int_lt((mem1 - mem0) / m->n, 12 * 1024);
#endif
  for (long i = 0; i < m->n; i++)
    ck_assert_int_eq(conc_chan_send(m->ch, (void *)(intptr_t)(i + 1), -1), 0);
  while (m->woken < m->n)
    ck_assert_int_eq(conc_coro_yield(), 0);
  return 0;
}

static void run_million(long n) {
  million m = {.n = n, .mode = conc__stack_probe_guard()};
  ck_assert_int_eq(conc_chan_create(&m.ch, 0), 0);
  ck_assert_int_eq(conc_coro_run(million_driver, &m, NULL), 0);
  ck_assert_int_eq(m.woken, n);
  ck_assert_int_eq(m.bad, 0);
  ck_assert_int_eq(m.sum, n * (n + 1) / 2);
  conc_chan_release(m.ch);
}

START_TEST(coro_million) { run_million(MILLION); }
END_TEST

/* ---- the mprotect fallback, forced, through the loop ---- */

static atomic_int log_warns;
static void count_log(conc_log_level level, const char *msg, void *ud) {
  (void)ud;
  if (level >= CONC_LOG_WARN && strstr(msg, "no guard page"))
    atomic_fetch_add(&log_warns, 1);
}

START_TEST(coro_many_mprotect) {
  conc__stack_set_default_guard(CONC__GUARD_MPROTECT);
  conc_set_log_handler(count_log, NULL);
  long before = maps_lines();
  million m = {.n = MANY_MPROT, .mode = CONC__GUARD_MPROTECT};
  ck_assert_int_eq(conc_chan_create(&m.ch, 0), 0);
  ck_assert_int_eq(conc_coro_run(million_driver, &m, NULL), 0);
  ck_assert_int_eq(m.bad, 0);
  ck_assert_int_eq(m.woken, MANY_MPROT);
  conc_chan_release(m.ch);
  conc_set_log_handler(NULL, NULL);
  printf("coro_many_mprotect: %ld coroutines, maps %ld lines before, %d "
         "warning(s) for unguarded stacks\n",
         (long)MANY_MPROT, before, atomic_load(&log_warns));
  /* the budget (half of vm.max_map_count) allows ~16k guarded stacks */
  ck_assert_int_eq(atomic_load(&log_warns), MANY_MPROT > 16383 ? 1 : 0);
  conc__stack_set_default_guard(CONC__GUARD_AUTO);
}
END_TEST

/* ---- stack overflow ---- */

static volatile long ov_limit = -1; /* never reached */

static long __attribute__((noinline)) overflow(long n) {
  volatile char buf[128];
  buf[0] = (char)n;
  if ((unsigned long)n == (unsigned long)ov_limit)
    return 0;
  return overflow(n + 1) + buf[0]; /* not a tail call */
}

static int overflowing(void *arg, void **result) {
  (void)arg;
  (void)result;
  ck_assert_int_eq(conc_coro_yield(), 0);
  return (int)overflow(0);
}

static void user_segv(int sig, siginfo_t *info, void *uc) {
  (void)sig;
  (void)info;
  (void)uc;
  static const char m[] = "user handler ran\n";
  ssize_t w = write(2, m, sizeof m - 1);
  (void)w;
  _exit(9);
}

/* Overflow a coroutine's 16 KiB stack in a child.  user: install a SIGSEGV
 * handler first.  Returns the wait status; *err gets the child's stderr
 * (malloc'd). */
static int overflow_child(bool user, conc__guard_mode mode, char **err) {
  int p[2];
  ck_assert_int_eq(pipe(p), 0);
  fflush(NULL);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    close(p[0]);
    dup2(p[1], 2);
    close(p[1]);
    conc__stack_set_default_guard(mode);
    if (user) {
      static char alt[64 * 1024];
      stack_t ss = {.ss_sp = alt, .ss_size = sizeof alt};
      sigaltstack(&ss, NULL);
      struct sigaction sa;
      memset(&sa, 0, sizeof sa);
      sa.sa_sigaction = user_segv;
      sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
      sigaction(SIGSEGV, &sa, NULL);
    }
    conc_loop_options o;
    conc_loop_options_init(&o);
    o.stack_size = 16 * 1024;
    conc_loop *l = NULL;
    if (conc_loop_create(&o, &l) != 0 ||
        conc_coro_spawn(l, overflowing, NULL, NULL, NULL) != 0)
      _exit(3);
    conc_loop_run(l);
    _exit(0); /* unnoticed */
  }
  close(p[1]);
  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap);
  ck_assert_ptr_nonnull(buf);
  for (;;) {
    if (len + 1 == cap) {
      cap *= 2;
      buf = realloc(buf, cap);
      ck_assert_ptr_nonnull(buf);
    }
    ssize_t r = read(p[0], buf + len, cap - 1 - len);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    len += (size_t)r;
  }
  buf[len] = 0;
  close(p[0]);
  int st = 0;
  ck_assert_int_eq(waitpid(pid, &st, 0), pid);
  *err = buf;
  return st;
}

static void check_reported(conc__guard_mode mode) {
  char *err = NULL;
  int st = overflow_child(false, mode, &err);
  char *msg = strstr(err, "conc: stack overflow in coroutine");
  char *eol = msg ? strchr(msg, '\n') : NULL;
  printf("overflow (%s): status %#x, message: %.*s\n",
         conc__guard_mode_name(mode), st,
         msg ? (int)(eol ? eol - msg : (long)strlen(msg)) : 4,
         msg ? msg : "none");
#ifdef SANITIZED
  /* ours, or the sanitizer's report when it owns SIGSEGV */
  ck_assert_msg(msg || strstr(err, "Sanitizer"), "no report: %s", err);
  ck_assert_msg(WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) != 0 &&
                                    WEXITSTATUS(st) != 3),
                "overflow not detected (status %#x)", st);
#else
  ck_assert_ptr_nonnull(msg);
  ck_assert_ptr_nonnull(strstr(msg, "16384-byte stack"));
  ck_assert_ptr_nonnull(strstr(msg, "increase conc_loop_options.stack_size"));
  ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV,
                "child status %#x", st);
#endif
  free(err);
}

START_TEST(coro_stack_overflow_reported) {
  if (conc__stack_probe_guard() == CONC__GUARD_INSTALL)
    check_reported(CONC__GUARD_INSTALL);
  check_reported(CONC__GUARD_MPROTECT);
}
END_TEST

START_TEST(coro_stack_overflow_chains) {
  char *err = NULL;
  int st = overflow_child(true, CONC__GUARD_AUTO, &err);
  printf("overflow with a user handler: status %#x\n%s", st, err);
#ifdef SANITIZED
  ck_assert_msg(strstr(err, "user handler ran") || strstr(err, "Sanitizer"),
                "no report: %s", err);
  ck_assert(!WIFEXITED(st) || WEXITSTATUS(st) != 0);
#else
  ck_assert_ptr_nonnull(strstr(err, "conc: stack overflow in coroutine"));
  ck_assert_ptr_nonnull(strstr(err, "user handler ran"));
  ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 9, "status %#x", st);
#endif
  free(err);
}
END_TEST

/* A fault that is not an overflow passes through unchanged, message-less. */
static int null_deref(void *arg, void **result) {
  (void)result;
  return *(volatile int *)arg;
}

START_TEST(coro_other_fault_passes) {
  int p[2];
  ck_assert_int_eq(pipe(p), 0);
  fflush(NULL);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    close(p[0]);
    dup2(p[1], 2);
    close(p[1]);
    conc_coro_run(null_deref, NULL, NULL);
    _exit(0);
  }
  close(p[1]);
  char buf[4096];
  size_t len = 0;
  ssize_t r;
  while ((r = read(p[0], buf + len, sizeof buf - 1 - len)) > 0 &&
         len + (size_t)r < sizeof buf - 1)
    len += (size_t)r;
  if (r > 0)
    len += (size_t)r;
  buf[len] = 0;
  close(p[0]);
  int st = 0;
  ck_assert_int_eq(waitpid(pid, &st, 0), pid);
  ck_assert_ptr_null(strstr(buf, "stack overflow in coroutine"));
#ifdef SANITIZED
  ck_assert(!WIFEXITED(st) || WEXITSTATUS(st) != 0);
#else
  ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "status %#x", st);
#endif
}
END_TEST

CONC_TEST_MAIN("coro-stack", coro_million, coro_many_mprotect,
               coro_stack_overflow_reported, coro_stack_overflow_chains,
               coro_other_fault_passes)
