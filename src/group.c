/* group.c - task groups for coroutines (asyncio.TaskGroup), built on the
 * public coroutine API and a coroutine wait group.
 *
 * DESIGN
 * Everything happens on one loop thread, so the group needs no atomics.
 * Each child runs through a wrapper that calls the user's function, and,
 * if it failed (an error other than CONC_ECANCELED) and it is the first,
 * records the error and cancels every sibling; then it marks itself done
 * in the wait group.  The group is reference-counted: one reference for
 * its owner and one per running child, so a child finishing after
 * conc_coro_group_destroy still finds it.
 */
#include "internal.h"

#include "conc/chan.h"
#include "conc/coro.h"

typedef struct child {
  struct conc_coro_group *g;
  conc_coro_fn fn;
  void *arg;
  conc_coro *h; /* the group's handle (cancellation) */
  bool done;
} child;

struct conc_coro_group {
  unsigned refs;
  int err;
  bool closed;
  conc_coro_wait_group wg;
  child **kids;
  size_t n, cap;
};

static void group_unref(conc_coro_group *g) {
  if (--g->refs)
    return;
  for (size_t i = 0; i < g->n; i++) {
    conc_coro_release(g->kids[i]->h);
    conc__free(g->kids[i]);
  }
  conc__free(g->kids);
  conc_coro_wait_group_destroy(&g->wg);
  conc__free(g);
}

static void cancel_all(conc_coro_group *g, const child *except) {
  for (size_t i = 0; i < g->n; i++)
    if (g->kids[i] != except && !g->kids[i]->done && g->kids[i]->h)
      conc_coro_cancel(g->kids[i]->h);
}

static int child_main(void *arg, void **result) {
  child *c = arg;
  conc_coro_group *g = c->g;
  int rc = c->fn(c->arg, result);
  c->done = true;
  if (rc != 0 && rc != CONC_ECANCELED && g->err == 0) {
    g->err = rc;
    g->closed = true;
    cancel_all(g, c);
  }
  conc_coro_wait_group_done(&g->wg);
  group_unref(g);
  return rc;
}

int conc_coro_group_create(conc_coro_group **out) {
  if (!out)
    return CONC_EINVAL;
  *out = NULL;
  conc_coro_group *g = conc__calloc(1, sizeof *g);
  if (!g)
    return CONC_ENOMEM;
  int rc = conc_coro_wait_group_init(&g->wg);
  if (rc) {
    conc__free(g);
    return rc;
  }
  g->refs = 1;
  *out = g;
  return 0;
}

int conc_coro_group_spawn(conc_coro_group *g, conc_coro_fn fn, void *arg,
                          conc_coro **out) {
  if (out)
    *out = NULL;
  if (!g || !fn)
    return CONC_EINVAL;
  if (!conc_coro_self())
    return CONC_EPERM;
  if (g->closed)
    return CONC_ECLOSED;
  if (g->n == g->cap) {
    size_t cap = g->cap ? 2 * g->cap : 8;
    child **k = conc__realloc(g->kids, cap * sizeof *k);
    if (!k)
      return CONC_ENOMEM;
    g->kids = k;
    g->cap = cap;
  }
  child *c = conc__calloc(1, sizeof *c);
  if (!c)
    return CONC_ENOMEM;
  c->g = g;
  c->fn = fn;
  c->arg = arg;
  int rc = conc_coro_spawn(NULL, child_main, c, NULL, &c->h);
  if (rc) {
    conc__free(c);
    return rc;
  }
  g->kids[g->n++] = c;
  g->refs++;
  conc_coro_wait_group_add(&g->wg, 1);
  if (out)
    *out = conc_coro_retain(c->h);
  return 0;
}

int conc_coro_group_wait(conc_coro_group *g) {
  if (!g)
    return CONC_EINVAL;
  if (!conc_coro_self())
    return CONC_EPERM;
  int rc = conc_coro_wait_group_wait(&g->wg, -1);
  if (rc == CONC_ECANCELED) {
    /* we were cancelled: so are the children; wait for them to end */
    g->closed = true;
    cancel_all(g, NULL);
    while (conc_coro_wait_group_wait(&g->wg, -1) == CONC_ECANCELED)
      ;
    return CONC_ECANCELED;
  }
  g->closed = true;
  return g->err;
}

void conc_coro_group_destroy(conc_coro_group *g) {
  if (!g)
    return;
  g->closed = true;
  cancel_all(g, NULL);
  group_unref(g);
}
