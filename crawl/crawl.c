/* crawl.c - the engine-independent part of a crawl (see crawl.h).
 *
 * DESIGN: crawl_scan runs on the engine's control thread and owns the
 * page set and the level vectors (no lock).  Page tasks run on the
 * executor: each fetches one page, extracts it into its own link vector
 * (merged by crawl_scan after the level) and hands new image addresses to
 * the sink at once.  c->lock guards the image set, the robots cache, the
 * handle pool and the error list; c->robots_fetch serialises robots.txt
 * transfers (one per host) without holding c->lock during a transfer.
 * Lock order: robots_fetch before lock.
 */
#include "crawl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <conc/error.h>
#include <conc/future.h>

#include "extract.h"
#include "robots.h"
#include "url.h"

static conc_lock robots_fetch; /* see DESIGN; a zero conc_lock is valid */

void crawl_opts_init(crawl_opts *o) {
  memset(o, 0, sizeof *o);
  o->engine = "processes"; /* the fastest here: docs/crawl.md */
  o->out_dir = "crawl-out";
  o->connections = 16;
  o->per_host = 16;
  o->max_depth = -1;
  o->max_pages = 100000;
  o->robots = true;
  o->user_agent = "conc-crawl/0.1";
  o->progress = "auto";
  o->fetch.connect_timeout = 10;
  o->fetch.timeout = 30;
  o->fetch.retries = 2;
  o->fetch.backoff = 0.25;
  o->fetch.max_redirects = 5;
  o->fetch.max_body = 32ull << 20;
  o->fetch.max_decoded = 64ull << 20;
}

void crawl_split(unsigned connections, unsigned *pages, unsigned *images) {
  *pages = connections / 4 ? connections / 4 : 1;
  *images = connections > *pages ? connections - *pages : 1;
}

bool crawl_stopped(const crawl *c) {
  return atomic_load_explicit(c->stop, memory_order_relaxed) != 0;
}

static void add(atomic_ullong *a, unsigned long long n) {
  atomic_fetch_add_explicit(a, n, memory_order_relaxed);
}

static void progress(crawl *c, size_t done, size_t errors) {
  if (c->progress)
    conc_progress_add(c->progress, done, errors);
}

static void lock(crawl *c) { conc_lock_acquire(&c->lock, -1); }
static void unlock(crawl *c) { conc_lock_release(&c->lock); }

int crawl_init(crawl *c, const crawl_opts *o, crawl_counters *ctr,
               limits *lim, const atomic_int *stop) {
  memset(c, 0, sizeof *c);
  c->o = o;
  c->ctr = ctr;
  c->lim = lim;
  c->stop = stop;
  c->fo = o->fetch;
  c->fo.limits = lim;
  c->fo.stop = stop;
  c->fo.user_agent = o->user_agent;
  c->page_fo = c->fo;
  c->page_fo.no_follow = true;
  c->on_error = crawl_collect_error;
  conc_lock_init(&c->lock, 0);
  int rc = url_normalize(o->start, &c->start);
  if (rc != 0) {
    fprintf(stderr, "conc-crawl: %s: %s\n", o->start,
            rc == URL_ESCHEME ? "only http and https URLs are crawled"
                              : "not a valid absolute URL");
    return -1;
  }
  url_host(c->start, c->host, sizeof c->host);
  char err[512];
  if (store_open(o->out_dir, &c->st, err, sizeof err) < 0) {
    fprintf(stderr, "conc-crawl: %s\n", err);
    return -1;
  }
  return 0;
}

static void free_robots(void *r) { robots_free(r); }

void crawl_destroy(crawl *c) {
  for (size_t i = 0; i < c->n_handles; i++)
    curl_easy_cleanup(c->handles[i]);
  free(c->handles);
  strset_free(&c->robots, free_robots);
  strset_free(&c->images, NULL);
  for (size_t i = 0; i < c->n_errors; i++) {
    free(c->errors[i].what);
    free(c->errors[i].url);
    free(c->errors[i].message);
  }
  free(c->errors);
  store_close(c->st);
  free(c->start);
  conc_lock_destroy(&c->lock);
  memset(c, 0, sizeof *c);
}

void crawl_collect_error(crawl *c, const char *what, const char *url,
                         int kind, const char *message) {
  lock(c);
  if (c->n_errors == c->cap_errors) {
    size_t cap = c->cap_errors ? 2 * c->cap_errors : 64;
    crawl_error *e = realloc(c->errors, cap * sizeof *e);
    if (!e) {
      unlock(c);
      return;
    }
    c->errors = e;
    c->cap_errors = cap;
  }
  crawl_error *e = &c->errors[c->n_errors];
  e->what = strdup(what);
  e->url = strdup(url);
  e->message = strdup(message);
  e->kind = kind;
  if (e->what && e->url && e->message) {
    c->n_errors++;
  } else {
    free(e->what);
    free(e->url);
    free(e->message);
  }
  unlock(c);
}

static void fail(crawl *c, const char *what, const char *url,
                 const fetch_result *r) {
  if (r->kind == FETCH_INTERRUPTED)
    return; /* not a failure of the URL: the crawl was stopped */
  add(&c->ctr->failures[r->kind], 1);
  progress(c, 1, 1);
  c->on_error(c, what, url, r->kind, r->error);
}

CURL *crawl_handle_get(crawl *c) {
  CURL *h = NULL;
  lock(c);
  if (c->n_handles > 0)
    h = c->handles[--c->n_handles];
  unlock(c);
  return h ? h : curl_easy_init();
}

void crawl_handle_put(crawl *c, CURL *h) {
  lock(c);
  if (c->n_handles == c->cap_handles) {
    size_t cap = c->cap_handles ? 2 * c->cap_handles : 16;
    void **v = realloc(c->handles, cap * sizeof *v);
    if (!v) {
      unlock(c);
      curl_easy_cleanup(h);
      return;
    }
    c->handles = v;
    c->cap_handles = cap;
  }
  c->handles[c->n_handles++] = h;
  unlock(c);
}

void crawl_handles_drop(crawl *c) {
  lock(c);
  for (size_t i = 0; i < c->n_handles; i++)
    curl_easy_cleanup(c->handles[i]);
  c->n_handles = 0;
  unlock(c);
}

conc_progress *crawl_progress_start(const crawl_opts *o) {
  if (strcmp(o->progress, "off") == 0)
    return NULL;
  conc_progress_options po;
  conc_progress_options_init(&po);
  po.label = "crawl (pages+images)";
  if (strcmp(o->progress, "bar") == 0)
    po.flags |= CONC_PROGRESS_TTY;
  else if (strcmp(o->progress, "plain") == 0)
    po.flags |= CONC_PROGRESS_PLAIN;
  conc_progress *p = NULL;
  if (conc_progress_start(&p, 0, &po) < 0)
    return NULL;
  return p;
}

/* ---- robots.txt ---- */

/* "scheme://host[:port]" of a normalised URL into key. */
static void origin(const char *url, char *key, size_t cap) {
  const char *p = url_path(url);
  snprintf(key, cap, "%.*s", (int)(p - url), url);
}

static robots *robots_get(crawl *c, const char *key) {
  void *r = NULL;
  lock(c);
  strset_get(&c->robots, key, &r);
  unlock(c);
  return r;
}

static robots *robots_load(crawl *c, const char *url) {
  char key[512], rurl[600];
  origin(url, key, sizeof key);
  robots *r = robots_get(c, key);
  if (r)
    return r;
  conc_lock_acquire(&robots_fetch, -1);
  r = robots_get(c, key);
  if (!r) {
    snprintf(rurl, sizeof rurl, "%s/robots.txt", key);
    CURL *h = crawl_handle_get(c);
    fetch_result fr;
    fetch_url(h, &c->fo, rurl, &fr);
    crawl_handle_put(c, h);
    add(&c->ctr->requests, fr.requests);
    if (fr.kind == FETCH_OK)
      r = robots_parse(fr.body, fr.len, c->o->user_agent);
    else if (fr.kind == FETCH_HTTP_404 || fr.kind == FETCH_HTTP_4XX)
      r = robots_allow_all(); /* unavailable (RFC 9309 §2.3.1.3) */
    else {
      r = robots_disallow_all(); /* unreachable (§2.3.1.4) */
      fail(c, "robots", rurl, &fr);
    }
    fetch_result_free(&fr);
    if (r) {
      lock(c);
      if (strset_add(&c->robots, key, r) != 1) {
        robots_free(r);
        r = NULL;
      }
      unlock(c);
    }
    if (!r)
      r = robots_get(c, key);
  }
  conc_lock_release(&robots_fetch);
  return r;
}

void crawl_robots_prefetch(crawl *c, const char *url) {
  if (c->o->robots)
    robots_load(c, url);
}

bool crawl_robots_allowed(crawl *c, const char *url) {
  if (!c->o->robots)
    return true;
  robots *r = robots_load(c, url);
  return r ? robots_allowed(r, url_path(url)) : true;
}

/* ---- images ---- */

bool crawl_image_new(crawl *c, const char *url) {
  lock(c);
  int rc = strset_add(&c->images, url, NULL);
  unlock(c);
  return rc == 1;
}

bool crawl_image_want(crawl *c, const char *url) {
  if (crawl_stopped(c))
    return false;
  char name[STORE_NAME_MAX];
  unsigned long long size;
  if (store_lookup(c->st, url, name, &size)) {
    add(&c->ctr->images_resumed, 1);
    progress(c, 1, 0);
    return false;
  }
  if (!crawl_robots_allowed(c, url)) {
    add(&c->ctr->robots_denied, 1);
    return false;
  }
  return true;
}

void crawl_image_done(crawl *c, const char *url, fetch_result *r) {
  add(&c->ctr->requests, r->requests);
  if (r->kind != FETCH_OK) {
    fail(c, "image", url, r);
    return;
  }
  char name[STORE_NAME_MAX], err[512];
  bool fresh;
  if (store_put(c->st, url, r->content_type, r->body, r->len, name, &fresh,
                err, sizeof err) < 0) {
    fetch_result io = {.kind = FETCH_IO};
    snprintf(io.error, sizeof io.error, "%.200s", err);
    fail(c, "image", url, &io);
    return;
  }
  add(&c->ctr->images, 1);
  add(&c->ctr->bytes, r->len);
  if (fresh)
    add(&c->ctr->files, 1);
  progress(c, 1, 0);
}

void crawl_image(crawl *c, const char *url) {
  if (!crawl_image_want(c, url))
    return;
  CURL *h = crawl_handle_get(c);
  fetch_result r;
  fetch_url(h, &c->fo, url, &r);
  crawl_handle_put(c, h);
  crawl_image_done(c, url, &r);
  fetch_result_free(&r);
}

/* ---- pages ---- */

int strvec_push(strvec *v, const char *s) {
  if (v->n == v->cap) {
    size_t cap = v->cap ? 2 * v->cap : 16;
    char **n = realloc(v->v, cap * sizeof *n);
    if (!n)
      return -1;
    v->v = n;
    v->cap = cap;
  }
  char *d = strdup(s);
  if (!d)
    return -1;
  v->v[v->n++] = d;
  return 0;
}

void strvec_free(strvec *v) {
  for (size_t i = 0; i < v->n; i++)
    free(v->v[i]);
  free(v->v);
  memset(v, 0, sizeof *v);
}

typedef struct found_ctx {
  crawl *c;
  strvec *links;
  crawl_sink_fn sink;
  void *ctx;
} found_ctx;

static int on_found(void *arg, extract_kind kind, const char *url) {
  found_ctx *f = arg;
  if (kind == EXTRACT_LINK) {
    char host[256];
    if (url_host(url, host, sizeof host) == 0 && strcmp(host, f->c->host) == 0)
      strvec_push(f->links, url);
    else
      add(&f->c->ctr->offsite, 1);
  } else if (crawl_image_new(f->c, url)) {
    f->sink(f->ctx, url);
  }
  return 0;
}

static bool is_html(const char *ct) {
  return ct[0] == 0 || strncasecmp(ct, "text/html", 9) == 0 ||
         strncasecmp(ct, "application/xhtml+xml", 21) == 0;
}

void crawl_page_done(crawl *c, const char *url, fetch_result *r,
                     strvec *links, crawl_sink_fn sink, void *ctx) {
  add(&c->ctr->requests, r->requests);
  if (r->kind != FETCH_OK) {
    fail(c, "page", url, r);
    return;
  }
  found_ctx f = {c, links, sink, ctx};
  if (r->location) { /* a redirect: its target is a link (see crawl.h) */
    char *to = NULL;
    if (url_normalize(r->location, &to) == 0)
      on_found(&f, EXTRACT_LINK, to);
    else
      add(&c->ctr->refused, 1);
    free(to);
    return;
  }
  add(&c->ctr->pages, 1);
  add(&c->ctr->bytes, r->len);
  progress(c, 1, 0);
  if (!is_html(r->content_type))
    return;
  unsigned refused = 0;
  extract_html(r->body, r->len, r->final_url ? r->final_url : url, on_found,
               &f, &refused);
  add(&c->ctr->refused, refused);
}

typedef struct page_task {
  crawl *c;
  const char *url;
  strvec links;
  crawl_sink_fn sink;
  void *ctx;
} page_task;

static void *page_run(void *arg) {
  page_task *t = arg;
  crawl *c = t->c;
  if (crawl_stopped(c))
    return NULL;
  if (!crawl_robots_allowed(c, t->url)) {
    add(&c->ctr->robots_denied, 1);
    return NULL;
  }
  CURL *h = crawl_handle_get(c);
  fetch_result r;
  fetch_url(h, &c->page_fo, t->url, &r);
  crawl_handle_put(c, h);
  crawl_page_done(c, t->url, &r, &t->links, t->sink, t->ctx);
  fetch_result_free(&r);
  return NULL;
}

int crawl_scan(crawl *c, conc_executor *ex, crawl_sink_fn sink, void *ctx) {
  strset pages = {0};
  strvec level = {0};
  int rc = 0;
  long admitted = 1;
  if (strvec_push(&level, c->start) < 0 || strset_add(&pages, c->start, NULL) < 0)
    rc = CONC_ENOMEM;
  for (int depth = 0; rc == 0 && level.n > 0 && !crawl_stopped(c); depth++) {
    page_task *t = calloc(level.n, sizeof *t);
    conc_future **fs = calloc(level.n, sizeof *fs);
    if (!t || !fs) {
      free(t);
      free(fs);
      rc = CONC_ENOMEM;
      break;
    }
    size_t submitted = 0;
    for (size_t i = 0; i < level.n; i++) {
      t[i] = (page_task){c, level.v[i], {0}, sink, ctx};
      rc = conc_executor_submit(ex, page_run, &t[i], &fs[i]);
      if (rc < 0)
        break;
      submitted++;
    }
    for (size_t i = 0; i < submitted; i++) {
      conc_future_wait(fs[i], -1);
      conc_future_release(fs[i]);
    }
    strvec next = {0};
    bool deeper = c->o->max_depth < 0 || depth + 1 <= c->o->max_depth;
    for (size_t i = 0; i < level.n; i++) {
      for (size_t k = 0; deeper && k < t[i].links.n; k++) {
        if (admitted >= c->o->max_pages)
          break;
        if (strset_add(&pages, t[i].links.v[k], NULL) == 1) {
          strvec_push(&next, t[i].links.v[k]);
          admitted++;
        }
      }
      strvec_free(&t[i].links);
    }
    free(t);
    free(fs);
    strvec_free(&level);
    level = next;
  }
  strvec_free(&level);
  strset_free(&pages, NULL);
  return rc;
}
