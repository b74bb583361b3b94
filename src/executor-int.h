/* executor-int.h - what an executor implementation provides.
 *
 * Every executor embeds struct conc_executor first and fills a vtable.  The
 * generic layer (executor.c) validates arguments, keeps the exit-hook list
 * and the default executor, and implements map / submit_task on top of the
 * vtable, so an implementation only queues and runs futures.
 */
#ifndef CONC_EXECUTOR_INT_H
#define CONC_EXECUTOR_INT_H

#include "future-int.h"

#include <pthread.h>
#include "conc/executor.h"
#include "conc/task.h"

typedef struct conc__executor_vt {
  const char *kind;
  /* Queue a new task fn(arg).  On success, if out is not NULL, *out holds a
   * caller reference.  flags: FF_* to set on the future (FF_FREE_ARG). */
  int (*submit)(conc_executor *ex, conc_fn fn, void *arg,
                const conc_submit_options *opts, unsigned flags,
                conc_future **out);
  /* As the public call; wait may be refused with CONC_EDEADLK. */
  int (*shutdown)(conc_executor *ex, bool wait, bool cancel_futures);
  /* Free everything; the executor was shut down with wait (or is a copy
   * inherited across fork, whose threads do not exist). */
  void (*free)(conc_executor *ex);
  /* True when the calling thread is one of ex's workers. */
  bool (*is_own_thread)(const conc_executor *ex);
  /* Fill the counters of s (already initialised). */
  void (*stats)(conc_executor *ex, conc_executor_stats *s);
  /* Optional: conc_executor_submit_task done by the executor itself (the
   * process pool writes the input straight into a worker's ring).  NULL:
   * the generic closure + submit. */
  int (*submit_task)(conc_executor *ex, const char *name, const void *in,
                     size_t len, const conc_submit_options *opts,
                     conc_future **out);
} conc__executor_vt;

struct conc_executor {
  const conc__executor_vt *vt;
  unsigned max_workers;
  unsigned flags;      /* CONC_EXECUTOR_* */
  uint32_t gen;        /* fork generation at creation */
  bool is_default;
  struct conc_executor *hook_next, *hook_prev; /* exit-hook list */
};

/* Fill the common part and enter ex in the exit-hook list. */
void conc__executor_init(conc_executor *ex, const conc__executor_vt *vt,
                         unsigned max_workers, unsigned flags);
/* Leave the exit-hook list (before freeing); _locked_ with hook_mu held. */
void conc__executor_unlink_locked_(conc_executor *ex);
void conc__executor_unlink(conc_executor *ex);
/* True if ex was created in this process (not inherited across fork). */
static inline bool conc__executor_local(const conc_executor *ex) {
  return ex->gen == conc__fork_gen();
}

/* task.c: the closure that runs a registered task in-process. */
int conc__closure_new(const char *name, const void *in, size_t len,
                      conc_fn *fn, void **arg);
void conc__closure_free(void *arg);
/* A closure whose input buffer (len bytes) is allocated but not filled:
 * the caller copies the input in when it needs it (conc__closure_input). */
int conc__closure_new_empty(const char *name, size_t len, conc_fn *fn,
                            void **arg);
unsigned char *conc__closure_input(void *arg);
/* If fn/arg is such a closure: true with its task's name (registry
 * storage), input and output buffer. */
bool conc__closure_info(conc_fn fn, void *arg, const char **name,
                        const void **in, size_t *len, conc_bytes **out);
/* Attach a helper (retained) to such a closure; the closure releases it
 * when freed.  conc__closure_helper: the helper or NULL. */
void conc__closure_set_helper(void *arg, conc__helper *h);
conc__helper *conc__closure_helper(void *arg);
/* Make the closure's output a view of len bytes at data, memory the
 * executor lends (shared memory): when the closure is freed, view_free(obj,
 * cookie) is called instead of freeing data.  Any earlier output is freed.
 * Called once, before the future completes. */
void conc__closure_set_view(void *arg, const void *data, size_t len,
                            void (*view_free)(void *obj, uint64_t cookie),
                            void *obj, uint64_t cookie);
/* Lend p to a task on this thread as its output buffer (conc_bytes with
 * data == p): conc_bytes_reserve moves the bytes to the heap instead of
 * reallocating p, conc_bytes_free leaves p alone.  NULL ends the loan. */
void conc__bytes_lend(const void *p);
/* Run a registered task function under ctx (installed by the caller);
 * returns ctx->outcome afterwards (a non-zero return becomes CONC_ETASK). */
int conc__task_invoke(conc_task_fn fn, const void *in, size_t len,
                      conc_bytes *out, conc__task_ctx *ctx);

/* A FIFO of futures linked through f->next (the executor owns the link),
 * for executors that queue under their own lock. */
static inline void conc__fq_push(conc_future **h, conc_future **t,
                                 conc_future *f) {
  atomic_store_explicit(&f->next, NULL, memory_order_relaxed);
  if (*t)
    atomic_store_explicit(&(*t)->next, f, memory_order_relaxed);
  else
    *h = f;
  *t = f;
}
static inline conc_future *conc__fq_pop(conc_future **h, conc_future **t) {
  conc_future *f = *h;
  if (f) {
    *h = atomic_load_explicit(&f->next, memory_order_relaxed);
    if (!*h)
      *t = NULL;
  }
  return f;
}

/* Index of name in names[0..n) (sorted: a snapshot of the registry, as
 * conc_task_name gives it): *found says whether it is there. */
/* A few big output buffers given back by freed futures, reused for the
 * next big results of the same executor (their pages are already there):
 * the process pool's and the MPI executor's helpers keep one. */
typedef struct conc__bufcache {
  pthread_mutex_t mu;
  conc_bytes b[4];
  unsigned n;
} conc__bufcache;
void conc__bufcache_init(conc__bufcache *c);
void conc__bufcache_destroy(conc__bufcache *c);
/* Keep *b if it is at most `max` bytes and there is room, else free it;
 * *b is empty afterwards. */
void conc__bufcache_put(conc__bufcache *c, conc_bytes *b, size_t max);
/* If *out has no buffer and n >= min: a kept buffer of at least n bytes,
 * emptied, if one fits. */
void conc__bufcache_take(conc__bufcache *c, conc_bytes *out, size_t n,
                         size_t min);

size_t conc__names_find(const char *const *names, size_t n, const char *name,
                        bool *found);

/* batch.c: the "conc.batch" task's bytes. */
typedef struct conc__batch_res {
  int32_t outcome, code;
  const char *msg; /* msg_len bytes, not terminated */
  uint32_t msg_len;
  conc_bytes out;  /* a view into the batch output (cap 0) */
} conc__batch_res;
int conc__batch_encode(const char *name, const conc_buf *in, size_t n,
                       conc_bytes *b);
/* The next item of a batch output at *pos: 1 with *r, 0 at the end,
 * CONC_EPROTO. */
int conc__batch_item(const conc_bytes *out, size_t *pos, conc__batch_res *r);

#endif
