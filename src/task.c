/* task.c - the running task's context, registered tasks, bytes.
 *
 * DESIGN
 * Task context: whoever runs a task (conc__future_run, conc_task_run) puts a
 * conc__task_ctx in a thread-local for the duration of the call; the calls
 * below read it.  No locking: the context belongs to the running thread.
 *
 * Registry: a sorted array of (name, fn) under a mutex.  It is process
 * lifetime and is filled by constructors before main, possibly before the
 * program replaces conc's allocator, so it uses the C library's malloc, not
 * the replaceable allocator.  Lookups take the mutex; executors look a name
 * up once per submission.
 */
#include "executor-int.h"
#include "conc/task.h"

#include <pthread.h>

/* ---- inside a task ---- */

int conc_task_fail(int code, const char *fmt, ...) {
  conc__task_ctx *ctx = conc__task_ctx_get();
  char *msg = NULL;
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    msg = conc__vasprintf(fmt, ap);
    va_end(ap);
  }
  if (!ctx) {
    conc_log(CONC_LOG_WARN, "conc_task_fail(%d) outside a task: %s", code,
             msg ? msg : "");
    conc__free(msg);
    return CONC_EPERM;
  }
  conc__free(ctx->msg);
  ctx->outcome = CONC_ETASK;
  ctx->code = code;
  ctx->msg = msg;
  return CONC_ETASK;
}

bool conc_task_stop_requested(void) {
  conc__task_ctx *ctx = conc__task_ctx_get();
  if (ctx && ctx->stop_id)
    return atomic_load_explicit(ctx->stop_id, memory_order_acquire) ==
           ctx->stop_match;
  if (!ctx || !ctx->future)
    return false;
  /* acquire: pairs with the acq_rel fetch_or in conc_future_stop */
  return atomic_load_explicit(&ctx->future->state, memory_order_acquire) &
         FS_STOP;
}

int conc_task_wait_stop(double timeout) {
  conc__task_ctx *ctx = conc__task_ctx_get();
  if (!ctx)
    return CONC_EPERM;
  double deadline = conc__deadline(timeout);
  if (ctx->stop_seq) {
    for (;;) {
      uint32_t seq = atomic_load_explicit(ctx->stop_seq, memory_order_acquire);
      if (conc_task_stop_requested())
        return 0;
      if (conc__futex_wait(ctx->stop_seq, seq, deadline, true) ==
          CONC_ETIMEDOUT)
        return conc_task_stop_requested() ? 0 : CONC_ETIMEDOUT;
    }
  }
  if (!ctx->future) {
    conc_sleep(timeout < 0 ? 1e9 : timeout);
    return CONC_ETIMEDOUT;
  }
  _Atomic uint32_t *w = &ctx->future->state;
  for (;;) {
    uint32_t s = atomic_load_explicit(w, memory_order_acquire);
    if (s & FS_STOP)
      return 0;
    if (!(s & FS_WAITERS) &&
        !atomic_compare_exchange_weak_explicit(w, &s, s | FS_WAITERS,
                                               memory_order_relaxed,
                                               memory_order_relaxed))
      continue;
    if (conc__futex_wait(w, s | FS_WAITERS, deadline, false) ==
        CONC_ETIMEDOUT)
      return (atomic_load_explicit(w, memory_order_acquire) & FS_STOP)
                 ? 0
                 : CONC_ETIMEDOUT;
  }
}

int conc_task_stopped(void) {
  conc__task_ctx *ctx = conc__task_ctx_get();
  if (!ctx)
    return CONC_EPERM;
  conc__free(ctx->msg);
  ctx->msg = conc__strdup("task stopped on request");
  ctx->outcome = CONC_ECANCELED;
  ctx->code = 0;
  return CONC_ECANCELED;
}

/* ---- bytes ---- */

/* A buffer the library lent a task on this thread (conc__bytes_lend):
 * never realloc'd or freed; outgrowing it moves the bytes to the heap. */
static _Thread_local const unsigned char *lent;

void conc__bytes_lend(const void *p) { lent = p; }

int conc_bytes_reserve(conc_bytes *b, size_t n) {
  if (!b)
    return CONC_EINVAL;
  if (n > SIZE_MAX - b->len)
    return CONC_ENOMEM;
  size_t need = b->len + n;
  if (need <= b->cap)
    return 0;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need)
    cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  unsigned char *d;
  if (b->data && b->data == lent) {
    d = conc__malloc(cap);
    if (!d)
      return CONC_ENOMEM;
    memcpy(d, b->data, b->len);
    lent = NULL;
  } else {
    d = conc__realloc(b->data, cap);
    if (!d)
      return CONC_ENOMEM;
  }
  b->data = d;
  b->cap = cap;
  return 0;
}

int conc_bytes_append(conc_bytes *b, const void *p, size_t n) {
  if (!b || (!p && n))
    return CONC_EINVAL;
  int rc = conc_bytes_reserve(b, n);
  if (rc)
    return rc;
  if (n)
    memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

void conc_bytes_free(conc_bytes *b) {
  if (!b)
    return;
  if (b->data && b->data == lent)
    lent = NULL; /* not ours to free */
  else
    conc__free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

/* ---- registry ---- */

struct entry {
  char *name;
  conc_task_fn fn;
};
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct entry *reg;
static size_t reg_n, reg_cap;

/* fork(): hold the registry lock across it (a child may look tasks up). */
static void reg_fork_prepare(void) { pthread_mutex_lock(&reg_mu); }
static void reg_fork_after(void) { pthread_mutex_unlock(&reg_mu); }
__attribute__((constructor)) static void reg_init(void) {
  pthread_atfork(reg_fork_prepare, reg_fork_after, reg_fork_after);
}

static bool valid_name(const char *name) {
  size_t n = 0;
  for (const char *p = name; *p; p++, n++) {
    char c = *p;
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '.' || c == ':' ||
              c == '-';
    if (!ok || n >= 63)
      return false;
  }
  return n > 0;
}

/* Index of name, or of its insertion point with *found false. */
static size_t find(const char *name, bool *found) {
  size_t lo = 0, hi = reg_n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = strcmp(reg[mid].name, name);
    if (c == 0) {
      *found = true;
      return mid;
    }
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  *found = false;
  return lo;
}

void conc__bufcache_init(conc__bufcache *c) {
  pthread_mutex_init(&c->mu, NULL);
  c->n = 0;
}

void conc__bufcache_destroy(conc__bufcache *c) {
  for (unsigned i = 0; i < c->n; i++)
    conc_bytes_free(&c->b[i]);
  c->n = 0;
  pthread_mutex_destroy(&c->mu);
}

void conc__bufcache_put(conc__bufcache *c, conc_bytes *b, size_t max) {
  if (b->cap <= max) {
    pthread_mutex_lock(&c->mu);
    if (c->n < sizeof c->b / sizeof c->b[0]) {
      c->b[c->n++] = *b;
      *b = (conc_bytes){0};
    }
    pthread_mutex_unlock(&c->mu);
  }
  conc_bytes_free(b);
}

void conc__bufcache_take(conc__bufcache *c, conc_bytes *out, size_t n,
                         size_t min) {
  if (n < min || out->cap)
    return;
  pthread_mutex_lock(&c->mu);
  for (unsigned i = 0; i < c->n; i++) {
    if (c->b[i].cap >= n) {
      *out = c->b[i];
      out->len = 0;
      c->b[i] = c->b[--c->n];
      break;
    }
  }
  pthread_mutex_unlock(&c->mu);
}

size_t conc__names_find(const char *const *names, size_t n, const char *name,
                        bool *found) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = strcmp(names[mid], name);
    if (c == 0) {
      *found = true;
      return mid;
    }
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  *found = false;
  return 0;
}

int conc_task_register(const char *name, conc_task_fn fn) {
  if (!name || !fn || !valid_name(name))
    return CONC_EINVAL;
  int rc = 0;
  pthread_mutex_lock(&reg_mu);
  bool found;
  size_t i = find(name, &found);
  if (found) {
    rc = reg[i].fn == fn ? 0 : CONC_EEXIST;
    goto out;
  }
  if (reg_n == reg_cap) {
    size_t cap = reg_cap ? reg_cap * 2 : 16;
    struct entry *r = realloc(reg, cap * sizeof *r);
    if (!r) {
      rc = CONC_ENOMEM;
      goto out;
    }
    reg = r;
    reg_cap = cap;
  }
  char *copy = strdup(name);
  if (!copy) {
    rc = CONC_ENOMEM;
    goto out;
  }
  memmove(reg + i + 1, reg + i, (reg_n - i) * sizeof *reg);
  reg[i].name = copy;
  reg[i].fn = fn;
  reg_n++;
out:
  pthread_mutex_unlock(&reg_mu);
  return rc;
}

void conc_task_register_at_load(const char *name, conc_task_fn fn) {
  int rc = conc_task_register(name, fn);
  if (rc)
    conc_log(CONC_LOG_ERROR, "cannot register task \"%s\": %s",
             name ? name : "(null)", conc_strerror(rc));
}

int conc_task_lookup(const char *name, conc_task_fn *fn) {
  if (!name || !fn)
    return CONC_EINVAL;
  pthread_mutex_lock(&reg_mu);
  bool found;
  size_t i = find(name, &found);
  if (found)
    *fn = reg[i].fn;
  pthread_mutex_unlock(&reg_mu);
  return found ? 0 : CONC_ENOENT;
}

size_t conc_task_count(void) {
  pthread_mutex_lock(&reg_mu);
  size_t n = reg_n;
  pthread_mutex_unlock(&reg_mu);
  return n;
}

const char *conc_task_name(size_t i) {
  pthread_mutex_lock(&reg_mu);
  const char *s = i < reg_n ? reg[i].name : NULL;
  pthread_mutex_unlock(&reg_mu);
  return s;
}

uint64_t conc_task_registry_hash(void) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a 64 */
  pthread_mutex_lock(&reg_mu);
  for (size_t i = 0; i < reg_n; i++) {
    for (const char *p = reg[i].name;; p++) {
      h ^= (unsigned char)*p;
      h *= 1099511628211ull;
      if (!*p)
        break;
    }
  }
  pthread_mutex_unlock(&reg_mu);
  return h;
}

int conc__task_invoke(conc_task_fn fn, const void *in, size_t len,
                      conc_bytes *out, conc__task_ctx *ctx) {
  int rc = fn(in, len, out);
  if (rc != 0 && ctx->outcome == 0) {
    ctx->outcome = CONC_ETASK;
    ctx->code = rc;
    ctx->msg = conc__asprintf("task returned %d", rc);
  }
  return ctx->outcome;
}

int conc_task_run(const char *name, const void *in, size_t len,
                  conc_bytes *out, int *code, char *msg, size_t msg_size) {
  if (code)
    *code = 0;
  if (msg && msg_size)
    msg[0] = 0;
  if (!name || !out || (!in && len))
    return CONC_EINVAL;
  conc_task_fn fn;
  int rc = conc_task_lookup(name, &fn);
  if (rc)
    return rc;
  conc__task_ctx ctx = {.future = NULL};
  conc__task_ctx *prev = conc__task_ctx_swap(&ctx);
  rc = conc__task_invoke(fn, in, len, out, &ctx);
  conc__task_ctx_swap(prev);
  if (rc == CONC_ETASK) {
    if (code)
      *code = ctx.code;
    if (msg && msg_size)
      snprintf(msg, msg_size, "%s", ctx.msg ? ctx.msg : "task failed");
  }
  conc__free(ctx.msg);
  return rc;
}

/* ---- closures for conc_executor_submit_task on in-process executors ---- */

struct conc__closure {
  conc_task_fn fn;
  const char *name; /* registry storage: lives as long as the process */
  conc__helper *helper; /* executors in other processes; else NULL */
  /* out.data lent by the executor (shared memory): given back with
   * view_free(view_obj, view_cookie) instead of being freed */
  void (*view_free)(void *obj, uint64_t cookie);
  void *view_obj;
  uint64_t view_cookie;
  size_t len;
  conc_bytes out;
  unsigned char in[];
};

static void *closure_run(void *arg) {
  struct conc__closure *c = arg;
  conc__task_ctx *ctx = conc__task_ctx_get();
  conc__task_invoke(c->fn, c->in, c->len, &c->out, ctx);
  return &c->out;
}

bool conc__closure_info(conc_fn fn, void *arg, const char **name,
                        const void **in, size_t *len, conc_bytes **out) {
  if (fn != closure_run)
    return false;
  struct conc__closure *c = arg;
  *name = c->name;
  *in = c->in;
  *len = c->len;
  *out = &c->out;
  return true;
}

void conc__closure_set_helper(void *arg, conc__helper *h) {
  struct conc__closure *c = arg;
  atomic_fetch_add_explicit(&h->refs, 1, memory_order_relaxed);
  c->helper = h;
}

conc__helper *conc__closure_helper(void *arg) {
  return ((struct conc__closure *)arg)->helper;
}

void conc__closure_set_view(void *arg, const void *data, size_t len,
                            void (*view_free)(void *obj, uint64_t cookie),
                            void *obj, uint64_t cookie) {
  struct conc__closure *c = arg;
  conc_bytes_free(&c->out);
  c->out = (conc_bytes){(unsigned char *)data, len, len};
  c->view_free = view_free;
  c->view_obj = obj;
  c->view_cookie = cookie;
}

void conc__closure_free(void *arg) {
  struct conc__closure *c = arg;
  if (c->view_free) {
    c->view_free(c->view_obj, c->view_cookie);
    c->out = (conc_bytes){0};
  }
  if (c->helper) {
    if (c->helper->recycle && c->out.cap >= (64u << 10))
      c->helper->recycle(c->helper, &c->out); /* takes the buffer */
    conc__helper_release(c->helper);
  }
  conc_bytes_free(&c->out);
  conc__free(c);
}

int conc__closure_new_empty(const char *name, size_t len, conc_fn *fn,
                            void **arg) {
  return conc__closure_new(name, NULL, len, fn, arg);
}

unsigned char *conc__closure_input(void *arg) {
  return ((struct conc__closure *)arg)->in;
}

/* in may be NULL with len > 0: the buffer is left unfilled (and its pages
 * untouched). */
int conc__closure_new(const char *name, const void *in, size_t len,
                      conc_fn *fn, void **arg) {
  if (!name)
    return CONC_EINVAL;
  conc_task_fn tf;
  int rc = conc_task_lookup(name, &tf);
  if (rc)
    return rc;
  if (len > SIZE_MAX - sizeof(struct conc__closure))
    return CONC_ENOMEM;
  struct conc__closure *c = conc__malloc(sizeof *c + len);
  if (!c)
    return CONC_ENOMEM;
  c->fn = tf;
  c->name = NULL;
  c->helper = NULL;
  c->view_free = NULL;
  c->view_obj = NULL;
  c->view_cookie = 0;
  pthread_mutex_lock(&reg_mu);
  bool found;
  size_t i = find(name, &found);
  if (found)
    c->name = reg[i].name;
  pthread_mutex_unlock(&reg_mu);
  c->len = len;
  c->out = (conc_bytes){0};
  if (len && in)
    memcpy(c->in, in, len);
  *fn = closure_run;
  *arg = c;
  return 0;
}
