/* bench/pthread-pool.c - the plain mutex+condvar pool with a future per
 * task (see pthread-pool.h).
 *
 * DESIGN: pool->mu guards the queue, pool->stop and pool->idle; workers wait
 * on pool->cv while the queue is empty and the submitter signals one of them
 * per task when some worker is idle.  A record's own mu/cv guard its done
 * flag and result; refs (2 with a future: pool + caller, else 1) is an
 * atomic count, the last release frees the record.  Lock order: never two
 * locks at once. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "pthread-pool.h"

#include <pthread.h>
#include <stdlib.h>

struct pfuture {
  struct pfuture *next;
  ppool_fn fn;
  void *arg;
  void *result;
  int refs;
  int done;
  int waited; /* has a waiter: the completer must broadcast */
  pthread_mutex_t mu;
  pthread_cond_t cv;
};

struct ppool {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pfuture *head, *tail;
  int idle;
  int stop;
  int n;
  pthread_t *threads;
};

static void record_unref(pfuture *f) {
  if (__atomic_sub_fetch(&f->refs, 1, __ATOMIC_ACQ_REL) == 0) {
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cv);
    free(f);
  }
}

static void *worker(void *arg) {
  ppool *p = arg;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (!p->head && !p->stop) {
      p->idle++;
      pthread_cond_wait(&p->cv, &p->mu);
      p->idle--;
    }
    pfuture *f = p->head;
    if (!f) break; /* stop and nothing left */
    p->head = f->next;
    if (!p->head) p->tail = NULL;
    pthread_mutex_unlock(&p->mu);

    void *r = f->fn(f->arg);
    pthread_mutex_lock(&f->mu);
    f->result = r;
    f->done = 1;
    if (f->waited) pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    record_unref(f);

    pthread_mutex_lock(&p->mu);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

ppool *ppool_create(int n) {
  ppool *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->threads = calloc((size_t)n, sizeof *p->threads);
  if (!p->threads) {
    free(p);
    return NULL;
  }
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  for (int i = 0; i < n; i++) {
    if (pthread_create(&p->threads[i], NULL, worker, p) != 0) {
      p->n = i;
      ppool_destroy(p);
      return NULL;
    }
  }
  p->n = n;
  return p;
}

int ppool_submit(ppool *p, ppool_fn fn, void *arg, pfuture **out) {
  pfuture *f = malloc(sizeof *f);
  if (!f) return -1;
  f->next = NULL;
  f->fn = fn;
  f->arg = arg;
  f->result = NULL;
  f->refs = out ? 2 : 1;
  f->done = 0;
  f->waited = 0;
  pthread_mutex_init(&f->mu, NULL);
  pthread_cond_init(&f->cv, NULL);
  pthread_mutex_lock(&p->mu);
  if (p->tail)
    p->tail->next = f;
  else
    p->head = f;
  p->tail = f;
  int wake = p->idle > 0;
  pthread_mutex_unlock(&p->mu);
  if (wake) pthread_cond_signal(&p->cv);
  if (out) *out = f;
  return 0;
}

void *pfuture_result(pfuture *f) {
  pthread_mutex_lock(&f->mu);
  while (!f->done) {
    f->waited = 1;
    pthread_cond_wait(&f->cv, &f->mu);
  }
  void *r = f->result;
  pthread_mutex_unlock(&f->mu);
  return r;
}

void pfuture_release(pfuture *f) { record_unref(f); }

void ppool_destroy(ppool *p) {
  pthread_mutex_lock(&p->mu);
  p->stop = 1;
  pthread_mutex_unlock(&p->mu);
  pthread_cond_broadcast(&p->cv);
  for (int i = 0; i < p->n; i++) pthread_join(p->threads[i], NULL);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->cv);
  free(p->threads);
  free(p);
}
