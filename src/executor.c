/* executor.c - the executor interface: argument checks, the exit hook and
 * the default executor.  Implementations live in thread_pool.c (and later
 * process_pool.c, the loop, MPI); map is in map.c.
 *
 * DESIGN
 * Exit hook: every executor created in this process is in a list (hook_mu).
 * An atexit handler shuts down with wait those that did not opt out, as
 * Python's concurrent.futures does.  Executors inherited across fork() are
 * skipped (their workers do not exist in the child).
 *
 * Default executor: created on first use under def_mu, sized by the
 * CONC_NUM_THREADS environment variable; conc_library_shutdown destroys it.
 */
#include "executor-int.h"

#include <pthread.h>

#include "conc/thread_pool.h"

static pthread_mutex_t hook_mu = PTHREAD_MUTEX_INITIALIZER;
static conc_executor *hook_list;
static pthread_once_t hook_once = PTHREAD_ONCE_INIT;

static void exit_hook(void) {
  for (;;) {
    pthread_mutex_lock(&hook_mu);
    conc_executor *ex = hook_list;
    while (ex && (!conc__executor_local(ex) ||
                  (ex->flags & CONC_EXECUTOR_NO_EXIT_HOOK)))
      ex = ex->hook_next;
    if (ex)
      conc__executor_unlink_locked_(ex);
    pthread_mutex_unlock(&hook_mu);
    if (!ex)
      return;
    int rc = ex->vt->shutdown(ex, true, false);
    if (rc)
      conc_log(CONC_LOG_WARN, "exit: %s executor: shutdown: %s", ex->vt->kind,
               conc_strerror(rc));
  }
}

/* fork(): hold both locks across it, so the child's copies are consistent
 * and unlocked. */
static pthread_mutex_t def_mu = PTHREAD_MUTEX_INITIALIZER;
static void fork_prepare(void) {
  pthread_mutex_lock(&def_mu);
  pthread_mutex_lock(&hook_mu);
}
static void fork_after(void) {
  pthread_mutex_unlock(&hook_mu);
  pthread_mutex_unlock(&def_mu);
}

static void hook_init(void) {
  atexit(exit_hook);
  pthread_atfork(fork_prepare, fork_after, fork_after);
}

void conc__executor_unlink_locked_(conc_executor *ex) {
  if (ex->hook_prev)
    ex->hook_prev->hook_next = ex->hook_next;
  else if (hook_list == ex)
    hook_list = ex->hook_next;
  if (ex->hook_next)
    ex->hook_next->hook_prev = ex->hook_prev;
  ex->hook_next = ex->hook_prev = NULL;
}

void conc__executor_init(conc_executor *ex, const conc__executor_vt *vt,
                         unsigned max_workers, unsigned flags) {
  ex->vt = vt;
  ex->max_workers = max_workers;
  ex->flags = flags;
  ex->gen = conc__fork_gen();
  ex->is_default = false;
  pthread_once(&hook_once, hook_init);
  pthread_mutex_lock(&hook_mu);
  ex->hook_prev = NULL;
  ex->hook_next = hook_list;
  if (hook_list)
    hook_list->hook_prev = ex;
  hook_list = ex;
  pthread_mutex_unlock(&hook_mu);
}

void conc__executor_unlink(conc_executor *ex) {
  pthread_mutex_lock(&hook_mu);
  conc__executor_unlink_locked_(ex);
  pthread_mutex_unlock(&hook_mu);
}

/* ---- the interface ---- */

void conc_submit_options_init(conc_submit_options *o) {
  if (!o)
    return;
  memset(o, 0, sizeof *o);
  o->size = sizeof *o;
  o->priority = 0;
  o->deadline = -1;
  o->timeout = -1;
}

static bool opts_ok(const conc_submit_options *o) {
  return !o || o->size >= offsetof(conc_submit_options, timeout) +
                              sizeof(o->timeout);
}

int conc_executor_submit(conc_executor *ex, conc_fn fn, void *arg,
                         conc_future **out) {
  if (out)
    *out = NULL;
  if (!ex || !fn)
    return CONC_EINVAL;
  return ex->vt->submit(ex, fn, arg, NULL, 0, out);
}

int conc_executor_submit_ex(conc_executor *ex, conc_fn fn, void *arg,
                            const conc_submit_options *opts,
                            conc_future **out) {
  if (out)
    *out = NULL;
  if (!ex || !fn || !opts_ok(opts))
    return CONC_EINVAL;
  return ex->vt->submit(ex, fn, arg, opts, 0, out);
}

int conc_executor_submit_task(conc_executor *ex, const char *name,
                              const void *in, size_t len,
                              const conc_submit_options *opts,
                              conc_future **out) {
  if (out)
    *out = NULL;
  if (!ex || !name || (!in && len) || !opts_ok(opts))
    return CONC_EINVAL;
  if (ex->vt->submit_task)
    return ex->vt->submit_task(ex, name, in, len, opts, out);
  conc_fn fn;
  void *arg;
  int rc = conc__closure_new(name, in, len, &fn, &arg);
  if (rc)
    return rc;
  rc = ex->vt->submit(ex, fn, arg, opts, FF_FREE_ARG, out);
  if (rc)
    conc__closure_free(arg);
  return rc;
}

int conc_executor_shutdown(conc_executor *ex, bool wait, bool cancel_futures) {
  if (!ex)
    return CONC_EINVAL;
  return ex->vt->shutdown(ex, wait, cancel_futures);
}

static int destroy(conc_executor *ex) {
  if (conc__executor_local(ex) && ex->vt->is_own_thread(ex)) {
    ex->vt->shutdown(ex, false, false);
    return CONC_EDEADLK;
  }
  int rc = ex->vt->shutdown(ex, true, false);
  if (rc)
    return rc;
  conc__executor_unlink(ex);
  ex->vt->free(ex);
  return 0;
}

int conc_executor_destroy(conc_executor *ex) {
  if (!ex)
    return CONC_EINVAL;
  if (ex->is_default)
    return CONC_EPERM;
  return destroy(ex);
}

void conc_executor_stats_init(conc_executor_stats *s) {
  if (!s)
    return;
  memset(s, 0, sizeof *s);
  s->size = sizeof *s;
  s->queue_wait_p50 = s->queue_wait_p99 = NAN;
  s->run_time_p50 = s->run_time_p99 = NAN;
}

int conc_executor_get_stats(conc_executor *ex, conc_executor_stats *s) {
  if (!ex || !s || s->size < sizeof *s)
    return CONC_EINVAL;
  size_t size = s->size;
  conc_executor_stats_init(s);
  s->size = size;
  ex->vt->stats(ex, s);
  return 0;
}

unsigned conc_executor_max_workers(const conc_executor *ex) {
  return ex ? ex->max_workers : 0;
}

/* ---- default executor ---- */

static conc_executor *def_ex;
static uint32_t def_gen;

int conc_executor_default(conc_executor **out) {
  if (!out)
    return CONC_EINVAL;
  *out = NULL;
  pthread_mutex_lock(&def_mu);
  if (def_ex && def_gen != conc__fork_gen())
    def_ex = NULL; /* inherited across fork: start a fresh one here */
  int rc = 0;
  if (!def_ex) {
    conc_thread_pool_options o;
    conc_thread_pool_options_init(&o);
    const char *env = getenv("CONC_NUM_THREADS");
    if (env && *env) {
      char *end;
      long n = strtol(env, &end, 10);
      if (*end == 0 && n > 0 && n <= 4096)
        o.max_workers = (unsigned)n;
      else
        conc_log(CONC_LOG_WARN, "CONC_NUM_THREADS=\"%s\" ignored", env);
    }
    o.thread_name_prefix = "conc-default";
    rc = conc_thread_pool_create(&o, &def_ex);
    if (rc == 0) {
      def_ex->is_default = true;
      def_gen = conc__fork_gen();
    }
  }
  *out = def_ex;
  pthread_mutex_unlock(&def_mu);
  return rc;
}

int conc_library_shutdown(void) {
  pthread_mutex_lock(&def_mu);
  conc_executor *ex = def_ex;
  if (ex && def_gen != conc__fork_gen())
    ex = NULL;
  if (ex && ex->vt->is_own_thread(ex)) {
    pthread_mutex_unlock(&def_mu);
    return CONC_EDEADLK;
  }
  def_ex = NULL;
  pthread_mutex_unlock(&def_mu);
  int rc = ex ? destroy(ex) : 0;
  conc__fcache_drain();
  conc__process_shutdown();
  return rc;
}
