/* base.c - clock, allocator, log hook, futexes, thread and process ids.
 *
 * DESIGN: the allocator and log hooks are plain globals read without locks:
 * conc_set_allocator is documented as "before any other call", and the log
 * handler pair is published with release/acquire so a reader never sees a
 * handler with another handler's user data.
 */
#include "internal.h"

#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* ---- clock ---- */

double conc_now(void) {
  struct timespec ts;
  CONC_MUST(clock_gettime(CLOCK_MONOTONIC, &ts) == 0);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static struct timespec to_timespec(double t) {
  struct timespec ts;
  if (t > 1e15)
    t = 1e15;
  ts.tv_sec = (time_t)t;
  ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  if (ts.tv_nsec < 0)
    ts.tv_nsec = 0;
  return ts;
}

int conc_sleep(double seconds) {
  if (!(seconds >= 0))
    return CONC_EINVAL;
  struct timespec ts = to_timespec(conc_now() + seconds);
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
    ;
  return 0;
}

/* ---- CPUs ---- */

static int cgroup_quota_cpus(void) {
  FILE *f = fopen("/sys/fs/cgroup/cpu.max", "r");
  if (!f)
    return 0;
  char quota[32] = {0};
  long period = 0;
  int n = fscanf(f, "%31s %ld", quota, &period);
  fclose(f);
  if (n != 2 || strcmp(quota, "max") == 0 || period <= 0)
    return 0;
  long q = strtol(quota, NULL, 10);
  if (q <= 0)
    return 0;
  return (int)((q + period - 1) / period);
}

int conc_cpu_count(void) {
  cpu_set_t set;
  int n = 0;
  if (sched_getaffinity(0, sizeof set, &set) == 0)
    n = CPU_COUNT(&set);
  if (n <= 0) {
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    n = c > 0 ? (int)c : 1;
  }
  int q = cgroup_quota_cpus();
  if (q > 0 && q < n)
    n = q;
  return n;
}

/* ---- allocator ---- */

static conc_malloc_fn a_malloc = malloc;
static conc_realloc_fn a_realloc = realloc;
static conc_calloc_fn a_calloc = calloc;
static conc_free_fn a_free = free;

int conc_set_allocator(conc_malloc_fn m, conc_realloc_fn r, conc_calloc_fn c,
                       conc_free_fn f) {
  if (!m && !r && !c && !f) {
    a_malloc = malloc;
    a_realloc = realloc;
    a_calloc = calloc;
    a_free = free;
    return 0;
  }
  if (!m || !r || !c || !f)
    return CONC_EINVAL;
  a_malloc = m;
  a_realloc = r;
  a_calloc = c;
  a_free = f;
  return 0;
}

bool conc__default_allocator(void);
bool conc__default_allocator(void) { return a_malloc == malloc && a_free == free; }

void *conc__malloc(size_t n) { return a_malloc(n ? n : 1); }
void *conc__calloc(size_t count, size_t n) {
  return a_calloc(count ? count : 1, n ? n : 1);
}
void *conc__realloc(void *p, size_t n) { return a_realloc(p, n ? n : 1); }
void conc__free(void *p) {
  if (p)
    a_free(p);
}

void *conc__aligned_alloc(size_t size, size_t align) {
  CONC_ASSERT(align >= sizeof(void *) && (align & (align - 1)) == 0);
  if (size > SIZE_MAX - align - sizeof(void *))
    return NULL;
  char *raw = conc__malloc(size + align + sizeof(void *));
  if (!raw)
    return NULL;
  uintptr_t p = ((uintptr_t)raw + sizeof(void *) + align - 1) & ~(align - 1);
  ((void **)p)[-1] = raw;
  return (void *)p;
}

void conc__aligned_free(void *p) {
  if (p)
    conc__free(((void **)p)[-1]);
}

char *conc__strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = conc__malloc(n);
  if (d)
    memcpy(d, s, n);
  return d;
}

char *conc__vasprintf(const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0)
    return NULL;
  char *s = conc__malloc((size_t)n + 1);
  if (s)
    vsnprintf(s, (size_t)n + 1, fmt, ap);
  return s;
}

char *conc__asprintf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = conc__vasprintf(fmt, ap);
  va_end(ap);
  return s;
}

_Noreturn void conc__panic(const char *file, int line, const char *what) {
  fprintf(stderr, "conc: fatal: %s:%d: %s\n", file, line, what);
  abort();
}

/* ---- log ---- */

struct log_hook {
  conc_log_fn fn;
  void *ud;
};
static struct log_hook log_default = {NULL, NULL};
static struct log_hook log_slots[2];
static _Atomic(struct log_hook *) log_cur = &log_default;
static pthread_mutex_t log_set_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned log_slot;

void conc_set_log_handler(conc_log_fn fn, void *ud) {
  pthread_mutex_lock(&log_set_mu);
  if (!fn) {
    atomic_store_explicit(&log_cur, &log_default, memory_order_release);
  } else {
    /* Alternate slots so a concurrent reader of the old one sees a
     * consistent pair (readers copy the pair right after loading). */
    struct log_hook *h = &log_slots[log_slot++ & 1];
    h->fn = fn;
    h->ud = ud;
    atomic_store_explicit(&log_cur, h, memory_order_release);
  }
  pthread_mutex_unlock(&log_set_mu);
}

static const char *level_name(conc_log_level l) {
  switch (l) {
  case CONC_LOG_DEBUG:
    return "debug";
  case CONC_LOG_INFO:
    return "info";
  case CONC_LOG_WARN:
    return "warning";
  default:
    return "error";
  }
}

void conc__vlog(conc_log_level level, const char *fmt, va_list ap) {
  char buf[512];
  vsnprintf(buf, sizeof buf, fmt, ap);
  /* pairs with the release store in conc_set_log_handler */
  struct log_hook *h = atomic_load_explicit(&log_cur, memory_order_acquire);
  conc_log_fn fn = h->fn;
  void *ud = h->ud;
  if (fn) {
    fn(level, buf, ud);
  } else if (level >= CONC_LOG_WARN) {
    fprintf(stderr, "conc: %s: %s\n", level_name(level), buf);
  }
}

void conc_log(conc_log_level level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  conc__vlog(level, fmt, ap);
  va_end(ap);
}

/* ---- futex ---- */

int conc__futex_wait(_Atomic uint32_t *w, uint32_t val, double deadline,
                     bool shared) {
  struct timespec ts, *tsp = NULL;
  if (deadline != INFINITY) {
    if (deadline <= conc_now())
      return CONC_ETIMEDOUT;
    ts = to_timespec(deadline);
    tsp = &ts;
  }
  int op = FUTEX_WAIT_BITSET | (shared ? 0 : FUTEX_PRIVATE_FLAG);
  long r = syscall(SYS_futex, (uint32_t *)w, op, val, tsp, NULL,
                   FUTEX_BITSET_MATCH_ANY);
  if (r == 0)
    return 0;
  switch (errno) {
  case EAGAIN:
    return CONC_EAGAIN;
  case ETIMEDOUT:
    return CONC_ETIMEDOUT;
  case EINTR:
    return 0;
  default:
    CONC_MUST(!"futex wait failed");
  }
  return 0;
}

void conc__futex_wake(_Atomic uint32_t *w, int n, bool shared) {
  int op = FUTEX_WAKE | (shared ? 0 : FUTEX_PRIVATE_FLAG);
  syscall(SYS_futex, (uint32_t *)w, op, n, NULL, NULL, 0);
}

/* ---- ids ---- */

static _Thread_local int tl_tid;
static pid_t cur_pid;
static pthread_once_t pid_once = PTHREAD_ONCE_INIT;

static void after_fork_child(void) {
  cur_pid = getpid();
  tl_tid = 0;
}

static void pid_init(void) {
  cur_pid = getpid();
  pthread_atfork(NULL, NULL, after_fork_child);
}

/* Install the fork handler before anything can fork, so the tid cache is
 * reset in every child. */
__attribute__((constructor)) static void ids_init(void) {
  pthread_once(&pid_once, pid_init);
}

int conc__gettid(void) {
  if (CONC_UNLIKELY(tl_tid == 0))
    tl_tid = (int)syscall(SYS_gettid);
  return tl_tid;
}

pid_t conc__getpid(void) {
  pthread_once(&pid_once, pid_init);
  return cur_pid;
}

void conc__block_signals(void) {
  sigset_t set;
  sigfillset(&set);
  /* Synchronous signals stay deliverable to the faulting thread. */
  sigdelset(&set, SIGSEGV);
  sigdelset(&set, SIGBUS);
  sigdelset(&set, SIGFPE);
  sigdelset(&set, SIGILL);
  sigdelset(&set, SIGTRAP);
  sigdelset(&set, SIGABRT);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
}
