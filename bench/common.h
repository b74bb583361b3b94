/* bench/common.h - what every C/C++ benchmark program shares.
 *
 * DESIGN
 * - Header-only (static inline), usable from C11 and C++ (the TBB anchor):
 *   atomics are GCC __atomic builtins, not <stdatomic.h>.
 * - Output: each program runs ONE row and prints one line
 *     RESULT value=<number> unit=<unit> [key=value ...]
 *   that bench/driver.py parses.  A failed self-check prints
 *   "CHECK FAILED: ..." to stderr and exits with status 2, so a broken pool
 *   can never post a number.
 * - Accounting (bench_account): every task calls it with its input i.  It
 *   adds to a per-thread slot (count, sum of i, sum of i^2) with no shared
 *   write, so the check costs the same for every implementation and creates
 *   no false sharing.  After the run, bench_check_slots() verifies that the
 *   slots add up to exactly the expected count and sums (a task run twice
 *   and another skipped breaks the sum of squares), and reports the share
 *   of tasks that ran on a thread marked as a submitter.
 * - Waiting for fire-and-forget tasks (bench_counter): each task decrements
 *   an atomic counter; the waiter spins briefly, then sleeps on a futex that
 *   the last task wakes (Dekker pair: done/sleeping, both seq_cst).
 */
#ifndef CONC_BENCH_COMMON_H
#define CONC_BENCH_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <linux/futex.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define BENCH_LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define BENCH_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

static inline void bench_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

/* ---- failure ---- */

#define BENCH_FAIL(...)                                                       \
  do {                                                                        \
    fprintf(stderr, "CHECK FAILED: ");                                        \
    fprintf(stderr, __VA_ARGS__);                                             \
    fprintf(stderr, "\n");                                                    \
    exit(2);                                                                  \
  } while (0)

#define BENCH_CHECK(cond, ...)                                                \
  do {                                                                        \
    if (!(cond)) BENCH_FAIL(__VA_ARGS__);                                     \
  } while (0)

/* ---- time, CPU, memory ---- */

static inline int64_t bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* CPU seconds (user + system) of the whole process. */
static inline double bench_cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

/* A field of /proc/self/status in kB (VmRSS, VmHWM), or -1. */
static inline long bench_status_kb(const char *field) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  size_t n = strlen(field);
  long kb = -1;
  if (!f) return -1;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, field, n) == 0 && line[n] == ':') {
      kb = strtol(line + n + 1, NULL, 10);
      break;
    }
  fclose(f);
  return kb;
}

static inline void bench_sleep_ns(int64_t ns) {
  struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static inline pid_t bench_gettid(void) { return (pid_t)syscall(SYS_gettid); }

/* Spin (no syscall, no sleep) for ns nanoseconds of wall time. */
static inline void bench_spin_ns(int64_t ns) {
  int64_t end = bench_now_ns() + ns;
  while (bench_now_ns() < end) {
  }
}

/* ---- futex ---- */

static inline void bench_futex_wait(int *addr, int expected) {
  syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}
static inline void bench_futex_wake(int *addr, int n) {
  syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

/* ---- counter: wait for fire-and-forget tasks ---- */

typedef struct bench_counter {
  long left;    /* tasks not yet done */
  int done;     /* futex word: 1 once left reached 0 */
  int sleeping; /* the waiter is (about to be) in futex_wait */
} bench_counter;

static inline void bench_counter_init(bench_counter *c, long n) {
  c->left = n;
  c->done = n == 0;
  c->sleeping = 0;
}

/* Called by each task once its work is done. */
static inline void bench_counter_dec(bench_counter *c) {
  if (__atomic_sub_fetch(&c->left, 1, __ATOMIC_ACQ_REL) == 0) {
    __atomic_store_n(&c->done, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&c->sleeping, __ATOMIC_SEQ_CST))
      bench_futex_wake(&c->done, 1);
  }
}

/* Spin about 20 µs, then sleep until the last task wakes us. */
static inline void bench_counter_wait(bench_counter *c) {
  int64_t until = bench_now_ns() + 20000;
  while (!__atomic_load_n(&c->done, __ATOMIC_ACQUIRE)) {
    bench_pause();
    if (bench_now_ns() > until) break;
  }
  __atomic_store_n(&c->sleeping, 1, __ATOMIC_SEQ_CST);
  while (!__atomic_load_n(&c->done, __ATOMIC_SEQ_CST))
    bench_futex_wait(&c->done, 0);
  /* pairs with the acq_rel decrements: every task's writes are visible */
  (void)__atomic_load_n(&c->left, __ATOMIC_ACQUIRE);
}

/* ---- gate: block workers until opened (an event on a futex) ---- */

typedef struct bench_gate {
  int open;    /* futex word */
  int arrived; /* tasks that reached the gate */
} bench_gate;

static inline void bench_gate_pass(bench_gate *g) {
  __atomic_add_fetch(&g->arrived, 1, __ATOMIC_ACQ_REL);
  while (!__atomic_load_n(&g->open, __ATOMIC_ACQUIRE))
    bench_futex_wait(&g->open, 0);
}
/* Wait (at most 5 s, else the check fails) until n tasks reached the gate. */
static inline void bench_gate_wait_arrived(bench_gate *g, int n) {
  int64_t until = bench_now_ns() + 5000000000LL;
  while (__atomic_load_n(&g->arrived, __ATOMIC_ACQUIRE) < n) {
    if (bench_now_ns() > until) {
      fprintf(stderr, "CHECK FAILED: only %d of %d tasks reached the gate in 5 s\n",
              __atomic_load_n(&g->arrived, __ATOMIC_ACQUIRE), n);
      exit(2);
    }
    bench_sleep_ns(20000);
  }
}
static inline void bench_gate_open(bench_gate *g) {
  __atomic_store_n(&g->open, 1, __ATOMIC_RELEASE);
  bench_futex_wake(&g->open, 1 << 30);
}

/* ---- per-thread accounting of task runs ---- */

#define BENCH_MAX_SLOTS 512

typedef struct bench_slot {
  uint64_t count, sum, sumsq;
  int submitter;
  int used;
  char pad[64 - 3 * sizeof(uint64_t) - 2 * sizeof(int)];
} __attribute__((aligned(64))) bench_slot;

static bench_slot bench_slots[BENCH_MAX_SLOTS];
static int bench_nslots;
static __thread bench_slot *bench_tls_slot;

static inline bench_slot *bench_slot_get(void) {
  bench_slot *s = bench_tls_slot;
  if (__builtin_expect(s == NULL, 0)) {
    int i = __atomic_fetch_add(&bench_nslots, 1, __ATOMIC_RELAXED);
    if (i >= BENCH_MAX_SLOTS) BENCH_FAIL("more than %d threads", i);
    s = &bench_slots[i];
    s->used = 1;
    bench_tls_slot = s;
  }
  return s;
}

/* Mark the calling thread as a submitter (for the share column). */
static inline void bench_mark_submitter(void) { bench_slot_get()->submitter = 1; }

/* Record that the task with input i ran on this thread. */
static inline void bench_account(uint64_t i) {
  bench_slot *s = bench_slot_get();
  s->count++;
  s->sum += i;
  s->sumsq += i * i;
}

/* Forget the counts (between warm-up and measurement, while no task runs). */
static inline void bench_slots_reset(void) {
  int n = __atomic_load_n(&bench_nslots, __ATOMIC_ACQUIRE);
  for (int i = 0; i < n && i < BENCH_MAX_SLOTS; i++)
    bench_slots[i].count = bench_slots[i].sum = bench_slots[i].sumsq = 0;
}

/* Tasks counted so far (a snapshot; exact once the tasks are done). */
static inline uint64_t bench_slots_total(void) {
  uint64_t t = 0;
  int n = __atomic_load_n(&bench_nslots, __ATOMIC_ACQUIRE);
  for (int i = 0; i < n && i < BENCH_MAX_SLOTS; i++)
    t += __atomic_load_n(&bench_slots[i].count, __ATOMIC_RELAXED);
  return t;
}

/* Expected sums for inputs 1..n. */
static inline void bench_expect(uint64_t n, uint64_t *sum, uint64_t *sumsq) {
  *sum = n * (n + 1) / 2;
  /* n(n+1)(2n+1)/6 modulo 2^64, computed without overflow of the division */
  uint64_t a = n, b = n + 1, c = 2 * n + 1;
  if (a % 2 == 0) a /= 2; else b /= 2;
  if (a % 3 == 0) a /= 3; else if (b % 3 == 0) b /= 3; else c /= 3;
  *sumsq = a * b * c;
}

/* Check that inputs 1..n each ran exactly once (by count and sums); return
 * the share of them that ran on submitter threads. */
static inline double bench_check_slots(uint64_t n) {
  uint64_t cnt = 0, sum = 0, sumsq = 0, on_sub = 0, esum, esumsq;
  int ns = __atomic_load_n(&bench_nslots, __ATOMIC_ACQUIRE);
  for (int i = 0; i < ns && i < BENCH_MAX_SLOTS; i++) {
    cnt += bench_slots[i].count;
    sum += bench_slots[i].sum;
    sumsq += bench_slots[i].sumsq;
    if (bench_slots[i].submitter) on_sub += bench_slots[i].count;
  }
  bench_expect(n, &esum, &esumsq);
  BENCH_CHECK(cnt == n, "%llu tasks ran, expected %llu",
              (unsigned long long)cnt, (unsigned long long)n);
  BENCH_CHECK(sum == esum && sumsq == esumsq,
              "checksum mismatch: some task ran twice and another never");
  return n ? (double)on_sub / (double)n : 0.0;
}

/* ---- statistics ---- */

static inline int bench_cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}
/* q-quantile (0..1) of v[0..n-1]; sorts v. */
static inline int64_t bench_quantile(int64_t *v, size_t n, double q) {
  qsort(v, n, sizeof *v, bench_cmp_i64);
  size_t k = (size_t)(q * (double)(n - 1) + 0.5);
  return v[k < n ? k : n - 1];
}

/* ---- random durations for the imbalanced workload ---- */

/* xorshift64*: the same sequence in the C, C++ and Go programs. */
static inline uint64_t bench_rand(uint64_t *s) {
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 0x2545F4914F6CDD1DULL;
}

/* n exponentially distributed durations in ns with the given mean; returns
 * the array (malloc'd) and their sum in *total. */
static inline int64_t *bench_exp_durations(size_t n, double mean_ns,
                                           int64_t *total) {
  int64_t *d = (int64_t *)malloc(n * sizeof *d);
  uint64_t s = 0x9E3779B97F4A7C15ULL;
  int64_t t = 0;
  BENCH_CHECK(d != NULL, "out of memory");
  for (size_t i = 0; i < n; i++) {
    double u = (double)(bench_rand(&s) >> 11) * (1.0 / 9007199254740992.0);
    d[i] = (int64_t)(-log(1.0 - u) * mean_ns);
    t += d[i];
  }
  *total = t;
  return d;
}

/* ---- arguments and output ---- */

static inline long bench_arg_long(int argc, char **argv, int i, long dflt) {
  return argc > i ? strtol(argv[i], NULL, 10) : dflt;
}

/* Pool size of the workload 1 rows: BENCH_WORKERS (the driver sets 1 for
 * the one-worker rows), 2 by default. */
static inline int bench_workers(void) {
  const char *e = getenv("BENCH_WORKERS");
  int w = e ? atoi(e) : 2;
  return w >= 1 && w <= 64 ? w : 2;
}

/* Print the RESULT line: value, unit, then preformatted extra fields. */
static inline void bench_result(double value, const char *unit,
                                const char *extra) {
  printf("RESULT value=%.6g unit=%s%s%s\n", value, unit, extra ? " " : "",
         extra ? extra : "");
  fflush(stdout);
}

#endif
