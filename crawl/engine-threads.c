/* engine-threads.c - the threads engine: one conc thread pool.
 *
 * DESIGN: crawl_scan runs on the calling thread and submits one task per
 * page of a level; page tasks hand new image addresses to sink(), which
 * submits an image task to the same pool without a future (fire and
 * forget).  conc_executor_destroy at the end waits for every image task.
 * The pool has `connections` workers, so at most that many transfers run.
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

static int run(crawl *c) {
  conc_thread_pool_options po;
  conc_thread_pool_options_init(&po);
  po.max_workers = c->o->connections;
  po.thread_name_prefix = "crawl";
  po.flags = CONC_EXECUTOR_NO_EXIT_HOOK;
  conc_executor *ex;
  int rc = conc_thread_pool_create(&po, &ex);
  if (rc < 0) {
    fprintf(stderr, "conc-crawl: thread pool: %s\n", conc_strerror(rc));
    return -1;
  }
  c->progress = crawl_progress_start(c->o);
  sink_ctx s = {c, ex};
  rc = crawl_scan(c, ex, sink, &s);
  conc_executor_destroy(ex);
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
  return NULL;
}
