/* stack.c - pooled, guarded coroutine stacks.
 *
 * DESIGN
 * Layout.  A pool maps "slabs" of slots_per_map slots with one mmap each
 * (PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE: nothing is
 * committed or charged until touched).  A slot is one guard page followed by
 * the stack (stacks grow down, so the guard sits below each stack and above
 * the previous slot's top).  Slots are handed out in address order the first
 * time, then reused LIFO from a free array (the most recently used stack is
 * the one still in cache).  The free array's capacity always covers every
 * slot mapped so far, so freeing never allocates and never fails.
 *
 * Guard mode, chosen once per process (pthread_once):
 *  - INSTALL: madvise(MADV_GUARD_INSTALL) on the guard page (Linux 6.13+).
 *    Guards are page-table markers, not VMAs: a slab is one line of
 *    /proc/self/maps whatever its number of stacks, so 10^6 guarded stacks
 *    fit under vm.max_map_count.  The mode is chosen by a probe: a forked
 *    child guards a page and touches it; only a fault there proves the
 *    guard (qemu-user returns 0 from madvise and installs nothing).
 *  - MPROTECT: mprotect(PROT_NONE) on the guard page, which splits the slab
 *    VMA (up to two more map entries per stack).  A process-wide atomic
 *    counter of entries added is kept under map_share * vm.max_map_count;
 *    beyond it a stack is handed out unguarded (logged once per process) or,
 *    with fail_unguarded, allocation fails with CONC_ENOMEM.
 *  - NONE: no guards (forced by option only).
 * A guard is placed when its slot is first handed out and stays until the
 * slab is unmapped, so a reused stack costs no syscall.
 *
 * Sanitizers and tools: under ASan a freed stack's shadow is unpoisoned (a
 * coroutine abandoned mid-frame leaves redzones behind).  Stacks are
 * registered with valgrind when <valgrind/valgrind.h> is available.
 *
 * Threads: a pool is owned by one thread and takes no locks.  The probe
 * result and the mprotect budget counter are process-wide atomics; the
 * counter is relaxed (it is a budget, not a synchroniser).
 */
#include "internal.h"
#include "stack.h"

#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

#define STACK_MAX ((size_t)1 << 30)

/* ---- process-wide state ------------------------------------------------- */

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static _Atomic int probe_result = CONC__GUARD_MPROTECT;
static _Atomic size_t mprot_entries_total;
static atomic_flag unguarded_logged = ATOMIC_FLAG_INIT;
static _Atomic int default_guard = CONC__GUARD_AUTO;

void conc__stack_set_default_guard(conc__guard_mode m) {
  atomic_store_explicit(&default_guard, (int)m, memory_order_relaxed);
}

static void on_probe_segv(int sig) {
  (void)sig;
  _exit(7);
}

static void probe(void) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  /* Cheap pre-check in the parent: an old kernel rejects the advice. */
  char *p = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return;
  int r = madvise(p, page, MADV_GUARD_INSTALL);
  munmap(p, 2 * page);
  if (r != 0)
    return;
  pid_t pid = fork();
  if (pid < 0)
    return;
  if (pid == 0) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_probe_segv;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    char *q = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (q == MAP_FAILED || madvise(q, page, MADV_GUARD_INSTALL) != 0)
      _exit(2);
    *(volatile char *)q = 1; /* faults if the guard is real */
    _exit(42);
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  bool guarded = (WIFEXITED(st) && WEXITSTATUS(st) == 7) ||
                 (WIFSIGNALED(st) &&
                  (WTERMSIG(st) == SIGSEGV || WTERMSIG(st) == SIGBUS));
  if (guarded)
    atomic_store_explicit(&probe_result, CONC__GUARD_INSTALL,
                          memory_order_relaxed); /* published by pthread_once */
}

conc__guard_mode conc__stack_probe_guard(void) {
  pthread_once(&probe_once, probe);
  return (conc__guard_mode)atomic_load_explicit(&probe_result,
                                                memory_order_relaxed);
}

const char *conc__guard_mode_name(conc__guard_mode m) {
  switch (m) {
  case CONC__GUARD_AUTO: return "auto";
  case CONC__GUARD_INSTALL: return "install";
  case CONC__GUARD_MPROTECT: return "mprotect";
  case CONC__GUARD_NONE: return "none";
  }
  return "unknown";
}

static size_t max_map_count(void) {
  size_t n = 65530;
  FILE *f = fopen("/proc/sys/vm/max_map_count", "re");
  if (f) {
    unsigned long v;
    if (fscanf(f, "%lu", &v) == 1 && v > 0)
      n = v;
    fclose(f);
  }
  return n;
}

/* ---- pool ------------------------------------------------------------------ */

void conc__stack_options_init(conc__stack_options *o) {
  memset(o, 0, sizeof *o);
  o->size = sizeof *o;
  o->stack_size = 128 * 1024;
  o->slots_per_map = 256;
  o->guard = (conc__guard_mode)atomic_load_explicit(&default_guard,
                                                    memory_order_relaxed);
  o->map_share = 0.5;
  o->fail_unguarded = false;
}

int conc__stack_pool_create(const conc__stack_options *opts,
                            conc__stack_pool **out) {
  conc__stack_options def;
  if (!out)
    return CONC_EINVAL;
  if (!opts) {
    conc__stack_options_init(&def);
    opts = &def;
  }
  if (opts->size != sizeof *opts || opts->stack_size == 0 ||
      opts->stack_size > STACK_MAX || opts->slots_per_map == 0 ||
      opts->slots_per_map > 65536 || !(opts->map_share > 0) ||
      opts->map_share > 1 || (unsigned)opts->guard > CONC__GUARD_NONE)
    return CONC_EINVAL;
  conc__guard_mode mode = opts->guard;
  conc__guard_mode probed = mode == CONC__GUARD_MPROTECT ||
                                    mode == CONC__GUARD_NONE
                                ? mode
                                : conc__stack_probe_guard();
  if (mode == CONC__GUARD_AUTO)
    mode = probed;
  else if (mode == CONC__GUARD_INSTALL && probed != CONC__GUARD_INSTALL)
    return CONC_ENOTSUP;
  conc__stack_pool *p = conc__calloc(1, sizeof *p);
  if (!p)
    return CONC_ENOMEM;
  p->page = (size_t)sysconf(_SC_PAGESIZE);
#ifdef CONC_HAVE_VALGRIND
  /* once: a client request costs a dozen instructions natively */
  p->valgrind = RUNNING_ON_VALGRIND != 0;
#endif
  p->stack_size = (opts->stack_size + p->page - 1) & ~(p->page - 1);
  p->slot_size = p->page + p->stack_size;
  p->per_map = opts->slots_per_map;
  p->mode = mode;
  p->map_share = opts->map_share;
  p->fail_unguarded = opts->fail_unguarded;
  *out = p;
  return 0;
}

static void unguarded_log_once(const conc__stack_pool *p) {
  if (!atomic_flag_test_and_set_explicit(&unguarded_logged,
                                         memory_order_relaxed))
    conc_log(CONC_LOG_WARN,
             "coroutine stacks: mprotect guard budget (%.0f%% of "
             "vm.max_map_count) used up; further stacks have no guard page",
             p->map_share * 100);
}

/* Place the guard of a never-used slot.  Returns 1 (guarded), 0 (unguarded
 * by budget) or CONC_ENOMEM (no guard and fail_unguarded, or madvise
 * failed). */
static int place_guard(conc__stack_pool *p, char *slot) {
  switch (p->mode) {
  case CONC__GUARD_INSTALL:
    return madvise(slot, p->page, MADV_GUARD_INSTALL) == 0 ? 1 : CONC_ENOMEM;
  case CONC__GUARD_MPROTECT: {
    size_t limit = (size_t)(p->map_share * (double)max_map_count());
    size_t before = atomic_fetch_add_explicit(&mprot_entries_total, 2,
                                              memory_order_relaxed);
    if (before + 2 <= limit && mprotect(slot, p->page, PROT_NONE) == 0) {
      p->mprot_entries += 2;
      return 1;
    }
    atomic_fetch_sub_explicit(&mprot_entries_total, 2, memory_order_relaxed);
    if (p->fail_unguarded)
      return CONC_ENOMEM;
    unguarded_log_once(p);
    return 0;
  }
  default:
    return 0;
  }
}

static int new_slab(conc__stack_pool *p) {
  size_t total = (p->nslabs + 1) * p->per_map;
  if (p->free_cap < total) {
    uintptr_t *f = conc__realloc(p->free, total * sizeof *f);
    if (!f)
      return CONC_ENOMEM;
    p->free = f;
    p->free_cap = total;
  }
  if (p->nslabs == p->slabs_cap) {
    size_t cap = p->slabs_cap ? 2 * p->slabs_cap : 8;
    slab *s = conc__realloc(p->slabs, cap * sizeof *s);
    if (!s)
      return CONC_ENOMEM;
    p->slabs = s;
    p->slabs_cap = cap;
  }
  size_t len = p->per_map * p->slot_size;
  void *base = mmap(NULL, len, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED)
    return CONC_ENOMEM;
  p->slabs[p->nslabs].base = base;
  p->slabs[p->nslabs].len = len;
  p->nslabs++;
  p->next_unused = 0;
  return 0;
}

int conc__stack_alloc(conc__stack_pool *p, conc__stack *s) {
  if (!p || !s)
    return CONC_EINVAL;
  char *slot;
  bool guarded;
  if (p->nfree > p->reserved) {
    uintptr_t e = p->free[--p->nfree];
    slot = (char *)(e & ~(uintptr_t)1);
    guarded = e & 1;
  } else {
    if (p->nslabs == 0 || p->next_unused == p->per_map) {
      int r = new_slab(p);
      if (r < 0)
        return r;
    }
    slot = p->slabs[p->nslabs - 1].base + p->next_unused * p->slot_size;
    int g = place_guard(p, slot);
    if (g < 0)
      return g; /* the slot stays never-used */
    p->next_unused++;
    guarded = g == 1;
  }
  s->lo = slot + p->page;
  s->size = p->stack_size;
  s->guarded = guarded;
  s->valgrind_id = 0;
#ifdef CONC_HAVE_VALGRIND
  if (p->valgrind)
    s->valgrind_id = VALGRIND_STACK_REGISTER(s->lo, (char *)s->lo + s->size);
#endif
  p->live++;
  return 0;
}

void conc__stack_swap_hot(conc__stack_pool *p, conc__stack *s) {
  CONC_ASSERT(p && s && s->lo);
  if (p->nfree == 0)
    return;
  uintptr_t e = p->free[p->nfree - 1];
  uintptr_t mine = ((uintptr_t)s->lo - p->page) | (s->guarded ? 1u : 0u);
  p->free[p->nfree - 1] = mine;
#ifdef CONC_HAVE_VALGRIND
  if (p->valgrind)
    VALGRIND_STACK_DEREGISTER(s->valgrind_id);
#endif
  s->lo = (char *)(e & ~(uintptr_t)1) + p->page;
  s->guarded = e & 1;
#ifdef CONC_HAVE_VALGRIND
  if (p->valgrind)
    s->valgrind_id = VALGRIND_STACK_REGISTER(s->lo, (char *)s->lo + s->size);
#endif
}

void conc__stack_pool_trim(conc__stack_pool *p) {
  for (size_t i = 0; i < p->nfree; i++) {
    char *slot = (char *)(p->free[i] & ~(uintptr_t)1);
    CONC_MUST(madvise(slot + p->page, p->stack_size, MADV_DONTNEED) == 0);
  }
}

void conc__stack_pool_destroy(conc__stack_pool *p) {
  if (!p)
    return;
  CONC_ASSERT(p->live == 0 && p->reserved == 0);
  for (size_t i = 0; i < p->nslabs; i++)
    CONC_MUST(munmap(p->slabs[i].base, p->slabs[i].len) == 0);
  atomic_fetch_sub_explicit(&mprot_entries_total, p->mprot_entries,
                            memory_order_relaxed);
  conc__free(p->slabs);
  conc__free(p->free);
  conc__free(p);
}

conc__guard_mode conc__stack_pool_mode(const conc__stack_pool *p) {
  return p->mode;
}

size_t conc__stack_pool_live(const conc__stack_pool *p) { return p->live; }
