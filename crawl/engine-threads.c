/* engine-threads.c - the threads engine: conc thread pools.
 *
 * DESIGN: crawl_scan runs on the calling thread and submits one task per
 * page of a level to the page pool; page tasks hand new image addresses
 * to sink(), which submits an image task to the image pool without a
 * future (fire and forget).  Two pools, not one: the level loop waits for
 * each level's pages, and page tasks queued behind image tasks would hold
 * back the discovery of the next level (a pool runs tasks submitted by
 * its own tasks first).  crawl_split shares `connections` between them;
 * conc_executor_destroy at the end waits for every image task.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <conc/error.h>
#include <conc/thread_pool.h>

#include "engine.h"

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

typedef struct sink_ctx {
  crawl *c;
  conc_executor *ex;
} sink_ctx;

static void sink(void *ctx, const char *url) {
  sink_ctx *s = ctx;
  size_t n = strlen(url) + 1;
  img_task *t = malloc(sizeof *t + n);
  if (!t)
    return;
  t->c = s->c;
  memcpy(t->url, url, n);
  if (conc_executor_submit(s->ex, image_run, t, NULL) < 0)
    free(t);
}

static conc_executor *pool(unsigned workers, const char *name) {
  conc_thread_pool_options po;
  conc_thread_pool_options_init(&po);
  po.max_workers = workers;
  po.thread_name_prefix = name;
  po.flags = CONC_EXECUTOR_NO_EXIT_HOOK;
  conc_executor *ex = NULL;
  int rc = conc_thread_pool_create(&po, &ex);
  if (rc < 0)
    fprintf(stderr, "conc-crawl: thread pool: %s\n", conc_strerror(rc));
  return ex;
}

static int run(crawl *c) {
  unsigned pw, iw;
  crawl_split(c->o->connections, &pw, &iw);
  conc_executor *pages = pool(pw, "crawl-page"), *images = pool(iw, "crawl-img");
  if (!pages || !images) {
    if (pages)
      conc_executor_destroy(pages);
    if (images)
      conc_executor_destroy(images);
    return -1;
  }
  c->progress = crawl_progress_start(c->o);
  sink_ctx s = {c, images};
  int rc = crawl_scan(c, pages, sink, &s);
  conc_executor_destroy(pages);
  conc_executor_destroy(images);
  conc_progress_stop(c->progress);
  c->progress = NULL;
  c->ctr->pids[0] = getpid();
  if (rc < 0) {
    fprintf(stderr, "conc-crawl: %s\n", conc_strerror(rc));
    return -1;
  }
  return 0;
}

const crawl_engine crawl_engine_threads = {"threads", run};

const crawl_engine *crawl_engine_find(const char *name) {
  if (strcmp(name, crawl_engine_threads.name) == 0)
    return &crawl_engine_threads;
  if (strcmp(name, crawl_engine_processes.name) == 0)
    return &crawl_engine_processes;
  if (strcmp(name, crawl_engine_coroutines.name) == 0)
    return &crawl_engine_coroutines;
  return NULL;
}
