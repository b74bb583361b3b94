/* bench/physical.c - physical-limit rows: what the machine itself costs,
 * with no pool in between.  Every row checks its own result.
 *
 *   physical futex N    round trip between two threads that park on a futex
 *                       every time (p50 ns; p99 extra)
 *   physical spin N     the same with both threads spinning (p50 ns)
 *   physical atomic1 N  one thread, atomic fetch_add (ns/op)
 *   physical atomic2 N  two threads, fetch_add on one shared word (ns/op)
 *   physical malloc N   malloc(64) + free on one thread (ns/pair)
 *   physical fib N      serial fib(N) (ms)
 *   physical imbal N    the imbalanced workload's spins run serially on one
 *                       thread: the efficiency ceiling of the spin itself
 *   physical handoff N fresh|warm
 *                       the floor of the per-task-handle class with no pool:
 *                       N 64-byte records (malloc'd: fresh; or one
 *                       pre-touched, 64-byte aligned array: warm) written by
 *                       one thread, passed through a single-producer ring
 *                       to a second thread that completes each, then all
 *                       read back in order by the first (ns/task)
 */
#include "common.h"

#include <stdatomic.h>

static int word;       /* ping-pong futex word: 1 = ping, 2 = pong */
static long iters;
static long pongs;
static int use_futex;

static void *ponger(void *arg) {
  (void)arg;
  for (long i = 0; i < iters; i++) {
    if (use_futex) {
      while (__atomic_load_n(&word, __ATOMIC_ACQUIRE) != 1) bench_futex_wait(&word, 2);
    } else {
      while (__atomic_load_n(&word, __ATOMIC_ACQUIRE) != 1) bench_pause();
    }
    pongs++;
    __atomic_store_n(&word, 2, __ATOMIC_RELEASE);
    if (use_futex) bench_futex_wake(&word, 1);
  }
  return NULL;
}

static int run_pingpong(long n, int futex) {
  pthread_t t;
  int64_t *lat = malloc((size_t)n * sizeof *lat);
  BENCH_CHECK(lat, "out of memory");
  iters = n;
  use_futex = futex;
  word = 2;
  BENCH_CHECK(pthread_create(&t, NULL, ponger, NULL) == 0, "pthread_create");
  bench_sleep_ns(1000000);
  for (long i = 0; i < n; i++) {
    int64_t t0 = bench_now_ns();
    __atomic_store_n(&word, 1, __ATOMIC_RELEASE);
    if (futex) {
      bench_futex_wake(&word, 1);
      while (__atomic_load_n(&word, __ATOMIC_ACQUIRE) != 2) bench_futex_wait(&word, 1);
    } else {
      while (__atomic_load_n(&word, __ATOMIC_ACQUIRE) != 2) bench_pause();
    }
    lat[i] = bench_now_ns() - t0;
  }
  pthread_join(t, NULL);
  BENCH_CHECK(pongs == n, "%ld pongs for %ld pings", pongs, n);
  int64_t p50 = bench_quantile(lat, (size_t)n, 0.5), p99 = bench_quantile(lat, (size_t)n, 0.99);
  char extra[64];
  snprintf(extra, sizeof extra, "p99=%lld", (long long)p99);
  bench_result((double)p50, "ns", extra);
  free(lat);
  return 0;
}

static long shared_word;

static void *adder(void *arg) {
  long n = (long)(intptr_t)arg;
  for (long i = 0; i < n; i++) __atomic_fetch_add(&shared_word, 1, __ATOMIC_SEQ_CST);
  return NULL;
}

static int run_atomic(long n, int threads) {
  pthread_t t[2];
  int64_t t0 = bench_now_ns();
  for (int k = 0; k < threads; k++)
    BENCH_CHECK(pthread_create(&t[k], NULL, adder, (void *)(intptr_t)(n / threads)) == 0, "pthread_create");
  for (int k = 0; k < threads; k++) pthread_join(t[k], NULL);
  int64_t t1 = bench_now_ns();
  BENCH_CHECK(shared_word == n / threads * threads, "counter %ld", shared_word);
  bench_result((double)(t1 - t0) / (double)(n / threads * threads), "ns/op", NULL);
  return 0;
}

static int run_malloc(long n) {
  uint64_t sum = 0;
  int64_t t0 = bench_now_ns();
  for (long i = 0; i < n; i++) {
    unsigned char *volatile p = malloc(64);
    BENCH_CHECK(p, "malloc failed");
    p[0] = (unsigned char)i;
    sum += p[0];
    free(p);
  }
  int64_t t1 = bench_now_ns();
  uint64_t want = 0;
  for (long i = 0; i < n; i++) want += (unsigned char)i;
  BENCH_CHECK(sum == want, "checksum");
  bench_result((double)(t1 - t0) / (double)n, "ns/pair", NULL);
  return 0;
}

static uint64_t fib_serial(long n) { return n < 2 ? (uint64_t)n : fib_serial(n - 1) + fib_serial(n - 2); }

static int run_fib(long n) {
  uint64_t a = 0, b = 1;
  for (long i = 0; i < n; i++) {
    uint64_t c = a + b;
    a = b;
    b = c;
  }
  int64_t t0 = bench_now_ns();
  uint64_t r = fib_serial(n);
  int64_t t1 = bench_now_ns();
  BENCH_CHECK(r == a, "fib(%ld) = %llu, expected %llu", n, (unsigned long long)r, (unsigned long long)a);
  bench_result((double)(t1 - t0) / 1e6, "ms", NULL);
  return 0;
}

static int run_imbal(long n) {
  int64_t total;
  int64_t *dur = bench_exp_durations((size_t)n, 1000.0, &total);
  int64_t t0 = bench_now_ns();
  for (long i = 0; i < n; i++) {
    bench_spin_ns(dur[i]);
    bench_account((uint64_t)i + 1);
  }
  int64_t wall = bench_now_ns() - t0;
  bench_check_slots((uint64_t)n);
  char extra[64];
  snprintf(extra, sizeof extra, "wall_ms=%.2f", (double)wall / 1e6);
  bench_result((double)total / (double)wall, "efficiency", extra);
  free(dur);
  return 0;
}

typedef struct rec {
  uint64_t in, out;
  int done;
  char pad[64 - 2 * sizeof(uint64_t) - sizeof(int)];
} rec;

#define HRING 4096
static rec *_Atomic hring[HRING];
/* producer / consumer positions, each on its own line; each side reads the
 * other's only when its cached copy says it must wait */
static _Alignas(64) _Atomic long hhead;
static _Alignas(64) _Atomic long htail;
static _Alignas(64) long hn;

/* Spin, and past a while let the other thread have the CPU (as a pool's
 * workers do): on a busy machine two pure spinners wait for each other's
 * time slices. */
static inline void handoff_wait(int k) {
  if (k < 1024)
    bench_pause();
  else
    sched_yield();
}

static void *handoff_consumer(void *arg) {
  (void)arg;
  long head = 0;
  for (long i = 0; i < hn; i++) {
    for (int k = 0; head == i; k++) {
      head = atomic_load_explicit(&hhead, memory_order_acquire);
      if (head == i) handoff_wait(k);
    }
    rec *r = atomic_load_explicit(&hring[i % HRING], memory_order_relaxed);
    if ((i & 63) == 63 || i + 1 == hn)
      atomic_store_explicit(&htail, i + 1, memory_order_release);
    r->out = r->in * 3;
    __atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
  }
  return NULL;
}

static int run_handoff(long n, int fresh) {
  rec **rs = malloc((size_t)n * sizeof *rs);
  rec *arr = NULL;
  BENCH_CHECK(rs, "out of memory");
  if (!fresh) {
    BENCH_CHECK(posix_memalign((void **)&arr, 64, (size_t)n * sizeof *arr) == 0, "oom");
    memset(arr, 0, (size_t)n * sizeof *arr); /* touched: no page faults */
  }
  hn = n;
  pthread_t t;
  BENCH_CHECK(pthread_create(&t, NULL, handoff_consumer, NULL) == 0, "thread");
  int64_t t0 = bench_now_ns();
  long tail = 0;
  for (long i = 0; i < n; i++) {
    rec *r = fresh ? malloc(sizeof *r) : &arr[i];
    BENCH_CHECK(r, "out of memory");
    r->in = (uint64_t)i + 1;
    r->done = 0;
    rs[i] = r;
    for (int k = 0; i - tail >= HRING; k++) {
      tail = atomic_load_explicit(&htail, memory_order_acquire);
      if (i - tail >= HRING) handoff_wait(k);
    }
    atomic_store_explicit(&hring[i % HRING], r, memory_order_relaxed);
    atomic_store_explicit(&hhead, i + 1, memory_order_release);
  }
  for (long i = 0; i < n; i++) {
    rec *r = rs[i];
    for (int k = 0; !__atomic_load_n(&r->done, __ATOMIC_ACQUIRE); k++) handoff_wait(k);
    BENCH_CHECK(r->out == ((uint64_t)i + 1) * 3, "record %ld", i);
    if (fresh) free(r);
  }
  int64_t t1 = bench_now_ns();
  pthread_join(t, NULL);
  free(rs);
  free(arr);
  bench_result((double)(t1 - t0) / (double)n, "ns/task", NULL);
  return 0;
}

int main(int argc, char **argv) {
  const char *w = argc > 1 ? argv[1] : "";
  long n = bench_arg_long(argc, argv, 2, 1000000);
  BENCH_CHECK(n > 0, "bad N");
  if (!strcmp(w, "futex")) return run_pingpong(n, 1);
  if (!strcmp(w, "spin")) return run_pingpong(n, 0);
  if (!strcmp(w, "atomic1")) return run_atomic(n, 1);
  if (!strcmp(w, "atomic2")) return run_atomic(n, 2);
  if (!strcmp(w, "malloc")) return run_malloc(n);
  if (!strcmp(w, "fib")) return run_fib(n);
  if (!strcmp(w, "imbal")) return run_imbal(n);
  if (!strcmp(w, "handoff")) return run_handoff(n, argc > 3 && !strcmp(argv[3], "fresh"));
  fprintf(stderr, "usage: physical futex|spin|atomic1|atomic2|malloc|fib|imbal|handoff N\n");
  return 64;
}
