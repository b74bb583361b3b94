/* engine-coro.c - the coroutines engine: conc's loop driving libcurl's
 * multi-socket interface on one thread, with a small pool for the work
 * that is not I/O.
 *
 * DESIGN: one conc loop, one CURLM.  libcurl's socket callback maps to
 * conc_loop_watch / conc_loop_unwatch and its timer callback to one
 * conc_loop_timer; both callbacks call curl_multi_socket_action and then
 * collect finished transfers (curl_multi_info_read).  A single coroutine,
 * the scanner, runs the level loop of crawl_scan with transfers in place
 * of page tasks: it queues a level's pages, waits (on a coroutine event)
 * until they are all done, merges their links in page order and goes on;
 * at the end it waits for the images.
 *
 * Work items (one per URL) go through:
 *   queued     in the page or image FIFO;
 *   parked     its host slot was full (limits_acquire with timeout 0):
 *              kept on that slot's list; every release of the slot moves
 *              one parked item back to the front of its FIFO;
 *   pacing     holds its slot, waits on its own conc_loop_timer for the
 *              rate limiter (limits_rate_reserve);
 *   active     its easy handle is in the multi handle;
 *   backoff    a retryable failure (5xx, reset): slot released, its timer
 *              puts it back at the front of its FIFO after fetch_backoff.
 *   settling   the transfer succeeded: a coroutine runs the crawl's part
 *              of the outcome (crawl_page_done: HTML parsing; or
 *              crawl_image_done: SHA-256 and the file) on a small thread
 *              pool with conc_coro_run_in_executor (files are not
 *              pollable: DECISIONS.md), then, back on the loop, queues
 *              the images the page found and frees the item.  Failures
 *              are only counted, on the loop.
 * At most `connections` items are pacing or active.  Pages come first up
 * to crawl_split's page share (and beyond it when no image waits), as the
 * threads engine's two pools share the connections.  The outcome of each
 * URL goes through crawl_page_done / crawl_image_want / crawl_image_done,
 * so counters, files and errors are those of the other engines.
 *
 * Stop (Ctrl-C): the scanner wakes at least every 50 ms, and on *c->stop
 * drops every item (active transfers are removed from the multi handle,
 * as interrupted transfers are not failures).
 *
 * robots.txt of a host other than the start host's (images on other
 * hosts) is fetched by crawl_image_want, blocking, on the pool.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <conc/chan.h>
#include <conc/coro.h>
#include <conc/error.h>
#include <conc/net.h>
#include <conc/thread_pool.h>

#include "engine.h"

typedef struct item item;
typedef struct eng eng;

enum { Q_PAGE, Q_IMAGE };

struct item {
  item *next;              /* FIFO or parked list */
  item *prev_all, *next_all; /* every live item */
  eng *e;
  int cls;                 /* Q_PAGE, Q_IMAGE */
  size_t index;            /* page: its index in the level */
  unsigned slot;
  bool held, running, active, posting, worked;
  CURL *h;
  conc_loop_timer *timer;
  fetch_xfer x;
  fetch_result r;
  strvec imgs;             /* new image addresses found by a page */
  char url[];
};

typedef struct fifo {
  item *head, *tail;
} fifo;

struct eng {
  crawl *c;
  conc_loop *loop;
  CURLM *multi;
  conc_loop_timer *curl_timer;
  conc_executor *pool;     /* the CPU and file work of finished transfers */
  conc_coro_event ev;      /* set when a count the scanner waits on drops */
  fifo q[2];
  fifo parked[2][LIMITS_SLOTS];
  item *all;
  unsigned running, running_pages, max, max_pages;
  size_t left[2];          /* live items per class */
  strvec *links;           /* the level's links, by page index */
  int error;               /* first setup error (CONC_ENOMEM, ...) */
};

static void fifo_push(fifo *f, item *it) {
  it->next = NULL;
  if (f->tail)
    f->tail->next = it;
  else
    f->head = it;
  f->tail = it;
}

static void fifo_push_front(fifo *f, item *it) {
  it->next = f->head;
  f->head = it;
  if (!f->tail)
    f->tail = it;
}

static item *fifo_pop(fifo *f) {
  item *it = f->head;
  if (it) {
    f->head = it->next;
    if (!f->head)
      f->tail = NULL;
    it->next = NULL;
  }
  return it;
}

/* ---- items ---- */

static item *item_new(eng *e, int cls, const char *url, size_t index) {
  size_t n = strlen(url) + 1;
  item *it = calloc(1, sizeof *it + n);
  if (!it) {
    if (!e->error)
      e->error = CONC_ENOMEM;
    return NULL;
  }
  it->e = e;
  it->cls = cls;
  it->index = index;
  memcpy(it->url, url, n);
  it->next_all = e->all;
  if (e->all)
    e->all->prev_all = it;
  e->all = it;
  e->left[cls]++;
  return it;
}

static void release_slot(item *it) {
  eng *e = it->e;
  if (!it->held)
    return;
  it->held = false;
  limits_release(e->c->lim, it->slot);
  /* one unit free: one parked item (pages first) may take it */
  for (int k = 0; k < 2; k++) {
    item *p = fifo_pop(&e->parked[k][it->slot]);
    if (p) {
      fifo_push_front(&e->q[k], p);
      break;
    }
  }
}

static void not_running(item *it) {
  eng *e = it->e;
  if (!it->running)
    return;
  it->running = false;
  e->running--;
  if (it->cls == Q_PAGE)
    e->running_pages--;
}

/* Free a finished (or dropped) item that is in no list but `all`. */
static void item_free(item *it) {
  eng *e = it->e;
  if (it->active) {
    curl_multi_remove_handle(e->multi, it->h);
    it->active = false;
    free(it->x.buf);
  }
  if (it->h)
    crawl_handle_put(e->c, it->h);
  not_running(it);
  release_slot(it);
  conc_loop_timer_destroy(it->timer);
  fetch_result_free(&it->r);
  strvec_free(&it->imgs);
  if (it->prev_all)
    it->prev_all->next_all = it->next_all;
  else
    e->all = it->next_all;
  if (it->next_all)
    it->next_all->prev_all = it->prev_all;
  if (--e->left[it->cls] == 0)
    conc_coro_event_set(&e->ev);
  free(it);
}

static int arm(item *it, conc_timer_fn fn, double seconds) {
  if (!it->timer) {
    int rc = conc_loop_timer_create(it->e->loop, fn, it, &it->timer);
    if (rc < 0)
      return rc;
  }
  return conc_loop_timer_start(it->timer, seconds);
}

/* ---- transfers ---- */

static void dispatch(eng *e);


/* A page's new image address (on a pool thread): kept in the item, queued
 * by the loop afterwards. */
static void collect(void *ctx, const char *url) {
  item *it = ctx;
  if (crawl_image_want(it->e->c, url))
    strvec_push(&it->imgs, url);
}

/* The crawl's part of an outcome: extraction, hashing, the file. */
static void *outcome(void *arg) {
  item *it = arg;
  crawl *c = it->e->c;
  it->worked = true;
  if (it->cls == Q_PAGE)
    crawl_page_done(c, it->url, &it->r, &it->e->links[it->index], collect,
                    it);
  else
    crawl_image_done(c, it->url, &it->r);
  return NULL;
}

/* Back on the loop: queue the images a page found, free the item. */
static void settle(item *it) {
  eng *e = it->e;
  for (size_t i = 0; i < it->imgs.n; i++) {
    item *im = item_new(e, Q_IMAGE, it->imgs.v[i], 0);
    if (im)
      fifo_push(&e->q[Q_IMAGE], im);
  }
  it->posting = false;
  item_free(it);
}

/* A coroutine per successful transfer: the outcome runs on the pool
 * (run_in_executor) while the loop goes on with the transfers. */
static int post(void *arg, void **result) {
  (void)result;
  item *it = arg;
  void *r;
  if (conc_coro_run_in_executor(it->e->pool, outcome, it, &r) != 0 &&
      !it->worked)
    outcome(it); /* not run (no memory, loop closing): here, then */
  eng *e = it->e;
  settle(it);
  dispatch(e);
  return 0;
}

/* The item's outcome: to the crawl, then freed. */
static void finish(item *it) {
  eng *e = it->e;
  if (it->r.kind != FETCH_OK && it->r.attempts > 1) {
    size_t n = strlen(it->r.error);
    snprintf(it->r.error + n, sizeof it->r.error - n, " (after %u attempts)",
             it->r.attempts);
  }
  it->posting = true;
  if (it->r.kind == FETCH_OK && e->pool &&
      conc_coro_spawn(e->loop, post, it, NULL, NULL) == 0)
    return;
  outcome(it); /* failures: counting only */
  settle(it);
}

static void start_transfer(item *it) {
  eng *e = it->e;
  crawl *c = e->c;
  if (!it->h)
    it->h = crawl_handle_get(c);
  if (!it->h) {
    it->r.kind = FETCH_OTHER;
    snprintf(it->r.error, sizeof it->r.error, "no curl handle");
    finish(it);
    return;
  }
  fetch_setup(it->h, it->cls == Q_PAGE ? &c->page_fo : &c->fo, it->url,
              &it->x);
  curl_easy_setopt(it->h, CURLOPT_PRIVATE, it);
  CURLMcode mc = curl_multi_add_handle(e->multi, it->h);
  if (mc != CURLM_OK) {
    free(it->x.buf);
    it->x.buf = NULL;
    it->r.kind = FETCH_OTHER;
    snprintf(it->r.error, sizeof it->r.error, "%s", curl_multi_strerror(mc));
    finish(it);
    return;
  }
  it->active = true;
}

static void on_paced(conc_loop_timer *t, void *arg) {
  (void)t;
  item *it = arg;
  eng *e = it->e;
  start_transfer(it);
  dispatch(e);
}

static void on_backoff(conc_loop_timer *t, void *arg) {
  (void)t;
  item *it = arg;
  eng *e = it->e;
  fifo_push_front(&e->q[it->cls], it);
  dispatch(e);
}

/* A transfer of it ended with rc (its handle still in the multi). */
static void done(item *it, CURLcode rc) {
  eng *e = it->e;
  crawl *c = e->c;
  curl_multi_remove_handle(e->multi, it->h);
  it->active = false;
  fetch_finish(it->h, rc, &it->x, &it->r);
  crawl_handle_put(c, it->h);
  it->h = NULL;
  release_slot(it);
  not_running(it);
  if (fetch_retryable(&it->r) &&
      it->r.attempts <= (unsigned)c->fo.retries && !crawl_stopped(c)) {
    int arc = arm(it, on_backoff, fetch_backoff(&c->fo, it->r.attempts));
    if (arc == 0)
      return;
  }
  finish(it);
}

/* Start what may start: pages first up to their share, then images. */
static void dispatch(eng *e) {
  crawl *c = e->c;
  while (e->running < e->max && !crawl_stopped(c)) {
    item *it;
    if (e->q[Q_PAGE].head &&
        (e->running_pages < e->max_pages || !e->q[Q_IMAGE].head))
      it = fifo_pop(&e->q[Q_PAGE]);
    else if (e->q[Q_IMAGE].head)
      it = fifo_pop(&e->q[Q_IMAGE]);
    else
      break;
    double wait = 0;
    if (c->lim) {
      int rc = limits_acquire(c->lim, it->url, 0, &it->slot);
      if (rc == CONC_ETIMEDOUT) {
        fifo_push(&e->parked[it->cls][it->slot], it);
        continue;
      }
      it->held = rc == 0; /* any other error: go on without a slot */
      wait = limits_rate_reserve(c->lim);
    }
    it->running = true;
    e->running++;
    if (it->cls == Q_PAGE)
      e->running_pages++;
    if (wait > 0 && arm(it, on_paced, wait) == 0)
      continue;
    start_transfer(it);
  }
}

/* Collect finished transfers, then start more. */
static void check_done(eng *e) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(e->multi, &left))) {
    if (m->msg != CURLMSG_DONE)
      continue;
    char *p = NULL;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &p);
    if (p)
      done((item *)(void *)p, m->data.result);
  }
  dispatch(e);
}

/* ---- libcurl's multi-socket callbacks on conc's loop ---- */

static void on_fd(conc_loop *l, int fd, unsigned ev, void *arg) {
  (void)l;
  eng *e = arg;
  int still,
      flags = (ev & CONC_POLL_IN ? CURL_CSELECT_IN : 0) |
              (ev & CONC_POLL_OUT ? CURL_CSELECT_OUT : 0) |
              (ev & (CONC_POLL_ERR | CONC_POLL_HUP) ? CURL_CSELECT_ERR : 0);
  curl_multi_socket_action(e->multi, fd, flags, &still);
  check_done(e);
}

static int sock_cb(CURL *h, curl_socket_t s, int what, void *u, void *sp) {
  (void)h;
  (void)sp;
  eng *e = u;
  if (what == CURL_POLL_REMOVE) {
    conc_loop_unwatch(e->loop, s);
    return 0;
  }
  unsigned ev = (what & CURL_POLL_IN ? CONC_POLL_IN : 0) |
                (what & CURL_POLL_OUT ? CONC_POLL_OUT : 0);
  return conc_loop_watch(e->loop, s, ev, on_fd, e) == 0 ? 0 : -1;
}

static void on_curl_timer(conc_loop_timer *t, void *arg) {
  (void)t;
  eng *e = arg;
  int still;
  curl_multi_socket_action(e->multi, CURL_SOCKET_TIMEOUT, 0, &still);
  check_done(e);
}

static int timer_cb(CURLM *m, long ms, void *u) {
  (void)m;
  eng *e = u;
  if (ms < 0)
    return conc_loop_timer_stop(e->curl_timer) == 0 ? 0 : -1;
  return conc_loop_timer_start(e->curl_timer, (double)ms / 1000) == 0 ? 0
                                                                      : -1;
}

/* ---- the scanner coroutine ---- */

/* Drop every live item (stop), except those whose outcome is being
 * settled (their coroutines free them soon). */
static void drop_all(eng *e) {
  for (int k = 0; k < 2; k++) {
    e->q[k].head = e->q[k].tail = NULL;
    for (unsigned s = 0; s < LIMITS_SLOTS; s++)
      e->parked[k][s].head = e->parked[k][s].tail = NULL;
  }
  for (item *it = e->all, *next; it; it = next) {
    next = it->next_all;
    if (!it->posting)
      item_free(it);
  }
}

/* Wait until no item of class cls is left (dropping them on stop). */
static void wait_for(eng *e, int cls) {
  crawl *c = e->c;
  while (e->left[cls] > 0) {
    if (crawl_stopped(c)) {
      drop_all(e);
      if (e->left[cls] == 0)
        return;
    }
    conc_coro_event_clear(&e->ev);
    if (e->left[cls] > 0)
      conc_coro_event_wait(&e->ev, 0.05);
  }
}

/* crawl_scan's level loop, with transfers in place of page tasks. */
static int scanner(void *arg, void **result) {
  (void)result;
  eng *e = arg;
  crawl *c = e->c;
  strset pages = {0};
  strvec level = {0};
  long admitted = 1;
  if (strvec_push(&level, c->start) < 0 || strset_add(&pages, c->start, NULL) < 0)
    e->error = CONC_ENOMEM;
  for (int depth = 0; !e->error && level.n > 0 && !crawl_stopped(c);
       depth++) {
    e->links = calloc(level.n, sizeof *e->links);
    if (!e->links) {
      e->error = CONC_ENOMEM;
      break;
    }
    for (size_t i = 0; i < level.n && !crawl_stopped(c); i++) {
      if (!crawl_robots_allowed(c, level.v[i])) {
        atomic_fetch_add_explicit(&c->ctr->robots_denied, 1,
                                  memory_order_relaxed);
        continue;
      }
      item *it = item_new(e, Q_PAGE, level.v[i], i);
      if (it)
        fifo_push(&e->q[Q_PAGE], it);
    }
    dispatch(e);
    wait_for(e, Q_PAGE);
    strvec next = {0};
    bool deeper = c->o->max_depth < 0 || depth + 1 <= c->o->max_depth;
    for (size_t i = 0; i < level.n; i++) {
      for (size_t k = 0; deeper && k < e->links[i].n; k++) {
        if (admitted >= c->o->max_pages)
          break;
        if (strset_add(&pages, e->links[i].v[k], NULL) == 1) {
          strvec_push(&next, e->links[i].v[k]);
          admitted++;
        }
      }
      strvec_free(&e->links[i]);
    }
    free(e->links);
    e->links = NULL;
    strvec_free(&level);
    level = next;
  }
  strvec_free(&level);
  strset_free(&pages, NULL);
  wait_for(e, Q_IMAGE);
  if (e->error)
    drop_all(e);
  return 0;
}

static int run(crawl *c) {
  eng e;
  memset(&e, 0, sizeof e);
  e.c = c;
  e.max = c->o->connections ? c->o->connections : 1;
  unsigned iw;
  crawl_split(e.max, &e.max_pages, &iw);
  conc_coro_event_init(&e.ev);
  conc_thread_pool_options po;
  conc_thread_pool_options_init(&po);
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  po.max_workers = ncpu < 1 ? 1 : ncpu > 4 ? 4 : (unsigned)ncpu;
  po.thread_name_prefix = "crawl-post";
  po.flags = CONC_EXECUTOR_NO_EXIT_HOOK;
  int rc = conc_thread_pool_create(&po, &e.pool);
  if (rc == 0)
    rc = conc_loop_create(NULL, &e.loop);
  if (rc == 0)
    rc = conc_loop_timer_create(e.loop, on_curl_timer, &e, &e.curl_timer);
  if (rc == 0 && !(e.multi = curl_multi_init()))
    rc = CONC_ENOMEM;
  if (rc == 0) {
    curl_multi_setopt(e.multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(e.multi, CURLMOPT_SOCKETDATA, &e);
    curl_multi_setopt(e.multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(e.multi, CURLMOPT_TIMERDATA, &e);
    c->progress = crawl_progress_start(c->o);
    /* the scanner calls into libcurl: a roomy stack */
    conc_coro_options co;
    conc_coro_options_init(&co);
    co.stack_size = 1u << 20;
    rc = conc_coro_spawn(e.loop, scanner, &e, &co, NULL);
    if (rc == 0)
      rc = conc_loop_run(e.loop);
    if (rc == 0)
      rc = e.error;
    drop_all(&e);
    conc_progress_stop(c->progress);
    c->progress = NULL;
  }
  if (e.multi)
    curl_multi_cleanup(e.multi);
  conc_loop_timer_destroy(e.curl_timer);
  if (e.loop)
    conc_loop_destroy(e.loop);
  conc_coro_event_destroy(&e.ev);
  if (e.pool)
    conc_executor_destroy(e.pool);
  c->ctr->pids[0] = getpid();
  if (rc < 0) {
    fprintf(stderr, "conc-crawl: coroutines engine: %s\n", conc_strerror(rc));
    return -1;
  }
  return 0;
}

const crawl_engine crawl_engine_coroutines = {"coroutines", run};
