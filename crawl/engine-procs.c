/* engine-procs.c - the processes engine: scanner -> queue -> downloader.
 *
 * DESIGN (the seed tutorial's "one process scans image addresses, another
 * downloads them"):
 *   scanner     a child process; crawl_scan on its own thread pool; each
 *               new image address is put on the `images` conc_queue; the
 *               queue is closed at the end (or on stop).
 *   downloader  a child process; takes addresses from `images` and runs
 *               crawl_image for each on its own thread pool (bounded
 *               queue: it takes no more than it can start soon).
 *   parent      started both (by plain fork, while single-threaded: no
 *               thread of ours exists before, so the children may start
 *               threads), then shows progress from the shared counters
 *               and collects per-URL errors from the `errors` queue.
 * Counters, limits and the stop flag are in shared memory (set up by
 * main), so the per-host limit and the rate limit hold across both
 * processes.  Each child records its pid in the counters (the tests check
 * that two processes did the work).  Connections: crawl_split shares
 * `connections` between the scanner's and the downloader's pools, as in
 * the threads engine.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <conc/error.h>
#include <conc/process.h>
#include <conc/queue.h>
#include <conc/thread_pool.h>

#include "engine.h"

typedef struct procs {
  crawl *c;
  conc_queue *images, *errors;
} procs;

static procs *g; /* the children's view of it (inherited by fork) */

/* In a child: send a per-URL error to the parent. */
static void send_error(crawl *c, const char *what, const char *url, int kind,
                       const char *message) {
  (void)c;
  size_t n = strlen(what) + strlen(url) + strlen(message) + 32;
  char *m = malloc(n);
  if (!m)
    return;
  int len = snprintf(m, n, "%s\x1f%d\x1f%s\x1f%s", what, kind, url, message);
  conc_queue_put(g->errors, m, (size_t)len, -1);
  free(m);
}

static conc_executor *pool(unsigned workers, size_t max_queued) {
  conc_thread_pool_options po;
  conc_thread_pool_options_init(&po);
  po.max_workers = workers;
  po.max_queued = max_queued;
  po.flags = CONC_EXECUTOR_NO_EXIT_HOOK;
  conc_executor *ex = NULL;
  int rc = conc_thread_pool_create(&po, &ex);
  if (rc < 0)
    fprintf(stderr, "conc-crawl: thread pool: %s\n", conc_strerror(rc));
  return ex;
}

static void sink(void *ctx, const char *url) {
  (void)ctx;
  conc_queue_put(g->images, url, strlen(url), -1);
}

static int scanner(void *arg) {
  procs *p = arg;
  crawl *c = p->c;
  c->on_error = send_error;
  c->ctr->pids[0] = getpid();
  unsigned pw, iw;
  crawl_split(c->o->connections, &pw, &iw);
  conc_executor *ex = pool(pw, 0);
  int rc = ex ? crawl_scan(c, ex, sink, NULL) : -1;
  if (ex)
    conc_executor_destroy(ex);
  conc_queue_close(p->images);
  crawl_handles_drop(c);
  return rc < 0 ? 1 : 0;
}

typedef struct img_task {
  crawl *c;
  char url[];
} img_task;

static void *image_run(void *arg) {
  img_task *t = arg;
  crawl_image(t->c, t->url);
  free(t);
  return NULL;
}

static int downloader(void *arg) {
  procs *p = arg;
  crawl *c = p->c;
  c->on_error = send_error;
  c->ctr->pids[1] = getpid();
  unsigned pw, iw;
  crawl_split(c->o->connections, &pw, &iw);
  conc_executor *ex = pool(iw, 4 * (size_t)iw);
  if (!ex)
    return 1;
  for (;;) {
    void *m;
    size_t len;
    int rc = conc_queue_get(p->images, &m, &len, 0.2);
    if (rc == CONC_ETIMEDOUT) {
      if (crawl_stopped(c))
        break;
      continue;
    }
    if (rc < 0)
      break; /* closed and empty */
    img_task *t = malloc(sizeof *t + len + 1);
    if (t) {
      t->c = c;
      memcpy(t->url, m, len);
      t->url[len] = 0;
      if (conc_executor_submit(ex, image_run, t, NULL) < 0)
        free(t);
    }
    conc_queue_msg_free(m);
  }
  conc_executor_destroy(ex);
  crawl_handles_drop(c);
  return 0;
}

/* In the parent: one error message from a child. */
static void take_error(crawl *c, char *m, size_t len) {
  char *f[4] = {m, NULL, NULL, NULL};
  m[len] = 0;
  for (int i = 1; i < 4; i++) {
    char *s = strchr(f[i - 1], '\x1f');
    if (!s)
      return;
    *s = 0;
    f[i] = s + 1;
  }
  crawl_collect_error(c, f[0], f[2], atoi(f[1]), f[3]);
}

static void drain(crawl *c, conc_queue *q, double timeout) {
  void *m;
  size_t len;
  while (conc_queue_get(q, &m, &len, timeout) == 0) {
    char *s = malloc(len + 1);
    if (s) {
      memcpy(s, m, len);
      take_error(c, s, len);
      free(s);
    }
    conc_queue_msg_free(m);
    timeout = 0;
  }
}

/* Done items and errors, for the progress display. */
static void tally(const crawl_counters *k, size_t *done, size_t *errors) {
  size_t e = 0;
  for (int i = 0; i < FETCH_KINDS; i++)
    e += atomic_load(&k->failures[i]);
  *errors = e;
  *done = atomic_load(&k->pages) + atomic_load(&k->images) +
          atomic_load(&k->images_resumed) + e;
}

static int run(crawl *c) {
  procs p = {c, NULL, NULL};
  g = &p;
  int rc = conc_queue_create(&p.images, NULL);
  if (rc == 0)
    rc = conc_queue_create(&p.errors, NULL);
  if (rc < 0) {
    fprintf(stderr, "conc-crawl: queue: %s\n", conc_strerror(rc));
    if (p.images)
      conc_queue_destroy(p.images);
    return -1;
  }
  crawl_handles_drop(c); /* no connection shared with the children */
  conc_process scan, down;
  memset(&scan, 0, sizeof scan);
  memset(&down, 0, sizeof down);
  conc_process_options po;
  conc_process_options_init(&po);
  po.daemon = true;
  rc = conc_process_start(&down, downloader, &p, &po);
  if (rc == 0) {
    rc = conc_process_start(&scan, scanner, &p, &po);
    if (rc < 0) {
      conc_queue_close(p.images);
      conc_process_join(&down, -1);
    }
  }
  if (rc < 0) {
    fprintf(stderr, "conc-crawl: starting processes: %s\n", conc_strerror(rc));
    conc_queue_destroy(p.images);
    conc_queue_destroy(p.errors);
    return -1;
  }
  c->progress = crawl_progress_start(c->o);
  size_t shown = 0, shown_err = 0;
  int alive = 2;
  while (alive > 0) {
    drain(c, p.errors, 0.1);
    size_t done, errors;
    tally(c->ctr, &done, &errors);
    if (c->progress)
      conc_progress_add(c->progress, done - shown, errors - shown_err);
    shown = done;
    shown_err = errors;
    alive = conc_process_is_alive(&scan) + conc_process_is_alive(&down);
  }
  conc_process_join(&scan, -1);
  conc_process_join(&down, -1);
  drain(c, p.errors, 0);
  size_t done, errors;
  tally(c->ctr, &done, &errors);
  if (c->progress)
    conc_progress_add(c->progress, done - shown, errors - shown_err);
  conc_progress_stop(c->progress);
  c->progress = NULL;
  int cs = 1, cd = 1;
  conc_process_exitcode(&scan, &cs);
  conc_process_exitcode(&down, &cd);
  conc_queue_destroy(p.images);
  conc_queue_destroy(p.errors);
  if (cs != 0 || cd != 0) {
    fprintf(stderr, "conc-crawl: scanner exited %d, downloader exited %d\n",
            cs, cd);
    return -1;
  }
  return 0;
}

const crawl_engine crawl_engine_processes = {"processes", run};
