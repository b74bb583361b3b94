/* map.c - ordered map over any executor (Executor.map).
 *
 * DESIGN
 * A ring of at most buffersize in-flight submissions, in input order.  Each
 * holds one future: for chunksize 1 the future of fn(arg) itself, else the
 * future of a chunk task that runs fn over up to chunksize inputs and
 * stores the results in the chunk.  conc_map_next waits for the head of the
 * ring, yields its results one by one, then releases it and tops the ring
 * up from the source: inputs are read and submitted as results are
 * consumed, so mapping 10^7 items never creates 10^7 futures.
 *
 * A chunk stops at the first failing item (the task context records the
 * failure); the items before it are yielded, then the error, as Python
 * raises at the failing item.  Everything runs on the caller's thread
 * except the tasks; the map object is not shared.
 */
#include "executor-int.h"
#include "conc/progress.h"

typedef struct chunk {
  conc_fn fn;
  size_t n, ndone;
  void **args;    /* n inputs */
  void **results; /* n results */
} chunk;

typedef struct slot {
  conc_future *f;
  chunk *c;    /* NULL for chunksize 1 and for task maps */
  size_t bpos; /* task maps with chunks: next item in the batch output */
} slot;

struct conc_map {
  conc_executor *ex;
  conc_fn fn;
  void *const *args;
  size_t n, pos;
  conc_map_source_fn source;
  void *ctx;
  bool src_end;
  size_t chunksize, cap;
  double deadline;
  slot *ring;
  size_t rhead, rcount, ypos;
  int err;
  int err_detail;
  char *err_msg;
  bool ended;
  conc_progress *progress;
  /* task maps (conc_executor_map_task) */
  const char *task;
  const conc_buf *inputs;
  conc_future *hold;   /* keeps the last yielded output alive */
  conc_bytes view;     /* the last yielded item of a batch */
};

void conc_map_options_init(conc_map_options *o) {
  if (!o)
    return;
  memset(o, 0, sizeof *o);
  o->size = sizeof *o;
  o->chunksize = 1;
  o->buffersize = 0;
  o->timeout = -1;
}

static void *chunk_run(void *arg) {
  chunk *c = arg;
  conc__task_ctx *ctx = conc__task_ctx_get();
  for (size_t i = 0; i < c->n; i++) {
    void *r = c->fn(c->args[i]);
    if (ctx && ctx->outcome != 0)
      break;
    c->results[i] = r;
    c->ndone = i + 1;
  }
  return c;
}

static void chunk_free(chunk *c) {
  if (c) {
    conc__free(c->args);
    conc__free(c);
  }
}

static chunk *chunk_new(conc_fn fn, size_t n) {
  chunk *c = conc__malloc(sizeof *c);
  if (!c)
    return NULL;
  c->args = conc__malloc(2 * n * sizeof(void *));
  if (!c->args) {
    conc__free(c);
    return NULL;
  }
  c->results = c->args + n;
  c->fn = fn;
  c->n = 0;
  c->ndone = 0;
  return c;
}

static void end_with(conc_map *m, int err, int detail, const char *msg) {
  if (m->ended)
    return;
  m->ended = true;
  m->err = err;
  m->err_detail = detail;
  if (msg)
    m->err_msg = conc__strdup(msg);
}

/* 1 with *arg, 0 at the end, <0 error (map ended). */
static int next_input(conc_map *m, void **arg) {
  if (m->src_end)
    return 0;
  if (m->source) {
    int rc = m->source(m->ctx, arg);
    if (rc == 1)
      return 1;
    m->src_end = true;
    if (rc < 0)
      end_with(m, rc, 0, "map source failed");
    return rc < 0 ? rc : 0;
  }
  if (m->pos < m->n) {
    *arg = m->args[m->pos++];
    return 1;
  }
  m->src_end = true;
  return 0;
}

/* Submit more work until the ring is full or the inputs end. */
static void fill(conc_map *m) {
  while (!m->ended && !m->src_end && m->rcount < m->cap) {
    slot s = {NULL, NULL, 0};
    int rc;
    if (m->task) {
      if (m->pos >= m->n) {
        m->src_end = true;
        return;
      }
      if (m->chunksize == 1) {
        const conc_buf *in = &m->inputs[m->pos++];
        rc = conc_executor_submit_task(m->ex, m->task, in->data, in->len,
                                       NULL, &s.f);
      } else {
        size_t k = m->n - m->pos < m->chunksize ? m->n - m->pos : m->chunksize;
        conc_bytes b = {0};
        rc = conc__batch_encode(m->task, m->inputs + m->pos, k, &b);
        if (rc == 0)
          rc = conc_executor_submit_task(m->ex, "conc.batch", b.data, b.len,
                                         NULL, &s.f);
        conc_bytes_free(&b);
        m->pos += k;
      }
    } else if (m->chunksize == 1) {
      void *arg;
      if (next_input(m, &arg) != 1)
        return;
      rc = conc_executor_submit(m->ex, m->fn, arg, &s.f);
    } else {
      s.c = chunk_new(m->fn, m->chunksize);
      if (!s.c) {
        end_with(m, CONC_ENOMEM, 0, NULL);
        return;
      }
      void *arg;
      while (s.c->n < m->chunksize && next_input(m, &arg) == 1)
        s.c->args[s.c->n++] = arg;
      if (s.c->n == 0 || m->ended) {
        chunk_free(s.c);
        return;
      }
      rc = conc_executor_submit(m->ex, chunk_run, s.c, &s.f);
    }
    if (rc) {
      chunk_free(s.c);
      end_with(m, rc, 0, NULL);
      return;
    }
    m->ring[(m->rhead + m->rcount++) % m->cap] = s;
  }
}

static int map_create(conc_executor *ex, conc_fn fn, void *const *args,
                      size_t n, conc_map_source_fn source, void *ctx,
                      const char *task, const conc_buf *inputs,
                      const conc_map_options *o, conc_map **out) {
  if (!out)
    return CONC_EINVAL;
  *out = NULL;
  conc_map_options def;
  if (!o) {
    conc_map_options_init(&def);
    o = &def;
  }
  if (!ex || (!fn && !task) ||
      o->size < offsetof(conc_map_options, timeout) + sizeof(o->timeout) ||
      o->chunksize == 0 || o->chunksize > (SIZE_MAX >> 4))
    return CONC_EINVAL;
  conc_map *m = conc__calloc(1, sizeof *m);
  if (!m)
    return CONC_ENOMEM;
  m->ex = ex;
  m->fn = fn;
  m->task = task;
  m->inputs = inputs;
  m->args = args;
  m->n = n;
  m->source = source;
  m->ctx = ctx;
  m->chunksize = o->chunksize;
  m->progress = o->size >= offsetof(conc_map_options, progress) +
                                sizeof(o->progress)
                    ? o->progress
                    : NULL;
  m->cap = o->buffersize ? o->buffersize : 32 * (size_t)ex->max_workers;
  if (m->cap == 0)
    m->cap = 32;
  m->deadline = conc__deadline(o->timeout);
  m->ring = conc__malloc(m->cap * sizeof *m->ring);
  if (!m->ring) {
    conc__free(m);
    return CONC_ENOMEM;
  }
  fill(m);
  if (m->ended && m->rcount == 0 &&
      (m->err == CONC_ESHUTDOWN || m->err == CONC_EBROKEN ||
       m->err == CONC_ENOMEM)) {
    int rc = m->err;
    conc_map_destroy(m);
    return rc;
  }
  *out = m;
  return 0;
}

int conc_executor_map(conc_executor *ex, conc_fn fn, void *const *args,
                      size_t n, const conc_map_options *opts,
                      conc_map **out) {
  if (!args && n) {
    if (out)
      *out = NULL;
    return CONC_EINVAL;
  }
  return map_create(ex, fn, args, n, NULL, NULL, NULL, NULL, opts, out);
}

int conc_executor_map_source(conc_executor *ex, conc_fn fn,
                             conc_map_source_fn next, void *ctx,
                             const conc_map_options *opts, conc_map **out) {
  if (!next) {
    if (out)
      *out = NULL;
    return CONC_EINVAL;
  }
  return map_create(ex, fn, NULL, 0, next, ctx, NULL, NULL, opts, out);
}

int conc_executor_map_task(conc_executor *ex, const char *name,
                           const conc_buf *inputs, size_t n,
                           const conc_map_options *opts, conc_map **out) {
  if (out)
    *out = NULL;
  if (!name || (!inputs && n))
    return CONC_EINVAL;
  conc_task_fn fn;
  int rc = conc_task_lookup(name, &fn);
  if (rc)
    return rc;
  for (size_t i = 0; i < n; i++)
    if (!inputs[i].data && inputs[i].len)
      return CONC_EINVAL;
  return map_create(ex, NULL, NULL, n, NULL, NULL, name, inputs, opts, out);
}

static void drop_head(conc_map *m) {
  slot *s = &m->ring[m->rhead];
  conc_future_release(s->f);
  chunk_free(s->c);
  m->rhead = (m->rhead + 1) % m->cap;
  m->rcount--;
  m->ypos = 0;
}

/* The head failed or timed out: end the map, cancel the rest. */
static int fail_head(conc_map *m, int rc, int detail, const char *msg) {
  end_with(m, rc, detail, msg);
  conc_progress_add(m->progress, 1, 1);
  for (size_t i = 0; i < m->rcount; i++)
    conc_future_cancel(m->ring[(m->rhead + i) % m->cap].f);
  return rc;
}

static int next_task(conc_map *m, void **result) {
  for (;;) {
    if (m->ended)
      return m->err;
    if (m->rcount == 0) {
      fill(m);
      if (m->rcount == 0)
        return m->ended ? m->err : 0;
    }
    slot *s = &m->ring[m->rhead];
    void *r = NULL;
    int rc = conc_future_result_until(s->f, m->deadline, &r);
    if (rc == CONC_ETIMEDOUT) {
      end_with(m, rc, 0, NULL);
      return rc;
    }
    if (rc != 0) {
      int detail;
      const char *msg;
      conc_future_error(s->f, &detail, &msg);
      return fail_head(m, rc, detail, msg);
    }
    if (m->chunksize == 1) {
      m->hold = s->f; /* released at the next call */
      s->f = NULL;
      drop_head(m);
      fill(m);
      if (result)
        *result = r;
      conc_progress_add(m->progress, 1, 0);
      return 1;
    }
    conc__batch_res br;
    rc = conc__batch_item(r, &s->bpos, &br);
    if (rc == 0) { /* chunk fully yielded */
      drop_head(m);
      fill(m);
      continue;
    }
    if (rc < 0)
      return fail_head(m, rc, 0, "bad conc.batch output");
    if (br.outcome != 0) {
      char *msg = conc__malloc((size_t)br.msg_len + 1);
      if (msg) {
        memcpy(msg, br.msg, br.msg_len);
        msg[br.msg_len] = 0;
      }
      rc = fail_head(m, br.outcome, br.code, msg);
      conc__free(msg);
      return rc;
    }
    m->view = br.out;
    if (result)
      *result = &m->view;
    conc_progress_add(m->progress, 1, 0);
    return 1;
  }
}

int conc_map_next(conc_map *m, void **result) {
  if (result)
    *result = NULL;
  if (!m)
    return CONC_EINVAL;
  if (m->hold) { /* the caller is done with the last output */
    conc_future_release(m->hold);
    m->hold = NULL;
  }
  if (m->task)
    return next_task(m, result);
  for (;;) {
    if (m->rcount == 0) {
      fill(m);
      if (m->rcount == 0)
        return m->ended ? m->err : 0;
    }
    slot *s = &m->ring[m->rhead];
    if (s->c && m->ypos > 0 && m->ypos < s->c->ndone) {
      /* the head chunk is done: yield without touching its future */
      if (result)
        *result = s->c->results[m->ypos];
      m->ypos++;
      conc_progress_add(m->progress, 1, 0);
      return 1;
    }
    void *r = NULL;
    int rc = conc_future_result_until(s->f, m->deadline, &r);
    if (rc == CONC_ETIMEDOUT) {
      end_with(m, rc, 0, NULL);
      return rc;
    }
    if (s->c && m->ypos < s->c->ndone) {
      if (result)
        *result = s->c->results[m->ypos];
      m->ypos++;
      conc_progress_add(m->progress, 1, 0);
      return 1;
    }
    if (rc != 0) {
      int detail;
      const char *msg;
      conc_future_error(s->f, &detail, &msg);
      end_with(m, rc, detail, msg);
      conc_progress_add(m->progress, 1, 1);
      /* the rest will never be yielded: cancel what has not started */
      for (size_t i = 0; i < m->rcount; i++)
        conc_future_cancel(m->ring[(m->rhead + i) % m->cap].f);
      return rc;
    }
    if (!s->c) {
      drop_head(m);
      fill(m);
      if (result)
        *result = r;
      conc_progress_add(m->progress, 1, 0);
      return 1;
    }
    drop_head(m); /* chunk fully yielded */
    fill(m);
  }
}

int conc_map_error(const conc_map *m, int *detail, const char **message) {
  if (detail)
    *detail = 0;
  if (message)
    *message = NULL;
  if (!m)
    return CONC_EINVAL;
  if (!m->ended || m->err == 0)
    return 0;
  if (detail)
    *detail = m->err_detail;
  if (message)
    *message = m->err_msg ? m->err_msg : conc_strerror(m->err);
  return m->err;
}

void conc_map_destroy(conc_map *m) {
  if (!m)
    return;
  for (size_t i = 0; i < m->rcount; i++)
    conc_future_cancel(m->ring[(m->rhead + i) % m->cap].f);
  while (m->rcount) {
    conc_future_wait(m->ring[m->rhead].f, -1);
    drop_head(m);
  }
  if (m->hold)
    conc_future_release(m->hold);
  conc__free(m->ring);
  conc__free(m->err_msg);
  conc__free(m);
}
