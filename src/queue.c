/* queue.c - bounded cross-process queue of byte messages in shared memory.
 *
 * DESIGN
 *
 * Memory: one anonymous shm block (conc_shm_create_anon) = struct qshared
 * (rounded up to a cache line) followed by a ring of cap bytes.  head and
 * tail are monotonic byte counters (offset = counter % cap); tail - head
 * bytes are in use.  Records never straddle anything but may wrap:
 *
 *   record = { u32 len, u32 flags (FIRST, LAST), u64 seq, u64 total }
 *            + len payload bytes, padded to 8
 *
 * A message is one record (FIRST | LAST) when it fits in the ring, else a
 * run of records (FIRST, ..., LAST) with one seq, streamed while readers
 * drain the ring.
 *
 * Locks (all conc_lock / conc_cond with CONC_SYNC_SHARED, from sync.c):
 *   wlock  held by one put for its whole message: runs of records from
 *          different messages never interleave.
 *   rlock  held by one get for its whole message.
 *   lock   guards head, tail, msgs, next_seq, closed and the ring bytes;
 *          held only while copying and between waits.
 *   can_get / can_put  conditions on lock.
 * Order: wlock or rlock, then lock (a process never holds both wlock and
 * rlock).  A get holding lock may try_acquire wlock (never blocks) to see
 * whether a streaming writer still lives.
 *
 * Commit points: a put writes its record beyond tail, then publishes it by
 * one release store of tail; a get copies a record out, then drops it by
 * one store of head.  Only then are msgs (count of FIRST records in the
 * ring) adjusted.  So a process that dies anywhere leaves head and tail
 * consistent, at worst with msgs off by one.
 *
 * Dead peers and repair:
 *   lock's owner died      the next acquirer gets CONC_EOWNERDEAD (from
 *                          conc_lock_acquire or conc_cond_wait) and runs
 *                          repair(): rescan [head, tail), recount msgs
 *                          (reset the ring if the scan does not add up),
 *                          wake everybody.  Bytes the dead put wrote past
 *                          tail are simply never published.
 *   wlock's owner died     mid-stream: its records up to the last
 *                          published one stay.  The next put takes wlock
 *                          (CONC_EOWNERDEAD, nothing to repair); a get in
 *                          the middle of that message sees the run broken
 *                          (a record with another seq or a FIRST, or an
 *                          empty ring and wlock free / its owner dead)
 *                          and drops the part
 *                          it holds.
 *   rlock's owner died     mid-message: the next get takes rlock and skips
 *                          records that are not FIRST at head (orphans).
 *   A put that times out mid-stream withdraws the same way (releases
 *   wlock); readers drop the partial message.
 *   Sleepers on can_get / can_put wake every SLICE seconds to re-take
 *   lock (a peer that died holding it notifies nobody) and re-check.
 *
 * Test hook: conc__queue_fault_hook, when set, is called with a step
 * number at each point of the protocol (see FAULT_* below), so tests can
 * SIGKILL a peer there.
 */
#include "internal.h"

#include "conc/queue.h"
#include "conc/shm.h"
#include "conc/sync.h"

#define QMAGIC 0x636f6e71u
#define F_FIRST 1u
#define F_LAST 2u
#define SLICE 0.1 /* seconds between re-checks for dead peers in waits */
#define CAP_MIN 64
#define CAP_DEFAULT (1u << 20)

/* Protocol steps at which the fault hook runs. */
enum {
  FAULT_PUT_WLOCK = 1,    /* holds wlock */
  FAULT_PUT_LOCK = 2,     /* holds wlock and lock */
  FAULT_PUT_HEADER = 3,   /* record header written, not published */
  FAULT_PUT_HALF = 4,     /* half the payload written */
  FAULT_PUT_COMMIT = 5,   /* tail published, msgs not yet counted */
  FAULT_PUT_CHUNK = 6,    /* mid-stream, about to wait for room */
  FAULT_GET_RLOCK = 11,   /* holds rlock */
  FAULT_GET_LOCK = 12,    /* holds rlock and lock */
  FAULT_GET_COPIED = 13,  /* record copied out, head not advanced */
  FAULT_GET_ADVANCED = 14 /* head advanced, msgs not yet counted */
};

/* Test-only: see DESIGN.  NULL in production. */
void (*conc__queue_fault_hook)(int step);

#define FAULT(step)                                                           \
  do {                                                                        \
    if (CONC_UNLIKELY(conc__queue_fault_hook != NULL))                        \
      conc__queue_fault_hook(step);                                           \
  } while (0)

struct rec {
  uint32_t len;
  uint32_t flags;
  uint64_t seq;
  uint64_t total;
};
#define HDR ((uint64_t)sizeof(struct rec))
_Static_assert(sizeof(struct rec) == 24, "record header");

struct qshared {
  conc_lock lock;
  conc_lock wlock;
  conc_lock rlock;
  conc_cond can_get;
  conc_cond can_put;
  uint32_t magic;
  _Atomic uint32_t closed; /* written under lock; read anywhere */
  uint64_t cap;
  uint64_t max_msgs;
  _Atomic uint64_t head; /* under lock; atomic for the commit order */
  _Atomic uint64_t tail;
  uint64_t msgs;
  uint64_t next_seq;
};
#define RING_OFF                                                              \
  ((sizeof(struct qshared) + CONC_CACHELINE - 1) & ~(size_t)(CONC_CACHELINE - 1))

struct conc_queue {
  conc_shm shm;
  struct qshared *s;
  unsigned char *ring;
};

static inline uint64_t pad8(uint64_t n) { return (n + 7) & ~(uint64_t)7; }

/* ---- ring copies (wrapping) ---- */

static void ring_write(conc_queue *q, uint64_t pos, const void *src,
                       uint64_t n) {
  uint64_t cap = q->s->cap, off = pos % cap;
  uint64_t a = n < cap - off ? n : cap - off;
  if (a)
    memcpy(q->ring + off, src, a);
  if (n > a)
    memcpy(q->ring, (const unsigned char *)src + a, n - a);
}

static void ring_read(conc_queue *q, uint64_t pos, void *dst, uint64_t n) {
  uint64_t cap = q->s->cap, off = pos % cap;
  uint64_t a = n < cap - off ? n : cap - off;
  if (a)
    memcpy(dst, q->ring + off, a);
  if (n > a)
    memcpy((unsigned char *)dst + a, q->ring, n - a);
}

/* relaxed loads of head/tail: every access is under lock */
static inline uint64_t ld(_Atomic uint64_t *p) {
  return atomic_load_explicit(p, memory_order_relaxed);
}
/* release: program order of the record's bytes before the counter, so a
 * process killed between the two never publishes a torn record */
static inline void st(_Atomic uint64_t *p, uint64_t v) {
  atomic_store_explicit(p, v, memory_order_release);
}

static inline uint64_t ring_free(struct qshared *s) {
  return s->cap - (ld(&s->tail) - ld(&s->head));
}

/* ---- locking and repair ---- */

/* Under lock, after its owner died.  Recount msgs from the records. */
static void repair(conc_queue *q) {
  struct qshared *s = q->s;
  uint64_t h = ld(&s->head), t = ld(&s->tail), n = 0;
  bool ok = t >= h && t - h <= s->cap;
  while (ok && h < t) {
    struct rec r;
    if (t - h < HDR) {
      ok = false;
      break;
    }
    ring_read(q, h, &r, HDR);
    if (r.flags & F_FIRST)
      n++;
    uint64_t sz = HDR + pad8(r.len);
    if (sz > t - h) {
      ok = false;
      break;
    }
    h += sz;
  }
  if (!ok) { /* cannot happen with the commit order above; stay usable */
    st(&s->head, ld(&s->tail));
    n = 0;
  }
  s->msgs = n;
  conc_cond_notify_all(&s->can_get);
  conc_cond_notify_all(&s->can_put);
}

static void qlock(conc_queue *q) {
  int r = conc_lock_acquire(&q->s->lock, -1);
  if (r == CONC_EOWNERDEAD) {
    repair(q);
    r = 0;
  }
  CONC_MUST(r == 0);
}

static void qunlock(conc_queue *q) {
  CONC_MUST(conc_lock_release(&q->s->lock) == 0);
}

/* Wait on c (lock held) until deadline, at most one SLICE: a peer that
 * died holding lock notifies nobody, so sleepers wake now and then and
 * re-take lock, which detects the dead owner.  Returns 0 or
 * CONC_ETIMEDOUT; the caller re-checks its predicate either way. */
static int qwait(conc_queue *q, conc_cond *c, double deadline) {
  double d = conc_now() + SLICE;
  if (d < deadline)
    deadline = d;
  int r = conc_cond_wait_until(c, &q->s->lock, deadline);
  if (r == CONC_EOWNERDEAD) {
    repair(q);
    r = 0;
  }
  return r;
}

/* Take wlock or rlock.  A dead previous owner leaves nothing to repair
 * under these locks (see DESIGN). */
static int take(conc_lock *l, double deadline, bool try) {
  int r = try ? conc_lock_try_acquire(l) : conc_lock_acquire_until(l, deadline);
  if (r == CONC_EOWNERDEAD)
    r = 0;
  if (r == CONC_ETIMEDOUT || r == CONC_EAGAIN)
    return try ? CONC_EAGAIN : CONC_ETIMEDOUT;
  return r;
}

static void drop(conc_lock *l) { CONC_MUST(conc_lock_release(l) == 0); }

/* ---- create / destroy ---- */

void conc_queue_options_init(conc_queue_options *o) {
  if (!o)
    return;
  memset(o, 0, sizeof *o);
  o->size = sizeof *o;
  o->capacity_bytes = CAP_DEFAULT;
}

int conc_queue_create(conc_queue **qp, const conc_queue_options *opts) {
  if (!qp)
    return CONC_EINVAL;
  conc_queue_options o;
  conc_queue_options_init(&o);
  if (opts) {
    if (opts->size != sizeof *opts)
      return CONC_EINVAL;
    o = *opts;
  }
  if (o.capacity_bytes == 0 || o.capacity_bytes > ((size_t)1 << 40))
    return CONC_EINVAL;
  uint64_t cap = pad8(o.capacity_bytes);
  if (cap < CAP_MIN)
    cap = CAP_MIN;
  conc_queue *q = conc__calloc(1, sizeof *q);
  if (!q)
    return CONC_ENOMEM;
  int r = conc_shm_create_anon(&q->shm, RING_OFF + cap);
  if (r != 0) {
    conc__free(q);
    return r;
  }
  q->s = conc_shm_addr(&q->shm);
  q->ring = (unsigned char *)q->s + RING_OFF;
  struct qshared *s = q->s;
  conc_lock_init(&s->lock, CONC_SYNC_SHARED);
  conc_lock_init(&s->wlock, CONC_SYNC_SHARED);
  conc_lock_init(&s->rlock, CONC_SYNC_SHARED);
  conc_cond_init(&s->can_get, CONC_SYNC_SHARED);
  conc_cond_init(&s->can_put, CONC_SYNC_SHARED);
  s->magic = QMAGIC;
  s->cap = cap;
  s->max_msgs = o.max_messages;
  *qp = q;
  return 0;
}

int conc_queue_destroy(conc_queue *q) {
  if (!q)
    return CONC_EINVAL;
  conc_shm_close(&q->shm);
  conc__free(q);
  return 0;
}

/* ---- put ---- */

static int put_impl(conc_queue *q, const void *msg, size_t len,
                    double deadline, bool try) {
  if (!q || (!msg && len))
    return CONC_EINVAL;
  struct qshared *s = q->s;
  /* relaxed: a hint; re-checked under lock */
  if (atomic_load_explicit(&s->closed, memory_order_relaxed))
    return CONC_ECLOSED;
  int r = take(&s->wlock, deadline, try);
  if (r != 0)
    return r;
  FAULT(FAULT_PUT_WLOCK);
  qlock(q);
  FAULT(FAULT_PUT_LOCK);

  uint64_t whole = HDR + pad8(len);
  uint64_t want = whole <= s->cap ? whole : HDR + 8;
  for (;;) {
    if (atomic_load_explicit(&s->closed, memory_order_relaxed)) {
      r = CONC_ECLOSED;
      goto out;
    }
    if ((s->max_msgs == 0 || s->msgs < s->max_msgs) && ring_free(s) >= want)
      break;
    if (try) {
      r = CONC_EAGAIN;
      goto out;
    }
    if (conc_now() >= deadline) {
      r = CONC_ETIMEDOUT;
      goto out;
    }
    qwait(q, &s->can_put, deadline);
  }

  uint64_t seq = ++s->next_seq;
  const unsigned char *src = msg ? msg : (const void *)""; /* len 0 */
  uint64_t off = 0;
  bool first = true;
  if (try)
    deadline = INFINITY; /* documented: a streamed try_put may wait */
  for (;;) {
    uint64_t n = len - off, room = ring_free(s);
    if (HDR + pad8(n) > room)
      n = (room - HDR) & ~(uint64_t)7; /* room >= HDR + 8 here */
    struct rec rc = {.len = (uint32_t)n,
                     .flags = (first ? F_FIRST : 0) |
                              (off + n == len ? F_LAST : 0),
                     .seq = seq,
                     .total = len};
    uint64_t t = ld(&s->tail);
    ring_write(q, t, &rc, HDR);
    FAULT(FAULT_PUT_HEADER);
    uint64_t half = n / 2;
    ring_write(q, t + HDR, src + off, half);
    FAULT(FAULT_PUT_HALF);
    ring_write(q, t + HDR + half, src + off + half, n - half);
    st(&s->tail, t + HDR + pad8(n));
    FAULT(FAULT_PUT_COMMIT);
    if (first)
      s->msgs++;
    first = false;
    off += n;
    conc_cond_notify_all(&s->can_get);
    if (off == len)
      break;
    FAULT(FAULT_PUT_CHUNK);
    while (ring_free(s) < HDR + 8) {
      if (conc_now() >= deadline) {
        r = CONC_ETIMEDOUT; /* withdraw: readers drop the partial message */
        goto out;
      }
      qwait(q, &s->can_put, deadline);
    }
  }
  r = 0;
out:
  qunlock(q);
  drop(&s->wlock);
  return r;
}

int conc_queue_put(conc_queue *q, const void *msg, size_t len,
                   double timeout) {
  return put_impl(q, msg, len, conc__deadline(timeout), false);
}

int conc_queue_try_put(conc_queue *q, const void *msg, size_t len) {
  return put_impl(q, msg, len, conc_now(), true);
}

/* ---- get ---- */

/* Under lock, while a get waits for the rest of a streamed message: does a
 * live put hold wlock? */
static bool writer_alive(struct qshared *s) {
  int r = conc_lock_try_acquire(&s->wlock);
  if (r == 0 || r == CONC_EOWNERDEAD) {
    drop(&s->wlock);
    return false;
  }
  return true; /* CONC_EAGAIN: held by a live thread */
}

static void advance(conc_queue *q, uint64_t h, uint64_t sz) {
  st(&q->s->head, h + sz);
  conc_cond_notify_all(&q->s->can_put);
}

static int get_impl(conc_queue *q, void **msg, size_t *len, double deadline,
                    bool try) {
  if (!q || !msg || !len)
    return CONC_EINVAL;
  struct qshared *s = q->s;
  int r = take(&s->rlock, deadline, try);
  if (r != 0)
    return r;
  FAULT(FAULT_GET_RLOCK);
  qlock(q);
  FAULT(FAULT_GET_LOCK);

  unsigned char *buf = NULL; /* the message being received */
  uint64_t cur = 0, total = 0, got = 0;
  for (;;) {
    uint64_t h = ld(&s->head), t = ld(&s->tail);
    if (h != t) {
      struct rec rc;
      ring_read(q, h, &rc, HDR);
      uint64_t sz = HDR + pad8(rc.len);
      if (buf) {
        if (rc.seq != cur || (rc.flags & F_FIRST) ||
            got + rc.len > total) { /* the run broke: withdrawn or dead */
          conc__free(buf);
          buf = NULL;
          continue;
        }
        ring_read(q, h + HDR, buf + got, rc.len);
        FAULT(FAULT_GET_COPIED);
        advance(q, h, sz);
        got += rc.len;
        if (rc.flags & F_LAST)
          break;
        continue;
      }
      if (!(rc.flags & F_FIRST)) { /* orphan of a withdrawn message */
        advance(q, h, sz);
        continue;
      }
      buf = conc__malloc(rc.total ? rc.total : 1);
      if (!buf) {
        r = CONC_ENOMEM;
        goto out;
      }
      ring_read(q, h + HDR, buf, rc.len);
      FAULT(FAULT_GET_COPIED);
      advance(q, h, sz);
      FAULT(FAULT_GET_ADVANCED);
      s->msgs--;
      cur = rc.seq;
      total = rc.total;
      got = rc.len;
      if (rc.flags & F_LAST)
        break;
      continue;
    }
    if (buf) { /* mid-message: wait for the rest while its writer lives */
      if (!writer_alive(s)) {
        conc__free(buf);
        buf = NULL;
        continue;
      }
      qwait(q, &s->can_get, INFINITY);
      continue;
    }
    if (atomic_load_explicit(&s->closed, memory_order_relaxed)) {
      r = CONC_ECLOSED;
      goto out;
    }
    if (try) {
      r = CONC_EAGAIN;
      goto out;
    }
    if (conc_now() >= deadline) {
      r = CONC_ETIMEDOUT;
      goto out;
    }
    qwait(q, &s->can_get, deadline);
  }
  *msg = buf;
  *len = (size_t)total;
  r = 0;
out:
  qunlock(q);
  drop(&s->rlock);
  return r;
}

int conc_queue_get(conc_queue *q, void **msg, size_t *len, double timeout) {
  return get_impl(q, msg, len, conc__deadline(timeout), false);
}

int conc_queue_try_get(conc_queue *q, void **msg, size_t *len) {
  return get_impl(q, msg, len, conc_now(), true);
}

void conc_queue_msg_free(void *msg) { conc__free(msg); }

/* ---- close, count ---- */

int conc_queue_close(conc_queue *q) {
  if (!q)
    return CONC_EINVAL;
  qlock(q);
  /* relaxed: readers of closed re-check under lock */
  atomic_store_explicit(&q->s->closed, 1, memory_order_relaxed);
  conc_cond_notify_all(&q->s->can_get);
  conc_cond_notify_all(&q->s->can_put);
  qunlock(q);
  return 0;
}

long conc_queue_count(conc_queue *q) {
  if (!q)
    return CONC_EINVAL;
  qlock(q);
  long n = (long)q->s->msgs;
  qunlock(q);
  return n;
}
