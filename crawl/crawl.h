/* crawl.h - the crawler's state and the work every engine shares.
 *
 * A crawl starts from one URL and stays on its host for pages (links to
 * other hosts are counted, not followed); images may live anywhere
 * http(s).  Pages are crawled breadth first, one depth level at a time:
 * the links of a level are merged in a fixed order (page order in the
 * level, then document order) before the next level starts, so the set of
 * pages admitted under --max-pages and --depth is the same whatever the
 * engine and the timing.  Every URL is normalised (url.h); pages and
 * images are each fetched at most once per URL.  A page that redirects is
 * one request: its target is a link of the next level like any other
 * (not fetched again when already seen; a redirect loop ends there), so
 * a crawl makes exactly the requests it needs.  Image redirects are
 * followed by libcurl (up to max_redirects).
 *
 * Engines (engine.h) decide where the work runs.  They call:
 *   crawl_scan()   the level loop; pages are fetched on an executor and
 *                  each new image address goes to the engine's sink;
 *   crawl_image()  fetch and store one image (blocking);
 * or, for an engine that runs transfers itself, the non-blocking halves
 * crawl_page_done() / crawl_image_want() / crawl_image_done().
 *
 * Counters (crawl_counters) are atomics with no pointers inside, so they
 * may live in shared memory and be updated by several processes.  Per-URL
 * errors go to c->on_error.
 *
 * Thread safety: crawl_image, crawl_image_want/done and the sink may run
 * on any thread; c->lock guards the robots cache, the image set and the
 * pool of curl handles.
 */
#ifndef CRAWL_CRAWL_H
#define CRAWL_CRAWL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include <conc/executor.h>
#include <conc/progress.h>
#include <conc/sync.h>

#include "fetch.h"
#include "store.h"
#include "strset.h"

typedef struct crawl_opts {
  const char *start;   /* start URL as given */
  const char *engine;  /* "threads", "processes" */
  const char *out_dir;
  unsigned connections; /* concurrent transfers in all */
  unsigned per_host;
  int max_depth;        /* < 0: unlimited */
  long max_pages;       /* pages admitted at most (the start counts) */
  double rate;          /* requests per second, 0: unlimited */
  bool robots;          /* honour robots.txt */
  const char *user_agent;
  fetch_opts fetch;     /* timeouts, retries, caps (limits/stop set later) */
  const char *progress; /* "auto", "bar", "plain", "off" */
  const char *json;     /* summary file, NULL: stdout */
} crawl_opts;

void crawl_opts_init(crawl_opts *o);

typedef struct crawl_counters {
  atomic_ullong pages;          /* fetched */
  atomic_ullong images;         /* downloaded and stored */
  atomic_ullong images_resumed; /* found in the store of an earlier run */
  atomic_ullong files;          /* new files written */
  atomic_ullong bytes;          /* body bytes received (decoded) */
  atomic_ullong requests;       /* HTTP requests, robots.txt included */
  atomic_ullong robots_denied;  /* URLs not fetched because of robots.txt */
  atomic_ullong refused;        /* addresses refused (scheme, syntax) */
  atomic_ullong offsite;        /* links to other hosts, not followed */
  atomic_ullong failures[FETCH_KINDS]; /* by kind, pages and images */
  atomic_int pids[4];           /* processes that did work (engines) */
} crawl_counters;

typedef struct crawl crawl;

/* what: "page", "image" or "robots" (robots.txt unreachable: its
 * host is then disallowed, RFC 9309 §2.3.1.4). */
typedef void (*crawl_error_fn)(crawl *c, const char *what, const char *url,
                               int kind, const char *message);
/* A new image address (called once per address, any thread). */
typedef void (*crawl_sink_fn)(void *ctx, const char *url);

typedef struct crawl_error {
  char *what, *url, *message;
  int kind;
} crawl_error;

struct crawl {
  const crawl_opts *o;
  fetch_opts fo;         /* o->fetch with limits and stop set */
  fetch_opts page_fo;    /* fo for pages: redirects not followed; the
                            target becomes a link of the page, so a page
                            reached twice is fetched once */
  crawl_counters *ctr;   /* heap or shared memory */
  limits *lim;           /* heap or shared memory */
  const atomic_int *stop;
  store *st;
  conc_progress *progress; /* NULL: not counted here */
  char *start;           /* normalised start URL */
  char host[256];        /* its host[:port] */
  conc_lock lock;        /* robots, images, handles, errors */
  strset robots;         /* "scheme://host" -> robots * */
  strset images;         /* image URLs seen */
  void **handles;        /* idle curl handles */
  size_t n_handles, cap_handles;
  crawl_error_fn on_error;
  crawl_error *errors;   /* collected by crawl_collect_error */
  size_t n_errors, cap_errors;
};

/* Set up c for o.  ctr, lim and stop are the caller's (shared memory for
 * the processes engine).  Opens the store.  Returns 0, or -1 with a
 * message on stderr. */
int crawl_init(crawl *c, const crawl_opts *o, crawl_counters *ctr,
               limits *lim, const atomic_int *stop);
void crawl_destroy(crawl *c);

/* The default on_error: keep the error in c->errors (under c->lock). */
void crawl_collect_error(crawl *c, const char *what, const char *url,
                         int kind, const char *message);

/* Fetch robots.txt of url's host now if not cached (blocking); engines
 * call it for the start URL before forking so processes share it. */
void crawl_robots_prefetch(crawl *c, const char *url);
/* Whether robots.txt allows url (fetching it first if needed). */
bool crawl_robots_allowed(crawl *c, const char *url);

/* The level loop (see the top); pages run on ex.  Returns 0 (also when
 * stopped; see *c->stop) or a negative conc code if ex refused work. */
int crawl_scan(crawl *c, conc_executor *ex, crawl_sink_fn sink, void *ctx);

/* Whether image url is new (first sight in this crawl). */
bool crawl_image_new(crawl *c, const char *url);
/* Fetch and store image url (blocking).  Counts and reports. */
void crawl_image(crawl *c, const char *url);

/* Non-blocking halves for engines that run transfers themselves:
 * crawl_image_want returns false when url needs no transfer (resumed,
 * robots, stopped; counted); crawl_image_done stores and counts the
 * result of a transfer; crawl_page_done extracts a fetched page, adding
 * its links to *links (malloc'd strings) and passing images to sink. */
bool crawl_image_want(crawl *c, const char *url);
void crawl_image_done(crawl *c, const char *url, fetch_result *r);
typedef struct strvec {
  char **v;
  size_t n, cap;
} strvec;
void crawl_page_done(crawl *c, const char *url, fetch_result *r,
                     strvec *links, crawl_sink_fn sink, void *ctx);
/* Append a copy of s.  0, or -1 when out of memory. */
int strvec_push(strvec *v, const char *s);
void strvec_free(strvec *v);

/* A curl handle from c's pool (or a new one) / back to the pool. */
CURL *crawl_handle_get(crawl *c);
void crawl_handle_put(crawl *c, CURL *h);

/* Clean up every idle handle (before fork: a child must not share the
 * parent's connections). */
void crawl_handles_drop(crawl *c);

bool crawl_stopped(const crawl *c);

/* Share `connections` transfers between page workers (a quarter, at least
 * one) and image workers (the rest, at least one). */
void crawl_split(unsigned connections, unsigned *pages, unsigned *images);

/* Start the progress display as o->progress asks (NULL when "off" or on
 * failure); the engine that owns it stops it with conc_progress_stop. */
conc_progress *crawl_progress_start(const crawl_opts *o);

#endif
