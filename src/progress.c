/* progress.c - progress display (conc/progress.h).
 *
 * DESIGN
 * Counters (done, errors) are relaxed atomics anyone may add to.  Watched
 * futures sit in an array under `mu`; a draw compacts it, moving the done
 * ones into the counters (so each is looked at until it is done, then
 * never again).  One draw at a time (`mu`).  The display thread, unless
 * CONC_PROGRESS_MANUAL, waits on a condition variable with a timeout of
 * `interval` (CLOCK_MONOTONIC) and draws; stop sets a flag, signals and
 * joins it.  Output is written with write(2), retried across EINTR and
 * short writes; errors writing are ignored (a display must not fail the
 * work).  The thread blocks every signal.
 */
#include "internal.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include "conc/future.h"
#include "conc/progress.h"

struct conc_progress {
  _Atomic size_t done, errors;
  size_t total;
  char *label;
  int fd;
  double interval;
  unsigned flags, width;
  double (*clock)(void);
  bool tty;
  double t0, last_plain;
  pthread_mutex_t mu; /* watch list, drawing */
  conc_future **watch;
  size_t nwatch, capwatch;
  pthread_cond_t cv;
  bool stop, has_thread;
  pthread_t th;
};

void conc_progress_options_init(conc_progress_options *o) {
  if (!o)
    return;
  memset(o, 0, sizeof *o);
  o->size = sizeof *o;
  o->fd = 2;
  o->interval = -1;
}

static void put(int fd, const char *s, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return;
    }
    s += w;
    n -= (size_t)w;
  }
}

static void fmt_time(char *buf, size_t n, double t) {
  if (!(t >= 0) || t > 359999)
    snprintf(buf, n, "?");
  else if (t >= 3600)
    snprintf(buf, n, "%d:%02d:%02d", (int)t / 3600, ((int)t / 60) % 60,
             (int)t % 60);
  else
    snprintf(buf, n, "%d:%02d", (int)t / 60, (int)t % 60);
}

static void fmt_rate(char *buf, size_t n, double r) {
  if (r >= 1e6)
    snprintf(buf, n, "%.1fM/s", r / 1e6);
  else if (r >= 1e4)
    snprintf(buf, n, "%.1fk/s", r / 1e3);
  else
    snprintf(buf, n, "%.1f/s", r);
}

/* mu held.  Move done watched futures into the counters. */
static void sample(conc_progress *p) {
  size_t k = 0;
  for (size_t i = 0; i < p->nwatch; i++) {
    conc_future *f = p->watch[i];
    if (conc_future_done(f)) {
      int o = conc_future_error(f, NULL, NULL);
      atomic_fetch_add_explicit(&p->done, 1, memory_order_relaxed);
      if (o != 0)
        atomic_fetch_add_explicit(&p->errors, 1, memory_order_relaxed);
      conc_future_release(f);
    } else {
      p->watch[k++] = f;
    }
  }
  p->nwatch = k;
}

/* mu held. */
static void draw_locked(conc_progress *p, bool final) {
  sample(p);
  if (p->flags & CONC_PROGRESS_OFF)
    return;
  double now = p->clock();
  if (!p->tty && !final && now - p->last_plain < p->interval)
    return;
  size_t done = atomic_load_explicit(&p->done, memory_order_relaxed);
  size_t errors = atomic_load_explicit(&p->errors, memory_order_relaxed);
  double elapsed = now - p->t0;
  double rate = elapsed > 0 ? (double)done / elapsed : 0;
  char el[32], eta[32], rt[32], line[1024], counts[96];
  fmt_time(el, sizeof el, elapsed);
  fmt_rate(rt, sizeof rt, rate);
  if (p->total && rate > 0 && done <= p->total)
    fmt_time(eta, sizeof eta, (double)(p->total - done) / rate);
  else
    snprintf(eta, sizeof eta, "?");
  if (p->total)
    snprintf(counts, sizeof counts, "%zu/%zu %3d%%", done, p->total,
             (int)(done >= p->total ? 100 : 100.0 * (double)done /
                                                 (double)p->total));
  else
    snprintf(counts, sizeof counts, "%zu", done);
  const char *lab = p->label ? p->label : "";
  const char *sep = p->label ? ": " : "";
  int n;
  if (p->tty) {
    char tail[256];
    snprintf(tail, sizeof tail, " %s %s %s<%s", counts, rt, el, eta);
    char errs[48] = "";
    if (errors)
      snprintf(errs, sizeof errs, " errors %zu", errors);
    int fixed = (int)(strlen(lab) + strlen(sep) + strlen(tail) +
                      strlen(errs) + 3);
    int barw = (int)p->width - fixed;
    if (!p->total || barw < 5)
      barw = 0;
    char bar[256] = "";
    if (barw > 0) {
      if (barw > 200)
        barw = 200;
      int fill = (int)((double)barw * (double)(done < p->total ? done
                                                               : p->total) /
                       (double)p->total);
      bar[0] = '|';
      for (int i = 0; i < barw; i++)
        bar[1 + i] = i < fill ? '#' : '.';
      bar[1 + barw] = '|';
      bar[2 + barw] = 0;
    }
    n = snprintf(line, sizeof line, "\r%s%s%s%s%s\x1b[K%s", lab, sep, bar,
                 tail, errs, final ? "\n" : "");
  } else {
    char errs[48] = "";
    if (errors)
      snprintf(errs, sizeof errs, " errors %zu", errors);
    n = snprintf(line, sizeof line, "%s%s%s %s elapsed %s eta %s%s%s\n", lab,
                 sep, counts, rt, el, eta, errs, final ? " (done)" : "");
    p->last_plain = now;
  }
  if (n > 0)
    put(p->fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

int conc_progress_draw(conc_progress *p) {
  if (!p)
    return CONC_EINVAL;
  pthread_mutex_lock(&p->mu);
  draw_locked(p, false);
  pthread_mutex_unlock(&p->mu);
  return 0;
}

static void *display(void *arg) {
  conc_progress *p = arg;
  pthread_mutex_lock(&p->mu);
  while (!p->stop) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double t = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9 + p->interval;
    ts.tv_sec = (time_t)t;
    ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
    pthread_cond_timedwait(&p->cv, &p->mu, &ts);
    if (!p->stop)
      draw_locked(p, false);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

int conc_progress_start(conc_progress **out, size_t total,
                        const conc_progress_options *o) {
  if (!out)
    return CONC_EINVAL;
  *out = NULL;
  conc_progress_options def;
  if (!o) {
    conc_progress_options_init(&def);
    o = &def;
  }
  if (o->size < offsetof(conc_progress_options, clock) + sizeof(o->clock) ||
      o->fd < 0 || (o->flags & ~15u) ||
      ((o->flags & CONC_PROGRESS_TTY) && (o->flags & CONC_PROGRESS_PLAIN)))
    return CONC_EINVAL;
  conc_progress *p = conc__calloc(1, sizeof *p);
  if (!p)
    return CONC_ENOMEM;
  if (o->label && !(p->label = conc__strdup(o->label))) {
    conc__free(p);
    return CONC_ENOMEM;
  }
  atomic_init(&p->done, 0);
  atomic_init(&p->errors, 0);
  p->total = total;
  p->fd = o->fd;
  p->flags = o->flags;
  p->clock = o->clock ? o->clock : conc_now;
  p->tty = !(o->flags & CONC_PROGRESS_PLAIN) &&
           ((o->flags & CONC_PROGRESS_TTY) || isatty(o->fd));
  p->interval = o->interval > 0 ? o->interval : p->tty ? 0.1 : 10;
  p->width = o->width;
  if (!p->width) {
    const char *c = getenv("COLUMNS");
    long w = c ? strtol(c, NULL, 10) : 0;
    p->width = w > 20 && w < 1000 ? (unsigned)w : 80;
  }
  p->t0 = p->last_plain = p->clock();
  pthread_mutex_init(&p->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&p->cv, &ca);
  pthread_condattr_destroy(&ca);
  if (!(p->flags & (CONC_PROGRESS_MANUAL | CONC_PROGRESS_OFF))) {
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int e = pthread_create(&p->th, NULL, display, p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e) {
      pthread_cond_destroy(&p->cv);
      pthread_mutex_destroy(&p->mu);
      conc__free(p->label);
      conc__free(p);
      return e == ENOMEM ? CONC_ENOMEM : CONC_EAGAIN;
    }
    p->has_thread = true;
  }
  *out = p;
  return 0;
}

void conc_progress_add(conc_progress *p, size_t done, size_t errors) {
  if (!p)
    return;
  if (done)
    atomic_fetch_add_explicit(&p->done, done, memory_order_relaxed);
  if (errors)
    atomic_fetch_add_explicit(&p->errors, errors, memory_order_relaxed);
}

int conc_progress_watch(conc_progress *p, conc_future *const *fs, size_t n) {
  if (!p || (!fs && n))
    return CONC_EINVAL;
  for (size_t i = 0; i < n; i++)
    if (!fs[i])
      return CONC_EINVAL;
  pthread_mutex_lock(&p->mu);
  if (p->nwatch + n > p->capwatch) {
    size_t cap = p->capwatch ? p->capwatch : 16;
    while (cap < p->nwatch + n)
      cap *= 2;
    conc_future **w = conc__realloc(p->watch, cap * sizeof *w);
    if (!w) {
      pthread_mutex_unlock(&p->mu);
      return CONC_ENOMEM;
    }
    p->watch = w;
    p->capwatch = cap;
  }
  for (size_t i = 0; i < n; i++)
    p->watch[p->nwatch++] = conc_future_retain(fs[i]);
  pthread_mutex_unlock(&p->mu);
  return 0;
}

void conc_progress_counts(conc_progress *p, size_t *done, size_t *errors,
                          size_t *total) {
  if (done)
    *done = p ? atomic_load_explicit(&p->done, memory_order_relaxed) : 0;
  if (errors)
    *errors = p ? atomic_load_explicit(&p->errors, memory_order_relaxed) : 0;
  if (total)
    *total = p ? p->total : 0;
}

void conc_progress_stop(conc_progress *p) {
  if (!p)
    return;
  if (p->has_thread) {
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->th, NULL);
  }
  pthread_mutex_lock(&p->mu);
  draw_locked(p, true);
  for (size_t i = 0; i < p->nwatch; i++)
    conc_future_release(p->watch[i]);
  pthread_mutex_unlock(&p->mu);
  conc__free(p->watch);
  pthread_cond_destroy(&p->cv);
  pthread_mutex_destroy(&p->mu);
  conc__free(p->label);
  conc__free(p);
}
