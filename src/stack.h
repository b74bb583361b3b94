/* stack.h - pooled, guarded coroutine stacks (internal; never installed).
 *
 * A pool hands out stacks of one size.  Stacks are carved from large
 * mappings (many slots per mmap, MAP_NORESERVE, so memory is committed only
 * when touched) and each slot's lowest page is a guard page, installed by
 * the process-wide guard mode (see stack.c's DESIGN comment and
 * docs: ../shared/DECISIONS.md, Coroutines).  Freed stacks are kept for
 * reuse (LIFO, still committed) until conc__stack_pool_trim or destroy.
 *
 * Thread-safety: a pool belongs to one thread (a loop); the guard-mode
 * probe and the mprotect map budget are process-wide and thread-safe.
 */
#ifndef CONC_STACK_H
#define CONC_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define CONC_HAVE_VALGRIND 1
#endif
#endif

#if defined(__SANITIZE_ADDRESS__)
#define STACK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define STACK_ASAN 1
#endif
#endif
#ifdef STACK_ASAN
void __asan_unpoison_memory_region(void const volatile *addr, size_t size);
#endif


typedef enum conc__guard_mode {
  CONC__GUARD_AUTO = 0,     /* probe: install if it works, else mprotect */
  CONC__GUARD_INSTALL = 1,  /* madvise(MADV_GUARD_INSTALL): no extra VMAs */
  CONC__GUARD_MPROTECT = 2, /* mprotect(PROT_NONE): two VMAs per stack */
  CONC__GUARD_NONE = 3      /* no guard pages at all */
} conc__guard_mode;

typedef struct conc__stack_options {
  size_t size;              /* sizeof(conc__stack_options); set by _init */
  size_t stack_size;        /* usable bytes, rounded up to pages; 128 KiB */
  size_t slots_per_map;     /* stacks per mapping; 256 */
  conc__guard_mode guard;   /* AUTO */
  /* mprotect mode: share of vm.max_map_count that guards may use, counted
   * process-wide (0.5).  Beyond it stacks are unguarded and the log says so
   * once, or allocation fails with CONC_ENOMEM if fail_unguarded. */
  double map_share;
  bool fail_unguarded;
} conc__stack_options;

typedef struct conc__stack {
  void *lo;                 /* lowest usable byte (just above the guard) */
  size_t size;              /* usable bytes */
  bool guarded;
  unsigned valgrind_id;     /* valgrind stack registration (0 without) */
} conc__stack;

typedef struct conc__stack_pool conc__stack_pool;

/* The pool (stack.c owns it; here so that the per-coroutine operations
 * below inline into the scheduler). */
typedef struct slab {
  char *base;
  size_t len;
} slab;

struct conc__stack_pool {
  size_t page;
  size_t stack_size;   /* usable, page multiple */
  size_t slot_size;    /* page + stack_size */
  size_t per_map;
  conc__guard_mode mode;
  double map_share;
  bool fail_unguarded;
  slab *slabs;
  size_t nslabs, slabs_cap;
  size_t next_unused;  /* next never-used slot in the last slab */
  uintptr_t *free;     /* slot base | guarded bit */
  size_t nfree, free_cap;
  size_t reserved;     /* free stacks promised by conc__stack_reserve */
  bool valgrind;       /* running on valgrind: register the stacks */
  size_t live;
  size_t mprot_entries; /* map entries this pool's mprotect guards added */
};


void conc__stack_options_init(conc__stack_options *o);

/* Create a pool (no memory is mapped until the first allocation).  opts may
 * be NULL for the defaults.  Returns 0, CONC_EINVAL (bad size field, stack
 * size 0 or over 1 GiB, share outside (0, 1], unknown mode), CONC_ENOTSUP
 * (INSTALL forced where the kernel does not guard) or CONC_ENOMEM. */
int conc__stack_pool_create(const conc__stack_options *opts,
                            conc__stack_pool **out);

/* Unmap everything.  Every stack must have been freed (asserted). */
void conc__stack_pool_destroy(conc__stack_pool *p);

/* A stack.  Returns 0, or CONC_ENOMEM (mmap failed, allocation failed, or
 * no guard could be placed under fail_unguarded); *s is untouched then. */
int conc__stack_alloc(conc__stack_pool *p, conc__stack *s);

/* Give s back to its pool.  Never fails. */
static inline void conc__stack_free(conc__stack_pool *p, conc__stack *s) {
  CONC_ASSERT(p && s && s->lo && p->live > 0 && p->nfree < p->free_cap);
#ifdef CONC_HAVE_VALGRIND
  if (p->valgrind)
    VALGRIND_STACK_DEREGISTER(s->valgrind_id);
#endif
#ifdef STACK_ASAN
  __asan_unpoison_memory_region(s->lo, s->size);
#endif
  uintptr_t slot = (uintptr_t)s->lo - p->page;
  p->free[p->nfree++] = slot | (s->guarded ? 1u : 0u);
  p->live--;
  s->lo = NULL;
}

/* Promise a stack for a later conc__stack_take, cheaply: if the pool has
 * a free stack not yet promised, count it (s->lo = NULL: take it later);
 * else allocate one into s as conc__stack_alloc.  Returns 0 or
 * CONC_ENOMEM (nothing promised then).  A promise must be taken before
 * the pool is destroyed. */
static inline int conc__stack_reserve(conc__stack_pool *p, conc__stack *s) {
  if (p->nfree > p->reserved) {
    p->reserved++;
    s->lo = NULL;
    return 0;
  }
  return conc__stack_alloc(p, s);
}

/* Take a promised stack (s->lo was set NULL by conc__stack_reserve): the
 * free stack freed last.  Never fails. */
static inline void conc__stack_take(conc__stack_pool *p, conc__stack *s) {
  CONC_ASSERT(p->reserved > 0 && p->nfree >= p->reserved);
  p->reserved--;
  uintptr_t e = p->free[--p->nfree];
  s->lo = (char *)(e & ~(uintptr_t)1) + p->page;
  s->size = p->stack_size;
  s->guarded = e & 1;
  s->valgrind_id = 0;
#ifdef CONC_HAVE_VALGRIND
  if (p->valgrind)
    s->valgrind_id = VALGRIND_STACK_REGISTER(s->lo, (char *)s->lo + s->size);
#endif
  p->live++;
}

/* Exchange the allocated stack s with the free stack freed last, if any
 * (the one most likely in cache and TLB): s then refers to that one and
 * the other goes back to the pool.  s must not be in use (no frame on it).
 * Never fails. */
void conc__stack_swap_hot(conc__stack_pool *p, conc__stack *s);

/* Release the memory of every free stack to the kernel (MADV_DONTNEED; the
 * guards stay). */
void conc__stack_pool_trim(conc__stack_pool *p);

/* The guard mode this pool uses (never AUTO). */
conc__guard_mode conc__stack_pool_mode(const conc__stack_pool *p);

/* Live stacks, and mappings made, for tests. */
size_t conc__stack_pool_live(const conc__stack_pool *p);

/* The process-wide result of the guard probe: INSTALL if touching a page
 * guarded by MADV_GUARD_INSTALL faults in a forked child, else MPROTECT.
 * Probed once, thread-safe. */
conc__guard_mode conc__stack_probe_guard(void);

/* The guard mode conc__stack_options_init puts in new options (AUTO), so
 * for every pool created afterwards, including the loops' own: a hook for
 * tests that force the mprotect fallback on a kernel with guard install. */
void conc__stack_set_default_guard(conc__guard_mode m);

/* "install", "mprotect", "none" or "auto". */
const char *conc__guard_mode_name(conc__guard_mode m);

#endif
