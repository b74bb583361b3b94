/* internal.h - helpers shared by conc's sources.  Never installed.
 *
 * Names here are conc__*; they are not exported (the library is built with
 * -fvisibility=hidden and only CONC_EXTERN symbols are visible).
 */
#ifndef CONC_INTERNAL_H
#define CONC_INTERNAL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "conc/base.h"
#include "conc/error.h"

#define CONC_LIKELY(x) __builtin_expect(!!(x), 1)
#define CONC_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define CONC_CACHELINE 64
#define CONC_ALIGNED_CL _Alignas(CONC_CACHELINE)

/* Debug-build checks for misuse that cannot be checked cheaply.  Tests and CI
 * build with assertions on. */
#define CONC_ASSERT(x) assert(x)

/* Abort with a message: only for failures that mean corrupted memory (a
 * syscall that cannot fail given valid arguments).  Never for anything a
 * caller can cause. */
#define CONC_MUST(x)                                                          \
  do {                                                                        \
    if (CONC_UNLIKELY(!(x)))                                                  \
      conc__panic(__FILE__, __LINE__, #x);                                    \
  } while (0)
_Noreturn void conc__panic(const char *file, int line, const char *what);

/* Allocation: every allocation goes through the replaceable allocator. */
void *conc__malloc(size_t n);
void *conc__calloc(size_t count, size_t n);
void *conc__realloc(void *p, size_t n);
void conc__free(void *p);
char *conc__strdup(const char *s);
/* Memory aligned to align (a power of two), for cache-line-aligned types;
 * freed with conc__aligned_free. */
void *conc__aligned_alloc(size_t size, size_t align);
void conc__aligned_free(void *p);
/* Record cache for futures (fcache.c). */
void *conc__fcache_alloc(size_t n);
void conc__fcache_free(void *p);
void conc__fcache_drain(void);
void conc__fcache_stats(size_t *slabs, size_t *returned, size_t *batches);
char *conc__vasprintf(const char *fmt, va_list ap);
char *conc__asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Logging through the user's hook. */
void conc__vlog(conc_log_level level, const char *fmt, va_list ap);
#define conc__log conc_log

/* Time.  A deadline of INFINITY means none. */
static inline double conc__deadline(double timeout) {
  if (timeout < 0 || isnan(timeout))
    return INFINITY;
  return conc_now() + timeout;
}

/* Futexes.  wait returns 0 when woken (or spuriously, or on EINTR),
 * CONC_EAGAIN when *w != val, CONC_ETIMEDOUT at the deadline. */
int conc__futex_wait(_Atomic uint32_t *w, uint32_t val, double deadline,
                     bool shared);
void conc__futex_wake(_Atomic uint32_t *w, int n, bool shared);

/* The caller's kernel thread id (cached per thread). */
int conc__gettid(void);
/* The current process id, kept right across fork(). */
pid_t conc__getpid(void);

/* Block asynchronous signals on the calling thread (library threads). */
void conc__block_signals(void);

/* CPU relax for spin loops. */
static inline void conc__pause(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

/* Thread-sanitizer detection. */
#if defined(__SANITIZE_THREAD__)
#define CONC_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CONC_TSAN 1
#endif
#endif

#endif
