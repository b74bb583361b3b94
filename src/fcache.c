/* fcache.c - a cache of future records, so a task costs no malloc.
 *
 * DESIGN
 * Magazines (Bonwick's slab magazines, simplified).  Each thread keeps a
 * free list of records in a thread-local (no lock, no atomic).  A record is
 * freed into the cache of the thread that drops the last reference, which
 * in a producer/consumer pool is often not the thread that allocated it;
 * so when a thread's list passes 2 x MAG records it hands MAG of them, as
 * one batch, to a global depot (one mutex operation per MAG records), and a
 * thread whose list is empty takes a batch from the depot before calling
 * malloc.  The depot keeps at most DEPOT_MAX batches; beyond, batches are
 * freed.  A thread's list goes to the depot when the thread exits, and
 * conc_library_shutdown() frees the depot and the caller's list.
 *
 * The cache is used only with the C library's allocator: with an allocator
 * set by conc_set_allocator, every record is allocated and freed through it
 * (so leak checkers and failure injection see every block).
 */
#include "internal.h"

#include <pthread.h>

#define MAG 64
#define DEPOT_MAX 256 /* batches: 256 x 64 x 64 B = 1 MiB at most */

typedef struct blk {
  struct blk *next;       /* within a batch or a thread's list */
  struct blk *next_batch; /* in the depot (head block of a batch only) */
} blk;

typedef struct tcache {
  blk *head;
  unsigned n;
  bool keyed;
} tcache;

static _Thread_local tcache tc;
static pthread_mutex_t depot_mu = PTHREAD_MUTEX_INITIALIZER;
static blk *depot;
static unsigned depot_n;
static pthread_key_t exit_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

bool conc__default_allocator(void); /* base.c */

static void depot_put(blk *batch) {
  pthread_mutex_lock(&depot_mu);
  if (depot_n < DEPOT_MAX) {
    batch->next_batch = depot;
    depot = batch;
    depot_n++;
    batch = NULL;
  }
  pthread_mutex_unlock(&depot_mu);
  while (batch) { /* depot full */
    blk *next = batch->next;
    conc__free(batch);
    batch = next;
  }
}

static void flush_thread(void) {
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
  CONC_ASSERT(size >= sizeof(blk));
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
  if (CONC_UNLIKELY(!tc.keyed))
    register_thread();
  if (depot_n) { /* racy peek; the lock decides */
    pthread_mutex_lock(&depot_mu);
    blk *batch = depot;
    if (batch) {
      depot = batch->next_batch;
      depot_n--;
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
  }
  return conc__malloc(size);
}

void conc__fcache_free(void *p) {
  if (CONC_UNLIKELY(!conc__default_allocator())) {
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

/* Free the depot and the calling thread's list (conc_library_shutdown). */
void conc__fcache_drain(void) {
  flush_thread();
  pthread_mutex_lock(&depot_mu);
  blk *d = depot;
  depot = NULL;
  depot_n = 0;
  pthread_mutex_unlock(&depot_mu);
  while (d) {
    blk *nb = d->next_batch;
    while (d) {
      blk *next = d->next;
      conc__free(d);
      d = next;
    }
    d = nb;
  }
}
