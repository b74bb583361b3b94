/* pworker.c - a process pool worker: forked by the fork server, it runs
 * the tasks it finds in its request ring and writes their results to its
 * result ring (pchan.h), until an EXIT frame or its parent's death.
 *
 * A task reads its input in place in the ring (or in a mapped memfd for
 * bulk input); its output buffer is the output arena space the parent
 * offered (FF_ARENA), or else free space of the result ring, lent to it
 * (conc__bytes_lend), so the output is written in place; an output that
 * outgrows that space moves to a buffer reused from task to task and is
 * copied into the result ring (or a memfd).  The worker spins about
 * SPIN_NS after its last task before it sleeps on the ring's futex.
 */
#include "executor-int.h"
#include "fsrv.h"
#include "pchan.h"

#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#define SPIN_NS 50000u /* default; the pool sets it (pchan.h spin_ns) */
#define MSG_MAX 4096u
#define RESULT_OK_HEAD 24u /* conc__result_head(0) */

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

typedef struct worker {
  conc__pchan *ch;
  uint64_t spin_ns;
  uint64_t cap;
  unsigned char *req, *rsp;
  int sock, evfd;
  size_t ntasks;
  conc_task_fn *fns;
  conc_bytes out;
} worker;

_Noreturn static void die(const char *why) {
  conc_log(CONC_LOG_ERROR, "process pool worker %d: %s", (int)getpid(), why);
  _exit(3);
}

/* Wait until the request ring has a frame. */
static int next_request(worker *w, conc__frame *f, size_t *adv) {
  struct conc__ring *r = &w->ch->req;
  uint64_t t0 = 0;
  for (unsigned i = 0;; i++) {
    int rc = conc__ring_peek(r, w->req, w->cap, 0, f, adv);
    if (rc)
      return rc;
    if (i < 64) {
      conc__pause();
      continue;
    }
    uint64_t now = mono_ns();
    if (!t0)
      t0 = now;
    if (now - t0 < w->spin_ns) {
      sched_yield();
      continue;
    }
    atomic_store_explicit(&r->sleep, 1, memory_order_seq_cst);
    atomic_thread_fence(memory_order_seq_cst); /* before the re-check */
    rc = conc__ring_peek(r, w->req, w->cap, 0, f, adv);
    if (rc) {
      atomic_store_explicit(&r->sleep, 0, memory_order_relaxed);
      return rc;
    }
    conc__futex_wait(&r->sleep, 1, INFINITY, true);
    atomic_store_explicit(&r->sleep, 0, memory_order_relaxed);
    i = 0;
    t0 = 0;
  }
}

static void wake_parent(worker *w) {
  uint64_t one = 1;
  ssize_t n = write(w->evfd, &one, sizeof one);
  (void)n; /* EAGAIN: the counter is saturated, the parent wakes anyway */
}

/* Make n more result bytes visible; wake the parent's collector if it
 * sleeps and no waiting thread collects results itself (pchan.h). */
static void publish_result(worker *w, size_t n) {
  struct conc__ring *r = &w->ch->rsp;
  uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
  atomic_store_explicit(&r->head, head + n, memory_order_seq_cst);
  if (!atomic_load_explicit(&r->sleep, memory_order_seq_cst) ||
      atomic_load_explicit(&w->ch->helped, memory_order_seq_cst))
    return;
  uint32_t one = 1;
  if (atomic_compare_exchange_strong(&r->sleep, &one, 0))
    wake_parent(w);
}

/* Room for a frame of n bytes in the result ring, waiting for it. */
static unsigned char *reserve_result(worker *w, size_t n, size_t *adv) {
  struct conc__ring *r = &w->ch->rsp;
  unsigned char *p;
  while (!(p = conc__ring_reserve(r, w->rsp, w->cap, n, adv))) {
    atomic_store_explicit(&r->room, 1, memory_order_seq_cst);
    atomic_thread_fence(memory_order_seq_cst); /* before the re-check */
    p = conc__ring_reserve(r, w->rsp, w->cap, n, adv);
    if (p) {
      atomic_store_explicit(&r->room, 0, memory_order_relaxed);
      break;
    }
    conc__futex_wait(&r->room, 1, INFINITY, true);
  }
  return p;
}

/* The task wrote its output (olen bytes) in the arena space the parent
 * offered: send a RESULT frame that says so. */
static void put_arena(worker *w, uint64_t id, const conc__task_ctx *ctx,
                      size_t olen, uint64_t run_ns) {
  size_t plen = RESULT_OK_HEAD + 8, n = CONC__WIRE_HDR + plen, adv;
  unsigned char *p = reserve_result(w, n, &adv);
  conc__frame_header(p, CONC__FT_RESULT, CONC__FF_ARENA, (uint32_t)plen, id);
  conc__result_encode_head(p + CONC__WIRE_HDR, 0, ctx->code, run_ns, NULL, 0);
  conc__put64(p + CONC__WIRE_HDR + RESULT_OK_HEAD, olen);
  publish_result(w, adv + n);
}

/* Copy a result frame into the result ring, waiting for room. */
static void put_result(worker *w, uint64_t id, const conc__task_ctx *ctx,
                       const conc_bytes *out, uint64_t run_ns) {
  uint32_t mlen = 0;
  const char *msg = ctx->outcome ? ctx->msg : NULL;
  if (msg) {
    size_t l = strlen(msg);
    mlen = (uint32_t)(l > MSG_MAX ? MSG_MAX : l);
  }
  size_t head = conc__result_head(mlen);
  size_t olen = ctx->outcome ? 0 : out->len;
  unsigned flags = 0;
  size_t plen = head + olen;
  if (CONC__WIRE_HDR + conc__round16(plen) > conc__pchan_inline_max(w->cap) ||
      plen > UINT32_MAX) {
    int fd = conc__memfd_from(out->data, olen);
    if (fd < 0 || conc__send_fd(w->sock, fd, 0) != 0)
      die("cannot pass a large result");
    close(fd);
    flags = CONC__FF_FD;
    plen = head + 8;
  }
  size_t n = CONC__WIRE_HDR + conc__round16(plen), adv;
  unsigned char *p = reserve_result(w, n, &adv);
  conc__frame_header(p, CONC__FT_RESULT, flags, (uint32_t)plen, id);
  unsigned char *q = p + CONC__WIRE_HDR;
  conc__result_encode_head(q, ctx->outcome, ctx->code, run_ns, msg, mlen);
  if (flags)
    conc__put64(q + head, olen);
  else if (olen)
    memcpy(q + head, out->data, olen);
  publish_result(w, adv + n);
}

/* Result ring space lent to the task as its output buffer, so that its
 * output is written in place (no copy into the ring afterwards).  The
 * larger free stretch of the ring (at the head, or at 0 after a PAD frame)
 * is lent, at most a frame's worth (inline_max); the space only grows
 * while the task runs (the parent consumes).  Too little room: none. */
#define LEND_MIN (16u << 10)
typedef struct lend {
  unsigned char *frame; /* the RESULT frame goes here */
  size_t pad;           /* PAD bytes at the head before it (0: none) */
  size_t cap;           /* output bytes that fit */
} lend;

static bool lend_space(worker *w, lend *l) {
  struct conc__ring *r = &w->ch->rsp;
  uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
  /* pairs with the parent's release of result bytes */
  uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
  size_t free_ = (size_t)(w->cap - (head - tail));
  size_t pos = (size_t)(head & (w->cap - 1));
  size_t contig = (size_t)w->cap - pos;
  size_t at_head = contig < free_ ? contig : free_;
  size_t at_zero = free_ > contig ? free_ - contig : 0;
  size_t room;
  if (at_head >= at_zero) {
    l->frame = w->rsp + pos;
    l->pad = 0;
    room = at_head;
  } else {
    l->frame = w->rsp;
    l->pad = contig;
    room = at_zero;
  }
  size_t max = conc__pchan_inline_max(w->cap);
  room = (room < max ? room : max) & ~(size_t)15;
  /* 16 + round16(24 + olen) <= room  <=>  olen <= room - 40 */
  if (room < CONC__WIRE_HDR + RESULT_OK_HEAD + LEND_MIN)
    return false;
  l->cap = room - CONC__WIRE_HDR - RESULT_OK_HEAD;
  return true;
}

/* Publish the output the task wrote in lent space as a RESULT frame. */
static void put_lent(worker *w, uint64_t id, const conc__task_ctx *ctx,
                     const lend *l, size_t olen, uint64_t run_ns) {
  struct conc__ring *r = &w->ch->rsp;
  if (l->pad) {
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    conc__frame_header(w->rsp + (head & (w->cap - 1)), CONC__FT_PAD, 0,
                       (uint32_t)(l->pad - CONC__WIRE_HDR), 0);
  }
  size_t plen = RESULT_OK_HEAD + olen;
  conc__frame_header(l->frame, CONC__FT_RESULT, 0, (uint32_t)plen, id);
  conc__result_encode_head(l->frame + CONC__WIRE_HDR, 0, ctx->code, run_ns,
                           NULL, 0);
  publish_result(w, l->pad + CONC__WIRE_HDR + conc__round16(plen));
}

/* Run the task of frame f, release its request bytes (adv), then send the
 * result: the parent may refill the ring as soon as it sees the result. */
static int run_one(worker *w, const conc__frame *f, size_t adv) {
  conc__task_msg t;
  if (conc__task_decode(f, &t) != 0)
    die("bad task frame");
  if (t.arena && (t.arena_off > 2 * w->cap || t.arena_size > 2 * w->cap ||
                  t.arena_off + t.arena_size > 2 * w->cap))
    die("bad output space offered");
  /* started first: whatever happens from here on (a bulk input that
   * cannot be mapped, a crash) is this task's outcome */
  conc__pchan *ch = w->ch;
  uint64_t t0;
  for (;;) {
    uint32_t seq = atomic_load_explicit(&ch->doomed_seq, memory_order_acquire);
    /* the start time first: whoever reads started == id reads it too
     * (a stale time would look like an overrun) */
    t0 = mono_ns();
    atomic_store_explicit(&ch->started_ns, t0, memory_order_relaxed);
    atomic_store_explicit(&ch->started, f->id, memory_order_seq_cst);
    uint64_t d = atomic_load_explicit(&ch->doomed, memory_order_seq_cst);
    if (d == 0 || d == f->id)
      break;
    /* the parent is killing us for the previous task: do not start this
     * one (it will run elsewhere); wait to be killed or let go */
    atomic_store_explicit(&ch->started, 0, memory_order_seq_cst);
    conc__futex_wait(&ch->doomed_seq, seq, INFINITY, true);
  }
  conc__task_ctx ctx = {NULL, 0, 0, NULL, &ch->stop_id, f->id, &ch->stop_seq};
  const void *in = t.in;
  void *map = NULL;
  size_t maplen = 0;
  bool ok = true;
  if (f->flags & CONC__FF_FD) {
    int fd;
    if (conc__recv_fd(w->sock, &fd, 0) != 0)
      die("lost a large input");
    maplen = (size_t)t.len;
    struct stat st;
    if (fstat(fd, &st) != 0 || (uint64_t)st.st_size != t.len) {
      ok = false;
      ctx.msg = conc__strdup("the task's input did not arrive whole");
    } else if (maplen) {
      map = mmap(NULL, maplen, PROT_READ, MAP_SHARED, fd, 0);
      if (map == MAP_FAILED) {
        map = NULL;
        ok = false;
        ctx.msg = conc__asprintf("cannot map the task's input (%zu bytes)",
                                 maplen);
      }
    }
    close(fd);
    in = map;
  }
  w->out.len = 0;
  lend l = {NULL, 0, 0};
  bool lent = false;
  size_t olen = 0;
  if (ok && t.abs_deadline && t0 > t.deadline_ns) { /* waited in the ring */
    ctx.outcome = CONC_EDEADLINE;
    ctx.msg = conc__strdup("deadline passed before the task started");
  } else if (!ok) {
    ctx.outcome = CONC_ETASK;
    ctx.code = CONC_ENOMEM;
  } else if (t.index >= w->ntasks) {
    ctx.outcome = CONC_ETASK;
    ctx.code = CONC_ENOENT;
    ctx.msg = conc__asprintf("no task number %u in this worker", t.index);
  } else {
    unsigned char *at = NULL;
    size_t room = 0;
    if (t.arena) { /* the parent offered output space */
      at = conc__pchan_arena(ch) + t.arena_off;
      room = (size_t)t.arena_size;
    } else if (lend_space(w, &l)) {
      at = l.frame + CONC__WIRE_HDR + RESULT_OK_HEAD;
      room = l.cap;
    }
    lent = at != NULL;
    conc_bytes spare = w->out;
    if (lent) {
      w->out = (conc_bytes){at, 0, room};
      conc__bytes_lend(at);
    }
    conc__task_ctx *prev = conc__task_ctx_swap(&ctx);
    conc__task_invoke(w->fns[t.index], in, (size_t)t.len, &w->out, &ctx);
    conc__task_ctx_swap(prev);
    if (lent) {
      conc__bytes_lend(NULL);
      if (w->out.data == at && w->out.len <= room) {
        olen = w->out.len;
        w->out = spare;
      } else { /* outgrown (now on the heap) or dropped: copy as usual */
        lent = false;
        if (w->out.data)
          conc_bytes_free(&spare);
        else
          w->out = spare;
      }
    }
  }
  if (map)
    munmap(map, maplen);
  conc__ring_release(&ch->req, adv);
  if (lent && ctx.outcome == 0 && t.arena)
    put_arena(w, f->id, &ctx, olen, mono_ns() - t0);
  else if (lent && ctx.outcome == 0)
    put_lent(w, f->id, &ctx, &l, olen, mono_ns() - t0);
  else
    put_result(w, f->id, &ctx, &w->out, mono_ns() - t0);
  atomic_store_explicit(&ch->started, 0, memory_order_release);
  conc__free(ctx.msg);
  if (w->out.cap > (64u << 20)) /* do not sit on a huge buffer */
    conc_bytes_free(&w->out);
  return ctx.outcome;
}

_Noreturn void conc__worker_main(const int fds[4]) {
  prctl(PR_SET_NAME, "conc-worker", 0, 0, 0);
  if (conc__watch_parent(fds[3]) != 0)
    _exit(1);
  worker w = {0};
  w.sock = fds[1];
  w.evfd = fds[2];
  struct stat st;
  if (fstat(fds[0], &st) != 0 || st.st_size < (off_t)CONC__PCHAN_HDR)
    die("bad ring");
  void *m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                 fds[0], 0);
  if (m == MAP_FAILED)
    die("cannot map the ring");
  close(fds[0]);
  w.ch = m;
  w.cap = w.ch->cap;
  if (w.cap < 4096 || (w.cap & (w.cap - 1)) ||
      (uint64_t)st.st_size != conc__pchan_len(w.cap))
    die("bad ring size");
  w.req = conc__pchan_req(w.ch);
  w.rsp = conc__pchan_rsp(w.ch);
  w.spin_ns = w.ch->spin_ns <= 1000000 ? w.ch->spin_ns : SPIN_NS;
  /* the request ring is read-only here: a task that scribbles over memory
   * cannot corrupt the inputs queued behind it (the parent may retry them
   * from there when this worker dies) */
  if (mprotect(w.req, (size_t)w.cap, PROT_READ) != 0)
    die("cannot protect the request ring");
  w.ntasks = conc_task_count();
  w.fns = conc__calloc(w.ntasks ? w.ntasks : 1, sizeof *w.fns);
  if (!w.fns)
    die("out of memory");
  for (size_t i = 0; i < w.ntasks; i++)
    if (conc_task_lookup(conc_task_name(i), &w.fns[i]) != 0)
      die("registry changed");
  for (;;) {
    conc__frame f;
    size_t adv;
    if (next_request(&w, &f, &adv) < 0)
      die("bad bytes in the request ring");
    if (f.type == CONC__FT_EXIT) {
      fflush(NULL);
      _exit(0);
    }
    if (f.type != CONC__FT_TASK && f.type != CONC__FT_INIT)
      die("unexpected frame");
    bool init = f.type == CONC__FT_INIT;
    if (run_one(&w, &f, adv) != 0 && init) {
      fflush(NULL);
      _exit(4); /* the pool is broken: run nothing else */
    }
  }
}
