/* engine.h - where a crawl's work runs.
 *
 * An engine gets a crawl set up by main (crawl.h: options, counters and
 * limits in shared memory, store open, the start host's robots.txt
 * already fetched) and runs it to the end or until *c->stop is set.  It
 * owns the progress display (crawl_progress_start) while it runs.  Every
 * engine must produce the same pages, images, files, counters and
 * per-URL errors for the same site: they differ only in where the work
 * runs.
 *
 *   threads      one conc thread pool (conc/thread_pool.h) runs page and
 *                image tasks: crawl_scan + crawl_image.
 *   processes    the seed's design: a scanner process (crawl_scan on its
 *                own pool) puts each image address on a conc_queue; a
 *                downloader process takes them and downloads on its pool;
 *                the parent shows progress and collects errors from a
 *                second queue.
 *   coroutines   one conc loop (conc/net.h) driving libcurl's
 *                multi-socket interface on one thread (engine-coro.c):
 *                fetch_setup / fetch_finish around each transfer,
 *                limits_acquire with timeout 0 and limits_rate_reserve
 *                (on a loop timer) for politeness, backoff on a loop
 *                timer, and crawl_page_done / crawl_image_want /
 *                crawl_image_done for the rest; the level loop is
 *                crawl_scan's, run with transfers in place of page tasks.
 */
#ifndef CRAWL_ENGINE_H
#define CRAWL_ENGINE_H

#include "crawl.h"

typedef struct crawl_engine {
  const char *name;
  /* Returns 0 (also when stopped), or -1 after printing why. */
  int (*run)(crawl *c);
} crawl_engine;

extern const crawl_engine crawl_engine_threads;
extern const crawl_engine crawl_engine_processes;
extern const crawl_engine crawl_engine_coroutines;

/* The engine called name, or NULL. */
const crawl_engine *crawl_engine_find(const char *name);

#endif
