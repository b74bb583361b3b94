/* fcache.c - a cache of future records, so a task costs no malloc.
 *
 * DESIGN
 * Slabs.  Records (64 bytes, one cache line each: a record never straddles
 * two lines) are carved from 64 KiB slabs, which are carved from one arena
 * of address space reserved at first use (PROT_NONE, no memory) and
 * committed 4 MiB at a time.  A thread carves its records from its own
 * current slab with a bump pointer: no lock, no malloc, and a page fault
 * only once per 64 records.
 *
 * Magazines (Bonwick's slab magazines, simplified).  Each thread keeps a
 * free list of records in a thread-local (no lock, no atomic).  A record is
 * freed into the cache of the thread that drops the last reference, which
 * in a producer/consumer pool is often not the thread that allocated it;
 * so when a thread's list passes 2 x MAG records it hands MAG of them, as
 * one batch, to a global depot (one mutex operation per MAG records), and a
 * thread whose list is empty takes a batch from the depot before carving.
 * A thread's list (and the uncarved rest of its slab) goes to the depot
 * when the thread exits.
 *
 * Giving memory back.  When the depot passes `sweep_at` batches, a sweep
 * counts its records per slab; a slab whose 1024 records are all in the
 * depot is taken out of it, its pages are returned to the kernel
 * (MADV_DONTNEED) and the slab is reused before new ones are carved.  The
 * next sweep waits until the depot has doubled, so sweeps cost O(1)
 * amortised per record.  After a burst of N pending tasks, what stays
 * resident is what the sweeps could not prove free (records in threads'
 * lists and in slabs that still hold live records), not N x 64 bytes.
 * conc_library_shutdown() sweeps with no threshold.
 *
 * The cache is used only with the C library's allocator: with an allocator
 * set by conc_set_allocator, every record is allocated and freed through it
 * (so leak checkers and failure injection see every block).  If the arena
 * cannot be reserved (a strict overcommit policy or an address-space
 * limit), or once it is full, records come from malloc and go back to free
 * when the depot is too big, as before slabs.
 */
#include "internal.h"

#include <pthread.h>
#include <sys/mman.h>

#define REC 64
#define SLAB ((size_t)64 << 10)            /* 1024 records */
#define PER_SLAB (SLAB / REC)
#define COMMIT ((size_t)4 << 20)           /* committed at a time */
#if SIZE_MAX > 0xffffffffu
#define ARENA ((size_t)16 << 30) /* reserved: 2^18 slabs */
#else
#define ARENA ((size_t)256 << 20)
#endif
#define MAG 64
#define SWEEP_MIN 4096 /* batches: 4096 x 64 x 64 B = 16 MiB kept at most
                          before a sweep gives fully free slabs back */
#define MALLOC_MAX 256 /* batches of malloc'd records kept (no arena) */

typedef struct blk {
  struct blk *next;       /* within a batch or a thread's list */
  struct blk *next_batch; /* in the depot (head block of a batch only) */
} blk;

typedef struct tcache {
  blk *head;
  unsigned n;
  bool keyed;
  char *bump, *end; /* the uncarved rest of this thread's slab */
} tcache;

static _Thread_local tcache tc;
static pthread_mutex_t depot_mu = PTHREAD_MUTEX_INITIALIZER;
static blk *depot;
static size_t depot_n; /* batches */
static size_t sweep_at = SWEEP_MIN;
static pthread_key_t exit_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

/* The arena (depot_mu).  arena == NULL: not reserved yet; arena_off: could
 * not be, records come from malloc. */
static char *arena;
static bool arena_off;
static size_t committed, carved; /* bytes */
static uint32_t *free_slabs;     /* indexes of returned slabs */
static size_t n_free_slabs, cap_free_slabs;

bool conc__default_allocator(void); /* base.c */

static inline bool in_arena(const void *p) {
  /* arena and committed only grow; a record handed out lies below both */
  const char *a = __atomic_load_n(&arena, __ATOMIC_RELAXED);
  return a && (const char *)p >= a && (const char *)p < a + ARENA;
}

/* depot_mu held.  A fresh or returned slab, or NULL. */
static char *slab_get(void) {
  if (n_free_slabs)
    return arena + (size_t)free_slabs[--n_free_slabs] * SLAB;
  if (arena_off)
    return NULL;
  if (!arena) {
    void *a = mmap(NULL, ARENA, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (a == MAP_FAILED) {
      arena_off = true;
      return NULL;
    }
    __atomic_store_n(&arena, (char *)a, __ATOMIC_RELAXED);
  }
  if (carved + SLAB > committed) {
    if (committed + COMMIT > ARENA ||
        mprotect(arena + committed, COMMIT, PROT_READ | PROT_WRITE) != 0)
      return NULL; /* full, or no memory to commit: malloc from now on */
    committed += COMMIT;
  }
  char *s = arena + carved;
  carved += SLAB;
#ifdef MADV_POPULATE_WRITE
  /* one system call instead of 16 page faults (Linux 5.14+; else the
   * faults happen as records are carved) */
  madvise(s, SLAB, MADV_POPULATE_WRITE);
#endif
  return s;
}

/* depot_mu held.  The depot becomes the records of `list`, in batches. */
static void depot_set(blk *list) {
  depot = NULL;
  depot_n = 0;
  while (list) {
    blk *batch = list, *last = list;
    for (unsigned i = 1; i < MAG && last->next; i++)
      last = last->next;
    list = last->next;
    last->next = NULL;
    batch->next_batch = depot;
    depot = batch;
    depot_n++;
  }
}

/* depot_mu held.  Return the slabs whose records are all in the depot. */
static void sweep_locked(size_t threshold) {
  size_t nslabs = carved / SLAB;
  if (!nslabs)
    return;
  uint16_t *cnt = calloc(nslabs, sizeof *cnt);
  if (!cnt)
    return;
  for (blk *b = depot; b; b = b->next_batch)
    for (blk *r = b; r; r = r->next)
      if (in_arena(r))
        cnt[((char *)r - arena) / SLAB]++;
  size_t whole = 0;
  for (size_t i = 0; i < nslabs; i++)
    whole += cnt[i] == PER_SLAB;
  if (whole && n_free_slabs + whole > cap_free_slabs) {
    size_t cap = (n_free_slabs + whole) * 2;
    uint32_t *f = realloc(free_slabs, cap * sizeof *f);
    if (!f)
      whole = 0;
    else {
      free_slabs = f;
      cap_free_slabs = cap;
    }
  }
  if (whole) {
    /* rebuild the depot without those slabs' records */
    blk *keep = NULL;
    for (blk *b = depot; b;) {
      blk *nb = b->next_batch;
      for (blk *r = b; r;) {
        blk *next = r->next;
        if (!in_arena(r) || cnt[((char *)r - arena) / SLAB] != PER_SLAB) {
          r->next = keep;
          keep = r;
        }
        r = next;
      }
      b = nb;
    }
    depot_set(keep);
    for (size_t i = 0; i < nslabs; i++) {
      if (cnt[i] != PER_SLAB)
        continue;
      madvise(arena + i * SLAB, SLAB, MADV_DONTNEED);
      free_slabs[n_free_slabs++] = (uint32_t)i;
    }
  }
  free(cnt);
  sweep_at = depot_n * 2 > threshold ? depot_n * 2 : threshold;
}

static void depot_put(blk *batch) {
  pthread_mutex_lock(&depot_mu);
  batch->next_batch = depot;
  depot = batch;
  depot_n++;
  if (depot_n >= sweep_at)
    sweep_locked(SWEEP_MIN);
  blk *spill = NULL;
  if (arena_off && depot_n > MALLOC_MAX) { /* no slabs: keep it bounded */
    spill = depot;
    depot = spill->next_batch;
    depot_n--;
  }
  pthread_mutex_unlock(&depot_mu);
  while (spill) {
    blk *next = spill->next;
    free(spill); /* malloc'd under the C library's allocator */
    spill = next;
  }
}

static void flush_thread(void) {
  /* the uncarved rest of the slab joins the list, so the slab can be
   * returned once its records are all free */
  while (tc.bump && tc.bump < tc.end) {
    blk *b = (blk *)tc.bump;
    tc.bump += REC;
    b->next = tc.head;
    tc.head = b;
  }
  tc.bump = tc.end = NULL;
  blk *b = tc.head;
  tc.head = NULL;
  tc.n = 0;
  while (b) { /* in batches of at most MAG */
    blk *batch = b, *last = b;
    for (unsigned i = 1; i < MAG && last->next; i++)
      last = last->next;
    b = last->next;
    last->next = NULL;
    depot_put(batch);
  }
}

static void on_thread_exit(void *unused) {
  (void)unused;
  flush_thread();
}

/* fork(): hold the depot lock across it, so the child's copy is unlocked. */
static void fork_prepare(void) { pthread_mutex_lock(&depot_mu); }
static void fork_after(void) { pthread_mutex_unlock(&depot_mu); }

static void key_init(void) {
  pthread_key_create(&exit_key, on_thread_exit);
  pthread_atfork(fork_prepare, fork_after, fork_after);
}

static void register_thread(void) {
  pthread_once(&key_once, key_init);
  pthread_setspecific(exit_key, &tc); /* so on_thread_exit runs */
  tc.keyed = true;
}

void *conc__fcache_alloc(size_t size) {
  CONC_ASSERT(size >= sizeof(blk) && size <= REC);
  if (CONC_LIKELY(tc.head)) {
    blk *b = tc.head;
    tc.head = b->next;
    tc.n--;
    /* the next record was most likely freed on another CPU: start
     * fetching it now rather than stall on it at the next submit */
    if (tc.head)
      __builtin_prefetch(tc.head, 1);
    return b;
  }
  if (!conc__default_allocator())
    return conc__malloc(size);
  if (CONC_LIKELY(tc.bump < tc.end)) {
    void *r = tc.bump;
    tc.bump += REC;
    return r;
  }
  if (CONC_UNLIKELY(!tc.keyed))
    register_thread();
  blk *batch = NULL;
  char *slab = NULL;
  pthread_mutex_lock(&depot_mu);
  if (depot) {
    batch = depot;
    depot = batch->next_batch;
    depot_n--;
  } else {
    slab = slab_get();
  }
  pthread_mutex_unlock(&depot_mu);
  if (batch) {
    unsigned n = 0;
    for (blk *b = batch; b; b = b->next)
      n++;
    tc.head = batch->next;
    tc.n = n - 1;
    return batch;
  }
  if (slab) {
    tc.bump = slab + REC;
    tc.end = slab + SLAB;
    return slab;
  }
  return malloc(size); /* no arena: the C library's allocator (default) */
}

void conc__fcache_free(void *p) {
  if (CONC_UNLIKELY(!in_arena(p) && !conc__default_allocator())) {
    conc__free(p);
    return;
  }
  if (CONC_UNLIKELY(!tc.keyed))
    register_thread();
  blk *b = p;
  b->next = tc.head;
  tc.head = b;
  if (CONC_UNLIKELY(++tc.n >= 2 * MAG)) {
    blk *batch = tc.head, *last = batch;
    for (unsigned i = 1; i < MAG; i++)
      last = last->next;
    tc.head = last->next;
    last->next = NULL;
    tc.n -= MAG;
    depot_put(batch);
  }
}

/* conc_library_shutdown: the caller's list goes to the depot, malloc'd
 * records are freed, and every slab whose records are all free is given
 * back.  (Records other threads hold stay valid: the arena stays mapped.) */
void conc__fcache_drain(void) {
  flush_thread();
  pthread_mutex_lock(&depot_mu);
  blk *spill = NULL, *keep = NULL;
  for (blk *b = depot; b;) { /* malloc'd records (no arena, or it was full) */
    blk *nb = b->next_batch;
    for (blk *r = b; r;) {
      blk *next = r->next;
      blk **to = in_arena(r) ? &keep : &spill;
      r->next = *to;
      *to = r;
      r = next;
    }
    b = nb;
  }
  depot_set(keep);
  sweep_locked(SWEEP_MIN);
  pthread_mutex_unlock(&depot_mu);
  while (spill) {
    blk *next = spill->next;
    free(spill);
    spill = next;
  }
}

/* Tests: records carved, slabs given back and waiting for reuse, batches
 * in the depot. */
void conc__fcache_stats(size_t *slabs, size_t *returned, size_t *batches) {
  pthread_mutex_lock(&depot_mu);
  *slabs = carved / SLAB;
  *returned = n_free_slabs;
  *batches = depot_n;
  pthread_mutex_unlock(&depot_mu);
}
