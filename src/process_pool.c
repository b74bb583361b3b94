/* process_pool.c - the process pool executor (conc/process_pool.h).
 *
 * DESIGN (docs/internals/process-pool.md has the long version)
 * Parent side: a mutex `mu` guards the queues and the slots; one
 * collector thread reads every worker's result ring and completes the
 * futures.  Each slot holds one worker incarnation: its channel (memfd
 * mapped here and there, pchan.h), a Unix socket (bulk memfds, and HUP
 * when the worker dies), its pidfd, and the write end of the pipe that
 * kills the worker when we die.  A future is in exactly one place: the
 * pending FIFO, the retry FIFO (sent to a worker that died before
 * starting it: already RUNNING), or a slot's in-flight array (in ring
 * order: a worker runs its ring in order, so results come back in order).
 *
 * Dispatch (under mu, from submit and from the collector): the slot with
 * the fewest tasks in flight that accepts more takes the next task: the
 * frame is written straight into its ring, the future goes RUNNING, and a
 * sleeping worker is woken.  Completion (collector, mostly without mu):
 * pop the head in-flight entry, copy the output, release the ring bytes,
 * publish the future - callbacks run on the collector thread, never under
 * mu.
 *
 * Worker death: its socket reports HUP (or its pidfd becomes readable);
 * the fork server reports the wait status.  The results it published are
 * consumed first; then the task it had started (`started` in the shared
 * header) fails with CONC_EWORKER (or CONC_EKILLED if we killed it for a
 * timeout or an unanswered stop), the rest of its ring is retried
 * elsewhere, and a new worker is spawned into the same slot with a fresh
 * ring.
 */
#include "executor-int.h"
#include "fsrv.h"
#include "pchan.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include "conc/process_pool.h"

#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

#define SPIN_NS 5000u /* the collector: waiters collect their own results, so it
                       * need not spin long (a spinner more on a small machine
                       * slows everyone) */
#define PIPE_NS 200e3 /* queued work per worker, in nanoseconds */
#define STOP_POLL 0.02 /* how often running tasks are checked for stops */

enum { W_EMPTY, W_SPAWNING, W_READY, W_RETIRING, W_DEAD };

typedef struct inflight {
  conc_future *f; /* NULL for the initializer */
  uint64_t id;
  double submitted; /* with CONC_EXECUTOR_TIMING, else NAN */
  /* The input went straight from the caller into the ring (the closure's
   * buffer is unfilled): if the task must be retried, it is copied back
   * from there (the worker maps its request ring read-only). */
  bool in_ring;
  uint32_t in_off;
  /* output arena units offered to the task (count 0: none) */
  uint8_t ofirst, ocount;
} inflight;

/* A slot's channel mapping and the allocator of its output arena
 * (pchan.h): 64 units, one bit each in free_units.  Dispatch offers a
 * task contiguous free units for its output (FF_ARENA); a result written
 * there is handed to the caller in place (a view: conc__closure_set_view)
 * and its units come back when the caller frees the future - on any
 * thread, hence the arena's own mutex (taken under mu or alone, never the
 * reverse).  The pool and each view hold a reference; the last one unmaps
 * the channel, so results stay valid after the pool is destroyed. */
typedef struct arena {
  _Atomic uint32_t refs;
  pthread_mutex_t mu;
  uint64_t free_units; /* under mu */
  unsigned char *base;
  size_t unit;
  void *map;
  size_t maplen;
} arena;

#define HIST_BUCKETS 40 /* log2 nanoseconds, as the thread pool's */

typedef struct slot {
  int state;
  conc__pchan *ch;
  arena *ar; /* owns the mapping of ch */
  int memfd, sock, watch_w, pid, pidfd;
  inflight *fl; /* ring of depth entries */
  unsigned fl_head, fl_n;
  unsigned sent;     /* tasks sent to this incarnation */
  bool exit_sent;
  bool hup;          /* the worker is gone */
  bool status_known; /* the server reported its wait status */
  int status;
  int kill_reason;   /* CONC_EKILLED once we killed it, else 0 */
  uint64_t kill_id;
  uint64_t stop_sent_id; /* a stop was passed on for this task */
  double stop_deadline;
  unsigned idle_deaths; /* deaths in a row with no task started */
  unsigned spawn_fails; /* failed spawns in a row (W_DEAD) */
  double retry_at;      /* W_DEAD: when to try spawning again */
} slot;

/* Results are consumed under rx, by the collector or by a thread waiting
 * for one of the pool's futures (future.c, FF_HELPED); rx comes before
 * mu.  The helper outlives the pool while futures hold it. */
typedef struct pp_helper {
  conc__helper h;
  pthread_mutex_t rx;
  conc__bufcache cache; /* big output buffers for reuse */
  unsigned nhelp; /* waiters collecting results now (under rx) */
} pp_helper;

#define RECYCLE_MIN (64u << 10)
#define RECYCLE_MAX (64u << 20)

struct ppool;
static void take_cached(struct ppool *p, conc_bytes *out, size_t n);

typedef struct ppool {
  conc_executor ex; /* first */
  pp_helper *hp;
  pthread_mutex_t mu;
  pthread_cond_t cv; /* collector finished */
  pthread_t thread;
  bool thread_started, thread_done;
  conc__fsrv srv;
  bool srv_gone;
  int evfd;
  uint64_t cap;
  unsigned nslots, depth, max_tasks; /* depth: 1 + max_in_flight */
  /* Pipelining adapts to the tasks' run time: each worker gets about
   * PIPE_NS of queued work (at least 2 tasks, at most depth), so tiny
   * tasks stream and long ones stay balanced across workers. */
  unsigned want;
  double avg_run_ns;
  /* Outputs of about this size (bytes; a running max that decays) get
   * arena space offered: big ones are then handed over in place. */
  double out_hint;
  unsigned long long samples;
  slot *slots;
  double task_timeout, stop_grace;
  /* registry snapshot (names in registry storage, sorted) */
  const char **names;
  size_t nnames;
  uint32_t init_index;
  unsigned char *initargs;
  size_t initargs_len;
  bool has_init;
  /* queues: futures linked through f->next */
  conc_future *pend_head, *pend_tail, *retry_head, *retry_tail;
  size_t npending;
  size_t max_queued;     /* bound on npending for outside submitters */
  pthread_cond_t room_cv; /* npending went below max_queued, or shutdown */
  unsigned room_waiters;
  bool prio_mode;        /* some task had a priority: keep pending sorted */
  uint32_t arrivals;     /* priority keys: arrival - 64 x priority */
  uint64_t next_id;
  bool shutdown, broken;
  bool sleep_inf; /* the collector sleeps without a timeout: poke it */
  conc_future *deferred; /* completed by a helper, callbacks pending: the
                            collector publishes them (f->next links) */
  /* statistics */
  bool timing;
  uint64_t hist_wait[HIST_BUCKETS], hist_run[HIST_BUCKETS];
  unsigned long long n_submitted, n_completed, n_failed, n_cancelled,
      n_deadline;
} ppool;

static inline ppool *P(conc_executor *ex) { return (ppool *)ex; }

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- completion outside the lock ---- */

/* Futures to complete once the locks are released (callbacks may wait
 * for other futures of the pool, or submit to it).  The outcome is written
 * into the record now - a running task-bound future has no other
 * completer - and published later; f->next links the list. */
typedef struct done_list {
  conc_future *head;
} done_list;

static void done_push(done_list *d, conc_future *f) {
  atomic_store_explicit(&f->next, d->head, memory_order_relaxed);
  d->head = f;
}

static void done_add(done_list *d, conc_future *f, int outcome, int detail,
                     char *msg) {
  f->outcome = (int16_t)outcome;
  f->detail = detail;
  f->u.msg = msg;
  done_push(d, f);
}

static void done_ok(done_list *d, conc_future *f, void *result) {
  f->outcome = 0;
  f->u.result = result;
  done_push(d, f);
}

/* Publish, then drop the pool's reference. */
static void done_run(done_list *d) {
  conc_future *f = d->head;
  d->head = NULL;
  while (f) {
    conc_future *next = atomic_load_explicit(&f->next, memory_order_relaxed);
    conc__future_finish_prepared(f);
    conc_future_release(f);
    f = next;
  }
}

/* ---- queues (under mu) ---- */


/* ---- slots ---- */

#define VIEW_MIN (64u << 10) /* smaller outputs are copied: cheap */

static void arena_unref(arena *a) {
  if (atomic_fetch_sub_explicit(&a->refs, 1, memory_order_acq_rel) == 1) {
    munmap(a->map, a->maplen);
    pthread_mutex_destroy(&a->mu);
    conc__free(a);
  }
}

/* Take k contiguous free units (first fit): true with *first. */
static bool arena_take(arena *a, unsigned k, unsigned *first) {
  if (k == 0 || k > CONC__ARENA_UNITS)
    return false;
  uint64_t run = k == 64 ? ~0ull : ((1ull << k) - 1);
  bool ok = false;
  pthread_mutex_lock(&a->mu);
  for (unsigned i = 0; i + k <= CONC__ARENA_UNITS; i++) {
    if ((a->free_units & (run << i)) == run << i) {
      a->free_units &= ~(run << i);
      *first = i;
      ok = true;
      break;
    }
  }
  pthread_mutex_unlock(&a->mu);
  return ok;
}

static void arena_give(arena *a, unsigned first, unsigned k) {
  if (k == 0)
    return;
  uint64_t run = k == 64 ? ~0ull : ((1ull << k) - 1);
  pthread_mutex_lock(&a->mu);
  a->free_units |= run << first;
  pthread_mutex_unlock(&a->mu);
}

/* A view's end (conc__closure_set_view): the caller freed the result. */
static void view_free(void *obj, uint64_t cookie) {
  arena *a = obj;
  arena_give(a, (unsigned)(cookie & 0xff), (unsigned)(cookie >> 8));
  arena_unref(a);
}

static int ring_map(ppool *p, slot *s) {
  size_t len = conc__pchan_len(p->cap);
  if (s->memfd < 0) {
    s->memfd = memfd_create("conc-pool-ring", MFD_CLOEXEC);
    if (s->memfd < 0)
      return -errno;
  }
  if (!s->ch) {
    if (ftruncate(s->memfd, (off_t)len) != 0)
      return -errno;
    arena *a = conc__calloc(1, sizeof *a);
    if (!a)
      return CONC_ENOMEM;
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, s->memfd, 0);
    if (m == MAP_FAILED) {
      conc__free(a);
      return CONC_ENOMEM;
    }
    atomic_init(&a->refs, 1);
    pthread_mutex_init(&a->mu, NULL);
    a->free_units = ~0ull;
    a->map = m;
    a->maplen = len;
    s->ch = m;
    s->ch->cap = p->cap; /* for conc__pchan_arena */
    a->base = conc__pchan_arena(s->ch);
    a->unit = 2 * (size_t)p->cap / CONC__ARENA_UNITS;
    s->ar = a;
  }
  /* a fresh incarnation: reset the header (the old worker is gone) */
  memset(s->ch, 0, sizeof *s->ch);
  s->ch->cap = p->cap;
  s->ch->helped = p->hp && p->hp->nhelp; /* under rx (or at create) */
  /* Idle workers spin 50 us before they sleep, so that back-to-back
   * tasks find them awake (a futex wake-up costs ~20 us here; spinning
   * less was measured slower even with every CPU busy). */
  s->ch->spin_ns = 50000;
  return 0;
}

/* Start a worker in slot s (under mu). */
static int slot_spawn(ppool *p, slot *s) {
  int rc = ring_map(p, s);
  if (rc)
    return rc;
  int sv[2], wp[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    return -errno;
  if (pipe2(wp, O_CLOEXEC) != 0) {
    rc = -errno;
    close(sv[0]);
    close(sv[1]);
    return rc;
  }
  int fds[4] = {s->memfd, sv[1], p->evfd, wp[0]};
  rc = conc__daemon_fd_add(wp[1]);
  if (rc == 0)
    rc = p->srv_gone ? CONC_EBROKEN : conc__fsrv_spawn(&p->srv, (uint32_t)(s - p->slots), fds);
  close(sv[1]);
  close(wp[0]);
  if (rc) {
    conc__daemon_fd_remove(wp[1]);
    close(wp[1]);
    close(sv[0]);
    return rc;
  }
  s->sock = sv[0];
  s->watch_w = wp[1];
  s->pid = 0;
  s->pidfd = -1;
  s->state = W_SPAWNING;
  s->fl_head = s->fl_n = 0;
  s->sent = 0;
  s->exit_sent = s->hup = s->status_known = false;
  s->kill_reason = 0;
  s->kill_id = s->stop_sent_id = 0;
  if (p->has_init) { /* the initializer goes first in the ring */
    size_t n = CONC__WIRE_HDR + conc__round16(8 + p->initargs_len), adv;
    unsigned char *q =
        conc__ring_reserve(&s->ch->req, conc__pchan_req(s->ch), p->cap, n, &adv);
    CONC_ASSERT(q); /* checked at create: fits an empty ring */
    conc__frame_header(q, CONC__FT_INIT, 0, (uint32_t)(8 + p->initargs_len), 0);
    conc__put32(q + 16, p->init_index);
    conc__put32(q + 20, 0);
    if (p->initargs_len)
      memcpy(q + 24, p->initargs, p->initargs_len);
    conc__ring_publish(&s->ch->req, adv + n);
    s->fl[0] = (inflight){NULL, 0, NAN, false, 0, 0, 0};
    s->fl_n = 1;
  }
  return 0;
}

/* Release the incarnation's descriptors (the ring mapping stays). */
static void slot_close(slot *s) {
  if (s->sock >= 0)
    close(s->sock);
  if (s->pidfd >= 0)
    close(s->pidfd);
  if (s->watch_w >= 0) {
    conc__daemon_fd_remove(s->watch_w);
    close(s->watch_w);
  }
  s->sock = s->pidfd = s->watch_w = -1;
}

static bool slot_live(const slot *s) {
  return s->state == W_SPAWNING || s->state == W_READY ||
         s->state == W_RETIRING;
}

static bool slot_accepts(const ppool *p, const slot *s) {
  return (s->state == W_SPAWNING || s->state == W_READY) && !s->hup &&
         s->fl_n < p->want && (!p->max_tasks || s->sent < p->max_tasks);
}

/* Kill s's worker now (a protocol error: reason 0), or - for a reason -
 * only if it still runs task id (the handshake in pchan.h): a task that
 * just finished keeps its result and the next one is not hit.  Under mu. */
static void slot_kill(slot *s, int reason, uint64_t id) {
  if (s->hup || s->kill_reason)
    return;
  if (reason) {
    atomic_store_explicit(&s->ch->doomed, id, memory_order_seq_cst);
    if (atomic_load_explicit(&s->ch->started, memory_order_seq_cst) != id) {
      atomic_store_explicit(&s->ch->doomed, 0, memory_order_seq_cst);
      atomic_fetch_add_explicit(&s->ch->doomed_seq, 1, memory_order_seq_cst);
      conc__futex_wake(&s->ch->doomed_seq, INT_MAX, true);
      return;
    }
  }
  if (s->pidfd >= 0)
    syscall(SYS_pidfd_send_signal, s->pidfd, SIGKILL, NULL, 0);
  else if (s->pid > 0 && !s->status_known) /* not reaped yet: pid valid */
    kill(s->pid, SIGKILL);
  s->kill_reason = reason ? reason : CONC_EWORKER;
  s->kill_id = id;
}

static size_t name_index(const ppool *p, const char *name, bool *found) {
  return conc__names_find(p->names, p->nnames, name, found);
}

/* ---- dispatch (under mu) ---- */

/* Write f's TASK frame into s's ring.  Returns 1 when sent, 0 when the
 * ring has no room, SEND_DEAD when the worker turned out to be gone, <0
 * when the input cannot be sent (f failed). */
#define SEND_DEAD 2
static bool fits_inline(const ppool *p, size_t len) {
  return len <= UINT32_MAX - 8 &&
         CONC__WIRE_HDR + conc__round16(8 + len) <= conc__pchan_inline_max(p->cap);
}

/* Output arena units to offer the next task on s (out_hint), if any. */
static void offer(ppool *p, slot *s, uint8_t *first, uint8_t *count) {
  *first = *count = 0;
  if (p->out_hint < VIEW_MIN || !s->ar)
    return;
  double k = ceil(p->out_hint / (double)s->ar->unit);
  unsigned f;
  if (k <= CONC__ARENA_UNITS && arena_take(s->ar, (unsigned)k, &f)) {
    *first = (uint8_t)f;
    *count = (uint8_t)k;
  }
}

static int send_task(ppool *p, slot *s, conc_future *f, uint64_t id,
                     const void *direct, uint32_t *in_off, inflight *e) {
  const char *name;
  const void *in;
  size_t len;
  conc_bytes *out;
  conc__closure_info(f->fn, f->arg, &name, &in, &len, &out);
  if (direct)
    in = direct; /* the caller's bytes (inline frames only) */
  /* a start deadline travels too: the task may wait in the ring */
  bool dl = (f->flags & FF_DEADLINE) && isfinite(f->u.deadline);
  offer(p, s, &e->ofirst, &e->ocount);
  if (e->ocount && direct && !fits_inline(p, len + (dl ? 8 : 0) + 16)) {
    arena_give(s->ar, e->ofirst, e->ocount); /* keep the input inline */
    e->ocount = 0;
  }
  bool ar = e->ocount != 0;
  size_t hl = 8 + (dl ? 8 : 0) + (ar ? 16 : 0); /* index, 0[, dl][, arena] */
  size_t plen = hl + len;
  unsigned flags = (dl ? CONC__FF_DEADLINE_ABS : 0) | (ar ? CONC__FF_ARENA : 0);
  int bulk = -1;
  if (!fits_inline(p, len + hl - 8)) {
    CONC_ASSERT(!direct);
    flags |= CONC__FF_FD;
    plen = hl + 8;
  }
  size_t n = CONC__WIRE_HDR + conc__round16(plen), adv;
  unsigned char *q =
      conc__ring_reserve(&s->ch->req, conc__pchan_req(s->ch), p->cap, n, &adv);
  if (!q) {
    if (ar)
      arena_give(s->ar, e->ofirst, e->ocount);
    e->ocount = 0;
    return 0;
  }
  if (flags & CONC__FF_FD) {
    /* (the copy into the memfd happens under mu: bulk inputs are rare and
     * large, and mu keeps their descriptors in ring order) */
    bulk = conc__memfd_from(in, len);
    int rc = bulk < 0 ? bulk : conc__send_fd(s->sock, bulk, MSG_DONTWAIT);
    if (bulk >= 0)
      close(bulk);
    if (rc && ar)
      arena_give(s->ar, e->ofirst, e->ocount);
    if (rc)
      e->ocount = 0;
    if (bulk < 0)
      return bulk;
    if (rc == CONC_EAGAIN || rc == -EAGAIN)
      return 0; /* the worker has not read its earlier ones: full */
    if (rc) {  /* the worker is gone: the task waits for another */
      s->hup = true;
      return SEND_DEAD;
    }
  }
  bool found;
  size_t index = name_index(p, name, &found); /* found: checked at submit */
  conc__frame_header(q, CONC__FT_TASK, flags, (uint32_t)plen, id);
  conc__put32(q + 16, (uint32_t)index);
  conc__put32(q + 20, 0);
  if (dl) /* conc_now() is CLOCK_MONOTONIC, as the worker's clock */
    conc__put64(q + 24, f->u.deadline <= 0 ? 0 : (uint64_t)(f->u.deadline * 1e9));
  if (ar) {
    unsigned char *o = q + 16 + (dl ? 16 : 8);
    conc__put64(o, (uint64_t)e->ofirst * s->ar->unit);
    conc__put64(o + 8, (uint64_t)e->ocount * s->ar->unit);
  }
  unsigned char *body = q + 16 + hl;
  if (flags & CONC__FF_FD)
    conc__put64(body, len);
  else if (len)
    memcpy(body, in, len);
  if (in_off)
    *in_off = (uint32_t)(body - conc__pchan_req(s->ch));
  if (conc__ring_publish(&s->ch->req, adv + n))
    conc__futex_wake(&s->ch->req.sleep, 1, true);
  return 1;
}

static slot *best_slot(ppool *p) {
  slot *best = NULL;
  for (unsigned i = 0; i < p->nslots; i++) {
    slot *s = &p->slots[i];
    if (slot_accepts(p, s) && (!best || s->fl_n < best->fl_n))
      best = s;
  }
  return best;
}

static void dispatch_(ppool *p, done_list *d);

/* Hand queued tasks to workers while some accept them; wake submitters
 * waiting for room. */
static void dispatch(ppool *p, done_list *d) {
  size_t before = p->npending;
  dispatch_(p, d);
  if (p->room_waiters && p->npending < before)
    pthread_cond_broadcast(&p->room_cv);
}

static void dispatch_(ppool *p, done_list *d) {
  while (p->retry_head || p->pend_head) {
    slot *s = best_slot(p);
    if (!s)
      return;
    bool retry = p->retry_head != NULL;
    conc_future *f = retry ? p->retry_head : p->pend_head;
    if (!retry) {
      int st = conc__future_start(f);
      if (st == CONC__SKIPPED) { /* cancelled while queued */
        conc__fq_pop(&p->pend_head, &p->pend_tail);
        p->npending--;
        p->n_cancelled++;
        conc_future_release(f);
        continue;
      }
      if (st == CONC_EDEADLINE) {
        conc__fq_pop(&p->pend_head, &p->pend_tail);
        p->npending--;
        p->n_deadline++;
        done_add(d, f, CONC_EDEADLINE, 0,
                 conc__strdup("deadline passed before the task started"));
        continue;
      }
      /* RUNNING now: it waits in the retry queue (empty, since we only
       * take from pending when it is) until a ring has room */
      conc__fq_pop(&p->pend_head, &p->pend_tail);
      p->npending--;
      conc__fq_push(&p->retry_head, &p->retry_tail, f);
    }
    uint64_t id = ++p->next_id;
    inflight e = {f, id, (f->flags & FF_TIMED) ? f->u.submitted : NAN, false,
                  0, 0, 0};
    int rc = send_task(p, s, f, id, NULL, NULL, &e);
    if (rc == 0) {
      /* no room in the least loaded ring: wait for results */
      return;
    }
    if (rc == SEND_DEAD)
      continue; /* f stays first in the retry queue */
    conc__fq_pop(&p->retry_head, &p->retry_tail);
    if (rc < 0) {
      p->n_failed++;
      done_add(d, f, rc, 0, conc__asprintf("cannot send the task's input: %s",
                                           conc_strerror(rc)));
      continue;
    }
    unsigned k = (s->fl_head + s->fl_n) % p->depth;
    s->fl[k] = e;
    s->fl_n++;
    s->sent++;
  }
}

/* Wake the collector (it may sleep in poll). */
static void poke(ppool *p) {
  uint64_t one = 1;
  ssize_t n = write(p->evfd, &one, sizeof one);
  (void)n;
}

/* ---- collector ---- */

static char *status_text(int status) {
  if (WIFSIGNALED(status))
    return conc__asprintf("killed by signal %d (%s)", WTERMSIG(status),
                          strsignal(WTERMSIG(status)));
  if (WIFEXITED(status))
    return conc__asprintf("exited with status %d", WEXITSTATUS(status));
  return conc__asprintf("ended (wait status %#x)", (unsigned)status);
}

static int status_detail(int status) {
  if (WIFSIGNALED(status))
    return -WTERMSIG(status);
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  return 0;
}

/* Everything is over: fail what is queued (under mu). */
static void break_pool(ppool *p, done_list *d, const char *why) {
  if (!p->broken)
    conc_log(CONC_LOG_ERROR, "process pool broken: %s", why);
  p->broken = true;
  pthread_cond_broadcast(&p->room_cv);
  conc_future *f;
  while ((f = conc__fq_pop(&p->retry_head, &p->retry_tail))) {
    p->n_failed++;
    done_add(d, f, CONC_EBROKEN, 0, conc__strdup(why));
  }
  while ((f = conc__fq_pop(&p->pend_head, &p->pend_tail))) {
    p->npending--;
    if (conc__future_start(f) == CONC__SKIPPED) {
      conc_future_release(f);
      continue;
    }
    p->n_failed++;
    done_add(d, f, CONC_EBROKEN, 0, conc__strdup(why));
  }
}

static void hist_add(uint64_t *h, double seconds) {
  double ns = seconds * 1e9;
  int b = 0;
  while (b < HIST_BUCKETS - 1 && ns >= 2.0) {
    ns /= 2;
    b++;
  }
  h[b]++;
}

static double hist_quantile(const uint64_t *h, double q) {
  uint64_t total = 0;
  for (int b = 0; b < HIST_BUCKETS; b++)
    total += h[b];
  if (total == 0)
    return NAN;
  uint64_t want = (uint64_t)(q * (double)(total - 1)) + 1, acc = 0;
  for (int b = 0; b < HIST_BUCKETS; b++) {
    acc += h[b];
    if (acc >= want)
      return ldexp(1.0, b + 1) * 1e-9; /* the bucket's upper bound */
  }
  return ldexp(1.0, HIST_BUCKETS) * 1e-9;
}

/* Take one result from s's ring.  Returns 1 if one was handled, 0 if the
 * ring is empty, <0 on a protocol error (the worker is killed). */
static int take_result(ppool *p, slot *s, done_list *d) {
  conc__frame fr;
  size_t adv;
  int rc = conc__ring_peek(&s->ch->rsp, conc__pchan_rsp(s->ch), p->cap, 0, &fr,
                           &adv);
  if (rc <= 0)
    return rc;
  conc__result_msg r;
  if (conc__result_decode(&fr, &r) != 0)
    return CONC_EPROTO;
  pthread_mutex_lock(&p->mu);
  if (s->fl_n == 0 || s->fl[s->fl_head].id != fr.id) {
    pthread_mutex_unlock(&p->mu);
    return CONC_EPROTO;
  }
  inflight e = s->fl[s->fl_head];
  s->fl_head = (s->fl_head + 1) % p->depth;
  s->fl_n--;
  pthread_mutex_unlock(&p->mu);

  bool in_arena = (fr.flags & CONC__FF_ARENA) != 0;
  if (e.ocount && !in_arena) /* offered, not used */
    arena_give(s->ar, e.ofirst, e.ocount);
  if (in_arena && (!e.f || !e.ocount || r.len > (uint64_t)e.ocount * s->ar->unit)) {
    if (e.ocount)
      arena_give(s->ar, e.ofirst, e.ocount);
    if (e.f) { /* fail it: the worker is killed for the bad frame */
      pthread_mutex_lock(&p->mu);
      p->n_failed++;
      pthread_mutex_unlock(&p->mu);
      done_add(d, e.f, CONC_EPROTO, 0,
               conc__asprintf("bad output from worker %d", s->pid));
    }
    conc__ring_release(&s->ch->rsp, adv);
    return CONC_EPROTO;
  }
  if (!e.f) { /* the initializer */
    conc__ring_release(&s->ch->rsp, adv);
    if (r.outcome != 0) {
      char *why = conc__asprintf("the initializer failed (code %d): %.*s",
                                 r.code, (int)r.msg_len, r.msg ? r.msg : "");
      pthread_mutex_lock(&p->mu);
      break_pool(p, d, why ? why : "the initializer failed");
      pthread_mutex_unlock(&p->mu);
      conc__free(why);
    }
    return 1;
  }
  conc_future *f = e.f;
  int outcome = r.outcome;
  char *msg = NULL;
  if (outcome != 0 && r.msg_len) {
    msg = conc__malloc((size_t)r.msg_len + 1);
    if (msg) {
      memcpy(msg, r.msg, r.msg_len);
      msg[r.msg_len] = 0;
    }
  }
  const char *name;
  const void *in;
  size_t len;
  conc_bytes *out;
  conc__closure_info(f->fn, f->arg, &name, &in, &len, &out);
  int bad = 0; /* a transport failure: the worker is killed */
  int bulk = -1;
  if (fr.flags & CONC__FF_FD) { /* sent before the frame: it is there */
    int e2 = conc__recv_fd(s->sock, &bulk, MSG_DONTWAIT);
    struct stat st;
    if (e2 || fstat(bulk, &st) != 0 || (uint64_t)st.st_size != r.len)
      bad = CONC_EPROTO;
  }
  if (in_arena) { /* handed over where the worker wrote it */
    atomic_fetch_add_explicit(&s->ar->refs, 1, memory_order_relaxed);
    conc__closure_set_view(f->arg, s->ar->base + (size_t)e.ofirst * s->ar->unit,
                           (size_t)r.len, view_free, s->ar,
                           (uint64_t)e.ocount << 8 | e.ofirst);
  } else if (outcome == 0 && !bad) {
    out->len = 0;
    if (r.len <= SIZE_MAX)
      take_cached(p, out, (size_t)r.len);
    if (r.len > SIZE_MAX || conc_bytes_reserve(out, (size_t)r.len) != 0)
      outcome = CONC_ENOMEM;
    size_t got = 0;
    while (outcome == 0 && bulk >= 0 && got < r.len) {
      ssize_t k = pread(bulk, out->data + got, (size_t)r.len - got, (off_t)got);
      if (k < 0 && errno == EINTR)
        continue;
      if (k <= 0) {
        bad = CONC_EPROTO;
        break;
      }
      got += (size_t)k;
    }
    if (outcome == 0 && !bad && bulk < 0 && r.len)
      memcpy(out->data, r.out, (size_t)r.len);
    if (outcome == 0 && !bad)
      out->len = (size_t)r.len;
  }
  if (bulk >= 0)
    close(bulk);
  if (bad) {
    conc__free(msg);
    outcome = CONC_EPROTO;
    msg = conc__asprintf("lost the task's output from worker %d", s->pid);
  }
  if (conc__ring_release(&s->ch->rsp, adv))
    conc__futex_wake(&s->ch->rsp.room, 1, true);
  /* counted before the future is published: a caller that saw the result
   * sees the count */
  pthread_mutex_lock(&p->mu);
  if (outcome == 0) { /* a running max of output sizes, decaying */
    double sz = (double)r.len;
    p->out_hint = sz > p->out_hint ? sz : p->out_hint - (p->out_hint - sz) / 8;
  }
  /* adapt the pipelining depth to the run time (EWMA, 1/8) */
  p->avg_run_ns += ((double)r.run_ns - p->avg_run_ns) / 8;
  if (++p->samples >= 8) {
    double w = 1 + ceil(PIPE_NS / fmax(p->avg_run_ns, 1));
    p->want = w >= p->depth ? p->depth : w < 2 ? 2 : (unsigned)w;
  }
  if (!isnan(e.submitted)) {
    double run = (double)r.run_ns * 1e-9;
    hist_add(p->hist_run, run);
    hist_add(p->hist_wait, conc_now() - run - e.submitted);
  }
  if (outcome == 0)
    p->n_completed++;
  else if (outcome == CONC_ECANCELED)
    p->n_cancelled++;
  else if (outcome == CONC_EDEADLINE)
    p->n_deadline++;
  else
    p->n_failed++;
  pthread_mutex_unlock(&p->mu);
  if (outcome == 0) {
    done_ok(d, f, out);
  } else {
    if (outcome == CONC_ETASK && !msg)
      msg = conc__strdup("task failed");
    done_add(d, f, outcome, outcome == CONC_ETASK ? r.code : 0, msg);
  }
  return bad ? bad : 1;
}

/* Start a worker in a dead slot; on failure (descriptors or processes
 * short for a moment) try again later with a growing delay, and break the
 * pool only after 8 failures in a row (under rx and mu). */
static void respawn_slot(ppool *p, slot *s, done_list *d) {
  int rc = slot_spawn(p, s);
  if (rc == 0) {
    s->spawn_fails = 0;
    return;
  }
  s->state = W_DEAD;
  s->spawn_fails++;
  s->retry_at = conc_now() + fmin(2.0, 0.01 * (double)(1u << s->spawn_fails));
  if (s->spawn_fails >= 8) {
    char *why = conc__asprintf("cannot start a worker: %s", conc_strerror(rc));
    break_pool(p, d, why ? why : "cannot start a worker");
    conc__free(why);
  } else {
    conc_log(CONC_LOG_WARN, "process pool: cannot start a worker (%s); "
             "trying again", conc_strerror(rc));
  }
}

/* A worker is gone and its status known (or unknowable): settle its
 * tasks and replace it (under mu). */
static void settle_death(ppool *p, slot *s, done_list *d) {
  uint64_t started = atomic_load_explicit(&s->ch->started, memory_order_acquire);
  bool expected = s->exit_sent;
  char *st = s->status_known ? status_text(s->status)
                             : conc__strdup("ended (status unknown)");
  bool any_started = false;
  /* the entries in ring order: the started one fails, the rest retry */
  conc_future *retry_h = NULL, *retry_t = NULL;
  for (unsigned k = 0; k < s->fl_n; k++) {
    inflight e = s->fl[(s->fl_head + k) % p->depth];
    if (e.ocount) /* the worker is gone: it writes there no more */
      arena_give(s->ar, e.ofirst, e.ocount);
    if (!e.f) { /* the initializer died */
      char *why = conc__asprintf("a worker died in the initializer: %s",
                                 st ? st : "");
      break_pool(p, d, why ? why : "a worker died in the initializer");
      conc__free(why);
      any_started = true;
      continue;
    }
    if (e.id == started) {
      any_started = true;
      bool killed = s->kill_reason == CONC_EKILLED && s->kill_id == e.id;
      int outcome = killed ? CONC_EKILLED : CONC_EWORKER;
      char *msg = killed ? conc__asprintf("task killed (worker %d %s)",
                                          s->pid, st ? st : "")
                         : conc__asprintf("worker %d died under the task: %s",
                                          s->pid, st ? st : "");
      p->n_failed++;
      done_add(d, e.f, outcome, s->status_known ? status_detail(s->status) : 0,
               msg);
    } else {
      if (e.in_ring) { /* its input is only in the dead worker's ring */
        const char *name;
        const void *in;
        size_t len;
        conc_bytes *out;
        conc__closure_info(e.f->fn, e.f->arg, &name, &in, &len, &out);
        if (len)
          memcpy(conc__closure_input(e.f->arg),
                 conc__pchan_req(s->ch) + e.in_off, len);
      }
      conc__fq_push(&retry_h, &retry_t, e.f);
    }
  }
  if (retry_h) { /* in front of what waits: they came first */
    atomic_store_explicit(&retry_t->next, p->retry_head, memory_order_relaxed);
    if (!p->retry_head)
      p->retry_tail = retry_t;
    p->retry_head = retry_h;
  }
  if (p->broken)
    break_pool(p, d, "the pool is broken");
  if (!expected && !any_started && s->status_known)
    conc_log(CONC_LOG_WARN, "process pool: worker %d %s", s->pid,
             st ? st : "");
  conc__free(st);
  s->idle_deaths = (any_started || expected) ? 0 : s->idle_deaths + 1;
  s->fl_n = 0;
  slot_close(s);
  s->state = W_DEAD;
  bool respawn = !p->broken && !(p->shutdown && !p->retry_head &&
                                 !p->pend_head);
  if (respawn && s->idle_deaths >= 5) {
    break_pool(p, d, "workers keep dying before running a task");
    respawn = false;
  }
  if (respawn)
    respawn_slot(p, s, d);
  else
    s->state = W_EMPTY;
}

static void server_messages(ppool *p, done_list *d) {
  for (;;) {
    conc__fsrv_msg m;
    int rc = p->srv_gone ? 0 : conc__fsrv_recv(&p->srv, &m);
    if (rc == 0)
      return;
    if (rc < 0 && rc != CONC_ECLOSED) { /* a bad message: not fatal */
      conc_log(CONC_LOG_WARN, "process pool: fork server message: %s",
               conc_strerror(rc));
      if (rc == CONC_EPROTO)
        continue; /* that message is consumed: read on */
      return;
    }
    pthread_mutex_lock(&p->mu);
    if (rc < 0) {
      p->srv_gone = true;
      if (!p->shutdown)
        break_pool(p, d, "the fork server is gone");
      /* statuses will never come: settle with what we know */
      for (unsigned i = 0; i < p->nslots; i++) {
        slot *s = &p->slots[i];
        if (slot_live(s) && s->state == W_SPAWNING && s->pid == 0)
          s->hup = true; /* it will never start */
      }
      pthread_mutex_unlock(&p->mu);
      return;
    }
    if (m.kind == CONC__FS_SPAWNED && m.a < p->nslots) {
      slot *s = &p->slots[m.a];
      bool waiting = slot_live(s) && s->pid == 0 && !s->status_known;
      if (waiting && m.b > 0) {
        s->pid = (int)m.b;
        s->pidfd = m.fd;
        m.fd = -1;
        if (s->state == W_SPAWNING) /* else retiring already */
          s->state = W_READY;
      } else if (waiting) {
        s->hup = true;
        s->status_known = true;
        s->status = 127 << 8;
        conc_log(CONC_LOG_ERROR, "process pool: fork failed: %s",
                 strerror((int)m.c));
      }
    } else if (m.kind == CONC__FS_EXITED) {
      for (unsigned i = 0; i < p->nslots; i++) {
        slot *s = &p->slots[i];
        if (slot_live(s) && s->pid == (int)m.a) {
          s->status_known = true;
          s->status = (int)m.b;
        }
      }
    }
    pthread_mutex_unlock(&p->mu);
    if (m.fd >= 0)
      close(m.fd);
  }
}

/* Retire workers that reached max_tasks_per_child, and end them all at
 * shutdown (under mu). */
static void send_exits(ppool *p) {
  bool idle = !p->pend_head && !p->retry_head;
  for (unsigned i = 0; i < p->nslots; i++) {
    slot *s = &p->slots[i];
    if (!slot_live(s) || s->exit_sent || s->fl_n)
      continue;
    bool retire = p->max_tasks && s->sent >= p->max_tasks;
    if (!retire && !(p->shutdown && idle) && !p->broken)
      continue;
    size_t adv;
    unsigned char *q = conc__ring_reserve(&s->ch->req, conc__pchan_req(s->ch),
                                          p->cap, CONC__WIRE_HDR, &adv);
    if (!q)
      continue;
    conc__frame_header(q, CONC__FT_EXIT, 0, 0, 0);
    if (conc__ring_publish(&s->ch->req, adv + CONC__WIRE_HDR))
      conc__futex_wake(&s->ch->req.sleep, 1, true);
    s->exit_sent = true;
    s->state = W_RETIRING;
  }
}

/* Pass stop requests on, and kill what overran (under mu).  Returns the
 * time of the next check, INFINITY if none is due. */
static double check_running(ppool *p) {
  double next = INFINITY;
  double now = conc_now();
  uint64_t now_ns = mono_ns();
  for (unsigned i = 0; i < p->nslots; i++) {
    slot *s = &p->slots[i];
    if (s->state == W_DEAD)
      next = fmin(next, s->retry_at);
    if (s->state != W_READY && s->state != W_RETIRING)
      continue;
    if (!s->fl_n || s->hup)
      continue;
    /* tasks in flight: look again soon (a stop request sets a bit in the
     * future and wakes nobody; a task may start and overrun) */
    next = fmin(next, now + STOP_POLL);
    inflight e = s->fl[s->fl_head];
    uint64_t started = atomic_load_explicit(&s->ch->started, memory_order_acquire);
    if (!e.f || started != e.id)
      continue;
    if (p->task_timeout >= 0) {
      uint64_t t0 = atomic_load_explicit(&s->ch->started_ns, memory_order_relaxed);
      double ran = (double)(now_ns - t0) * 1e-9;
      if (ran >= p->task_timeout)
        slot_kill(s, CONC_EKILLED, e.id);
      else
        next = fmin(next, now + (p->task_timeout - ran));
    }
    uint32_t fs = atomic_load_explicit(&e.f->state, memory_order_acquire);
    if ((fs & FS_STOP) && s->stop_sent_id != e.id) {
      s->stop_sent_id = e.id;
      s->stop_deadline = p->stop_grace < 0 ? INFINITY : now + p->stop_grace;
      atomic_store_explicit(&s->ch->stop_id, e.id, memory_order_release);
      atomic_fetch_add_explicit(&s->ch->stop_seq, 1, memory_order_acq_rel);
      conc__futex_wake(&s->ch->stop_seq, INT_MAX, true);
    }
    if (s->stop_sent_id == e.id) {
      if (now >= s->stop_deadline)
        slot_kill(s, CONC_EKILLED, e.id);
      else
        next = fmin(next, s->stop_deadline);
    }
  }
  return next;
}

static bool collector_done(ppool *p) {
  if (!p->shutdown && !p->broken)
    return false;
  if (p->pend_head || p->retry_head || p->deferred)
    return false;
  for (unsigned i = 0; i < p->nslots; i++)
    if (slot_live(&p->slots[i]) || p->slots[i].state == W_DEAD)
      return false;
  return true;
}

/* Take what every ring holds (under rx).  True if something was taken. */
static bool collect_all(ppool *p, done_list *d) {
  bool work = false;
  for (unsigned i = 0; i < p->nslots; i++) {
    slot *s = &p->slots[i];
    if (!s->ch)
      continue;
    for (int k = 0; k < 64; k++) {
      int rc = take_result(p, s, d);
      if (rc == 0)
        break;
      if (rc < 0) {
        pthread_mutex_lock(&p->mu);
        conc_log(CONC_LOG_ERROR,
                 "process pool: bad bytes from worker %d: killing it", s->pid);
        slot_kill(s, 0, 0);
        pthread_mutex_unlock(&p->mu);
        break;
      }
      work = true;
    }
  }
  return work;
}

/* A thread waiting for one of the pool's futures collects results (no
 * wake-up hop through the collector).  It publishes the futures without
 * done callbacks; those with callbacks go to the collector, so that
 * callbacks run on the collector thread, never on a waiter that may hold
 * a lock the callback wants.  (A callback added in the instant between
 * that check and the publication runs on the waiter.) */
static bool help_locked(pp_helper *hp, done_list *mine);

static bool pp_help(conc__helper *h) {
  pp_helper *hp = (pp_helper *)h;
  if (pthread_mutex_trylock(&hp->rx) != 0)
    return false;
  done_list mine = {NULL};
  bool work = help_locked(hp, &mine);
  pthread_mutex_unlock(&hp->rx);
  done_run(&mine);
  return work;
}

/* pp_help's work, under rx: collect, dispatch, and put the futures to
 * publish here in *mine (the caller runs them after unlocking rx). */
static bool help_locked(pp_helper *hp, done_list *mine) {
  ppool *p = hp->h.pool;
  done_list d = {NULL};
  bool work = p && collect_all(p, &d);
  bool poke_it = false;
  if (work || d.head) { /* (a transport failure fails a future: not work) */
    pthread_mutex_lock(&p->mu);
    /* the results made room: hand waiting tasks to the workers here
     * rather than through the collector (which need not wake) */
    if (work && (p->pend_head || p->retry_head))
      dispatch(p, &d);
    for (conc_future *f = d.head, *next; f; f = next) {
      next = atomic_load_explicit(&f->next, memory_order_relaxed);
      if (atomic_load_explicit(&f->cbs, memory_order_seq_cst)) {
        atomic_store_explicit(&f->next, p->deferred, memory_order_relaxed);
        p->deferred = f;
        poke_it = true;
      } else {
        done_push(mine, f);
      }
    }
    pthread_mutex_unlock(&p->mu);
  }
  if (poke_it)
    poke(p);
  return work;
}

/* A waiter starts or stops collecting results (future.c): while one
 * does, workers leave the collector asleep when they publish (pchan.h
 * `helped`).  When the last one stops, it clears the flags, then collects
 * what was published before (the Dekker pair's second half): later
 * results wake the collector again.  So the waiter that is about to wait
 * for the next result takes this one too, without waking anybody. */
static void pp_helping(conc__helper *h, bool on) {
  pp_helper *hp = (pp_helper *)h;
  done_list mine = {NULL};
  pthread_mutex_lock(&hp->rx);
  ppool *p = h->pool;
  unsigned before = hp->nhelp;
  hp->nhelp = on ? before + 1 : before - 1;
  if (p && (before == 0) != (hp->nhelp == 0)) {
    for (unsigned i = 0; i < p->nslots; i++)
      if (p->slots[i].ch)
        atomic_store_explicit(&p->slots[i].ch->helped, on,
                              memory_order_seq_cst);
    if (!on) {
      atomic_thread_fence(memory_order_seq_cst); /* before reading heads */
      help_locked(hp, &mine);
    }
  }
  pthread_mutex_unlock(&hp->rx);
  done_run(&mine);
}

static void pp_helper_destroy(conc__helper *h) {
  pp_helper *hp = (pp_helper *)h;
  conc__bufcache_destroy(&hp->cache);
  pthread_mutex_destroy(&hp->rx);
  conc__free(hp);
}

static void pp_recycle(conc__helper *h, conc_bytes *b) {
  conc__bufcache_put(&((pp_helper *)h)->cache, b, RECYCLE_MAX);
}

/* An empty buffer with room for n bytes from the cache, if one fits. */
static void take_cached(struct ppool *p, conc_bytes *out, size_t n) {
  conc__bufcache_take(&p->hp->cache, out, n, RECYCLE_MIN);
}

/* Poll the server, the workers' sockets and pidfds (deaths) and the
 * eventfd; ms as poll's.  Marks dead workers, reads server messages. */
static void collector_poll(ppool *p, struct pollfd *pf, int *who, int ms,
                           done_list *d) {
  int n = 0;
  pf[n] = (struct pollfd){p->evfd, POLLIN, 0};
  who[n++] = -1;
  if (!p->srv_gone) {
    pf[n] = (struct pollfd){p->srv.ctl, POLLIN, 0};
    who[n++] = -2;
  }
  pthread_mutex_lock(&p->mu);
  bool pending_results = false;
  for (unsigned i = 0; i < p->nslots; i++) {
    slot *s = &p->slots[i];
    if (!slot_live(s) || s->hup)
      continue;
    if (s->sock >= 0) {
      pf[n] = (struct pollfd){s->sock, 0, 0};
      who[n++] = (int)i;
    }
    if (s->pidfd >= 0) {
      pf[n] = (struct pollfd){s->pidfd, POLLIN, 0};
      who[n++] = (int)i;
    }
    if (ms != 0) { /* going to sleep: ask for a wake-up (Dekker, pchan.h) */
      atomic_store_explicit(&s->ch->rsp.sleep, 1, memory_order_seq_cst);
      atomic_thread_fence(memory_order_seq_cst);
      if (atomic_load_explicit(&s->ch->rsp.head, memory_order_seq_cst) !=
          atomic_load_explicit(&s->ch->rsp.tail, memory_order_relaxed))
        pending_results = true;
    }
  }
  if (ms < 0) /* tasks sent since the timeout was computed: watch them */
    for (unsigned i = 0; i < p->nslots; i++)
      if (slot_live(&p->slots[i]) && p->slots[i].fl_n)
        ms = (int)(STOP_POLL * 1e3);
  p->sleep_inf = ms < 0;
  pthread_mutex_unlock(&p->mu);
  int r = poll(pf, (nfds_t)n, pending_results ? 0 : ms);
  if (ms != 0) {
    uint64_t junk;
    ssize_t rr = read(p->evfd, &junk, sizeof junk);
    (void)rr;
  }
  bool srv = false;
  pthread_mutex_lock(&p->mu);
  p->sleep_inf = false;
  for (int k = 0; r > 0 && k < n; k++) {
    if (!pf[k].revents)
      continue;
    if (who[k] >= 0)
      p->slots[who[k]].hup = true;
    else if (who[k] == -2)
      srv = true;
  }
  if (ms != 0)
    for (unsigned i = 0; i < p->nslots; i++)
      if (p->slots[i].ch)
        atomic_store_explicit(&p->slots[i].ch->rsp.sleep, 0,
                              memory_order_relaxed);
  pthread_mutex_unlock(&p->mu);
  if (srv)
    server_messages(p, d);
}

static void *collector(void *arg) {
  ppool *p = arg;
  conc__block_signals();
  size_t npf = 2 + 2 * (size_t)p->nslots;
  struct pollfd *pf = conc__calloc(npf, sizeof *pf);
  int *who = conc__calloc(npf, sizeof *who);
  if (!pf || !who) {
    /* no memory for the poll set: poll the ring heads only, in slices */
    conc_log(CONC_LOG_ERROR, "process pool collector: out of memory");
  }
  uint64_t idle_since = 0, last_poll = 0;
  double next = INFINITY;
  done_list d = {NULL};
  for (;;) {
    /* 1. results */
    pthread_mutex_lock(&p->hp->rx);
    bool work = collect_all(p, &d);
    pthread_mutex_unlock(&p->hp->rx);
    done_run(&d);
    /* 2. events: now and then while busy, or asleep when idle */
    uint64_t now = mono_ns();
    if (work)
      idle_since = 0;
    else if (!idle_since)
      idle_since = now;
    if (pf && who) {
      if (!work && now - idle_since >= SPIN_NS) {
        int ms = -1;
        if (next != INFINITY) {
          double w = ceil((next - conc_now()) * 1e3);
          ms = w < 0 ? 0 : w > 1e6 ? 1000000 : (int)w;
        }
        collector_poll(p, pf, who, ms, &d);
        idle_since = 0;
        last_poll = mono_ns();
      } else if (now - last_poll >= 1000000u) {
        collector_poll(p, pf, who, 0, &d);
        last_poll = now;
      } else if (!work) {
        sched_yield();
      }
    } else {
      conc_sleep(0.001);
    }
    /* 3. deaths, dispatch, exits, running tasks */
    pthread_mutex_lock(&p->hp->rx);
    pthread_mutex_lock(&p->mu);
    for (unsigned i = 0; i < p->nslots; i++) {
      slot *s = &p->slots[i];
      if (slot_live(s) && s->hup && (s->status_known || p->srv_gone)) {
        pthread_mutex_unlock(&p->mu);
        while (take_result(p, s, &d) > 0) { /* what it sent before dying */
        }
        pthread_mutex_lock(&p->mu);
        settle_death(p, s, &d);
      }
    }
    for (unsigned i = 0; i < p->nslots; i++) {
      slot *s = &p->slots[i];
      if (s->state != W_DEAD)
        continue;
      bool idle = !p->pend_head && !p->retry_head;
      if (p->broken || p->srv_gone || (p->shutdown && idle))
        s->state = W_EMPTY;
      else if (conc_now() >= s->retry_at)
        respawn_slot(p, s, &d); /* an earlier spawn failed: try again */
    }
    while (p->deferred) { /* completed by waiters, callbacks to run */
      conc_future *f = p->deferred;
      p->deferred = atomic_load_explicit(&f->next, memory_order_relaxed);
      done_push(&d, f);
    }
    dispatch(p, &d);
    send_exits(p);
    next = check_running(p);
    bool done = collector_done(p);
    pthread_mutex_unlock(&p->mu);
    pthread_mutex_unlock(&p->hp->rx);
    done_run(&d);
    if (done)
      break;
  }
  conc__free(pf);
  conc__free(who);
  pthread_mutex_lock(&p->mu);
  p->thread_done = true;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

/* ---- executor interface ---- */

/* Insert f into the pending FIFO by priority with ageing, as the thread
 * pool does: key = arrival - 64 x priority, smaller first (wrap-safe
 * comparison); the key lives in f->detail while the task is pending. */
static void prio_insert(ppool *p, conc_future *f, int prio) {
  int32_t key = (int32_t)(p->arrivals++ - (uint32_t)(64 * prio));
  f->detail = key;
  conc_future *prev = NULL;
  for (conc_future *x = p->pend_head; x;
       x = atomic_load_explicit(&x->next, memory_order_relaxed)) {
    if ((int32_t)((uint32_t)key - (uint32_t)x->detail) < 0)
      break;
    prev = x;
  }
  if (!prev) {
    atomic_store_explicit(&f->next, p->pend_head, memory_order_relaxed);
    p->pend_head = f;
    if (!p->pend_tail)
      p->pend_tail = f;
  } else {
    conc_future *next = atomic_load_explicit(&prev->next, memory_order_relaxed);
    atomic_store_explicit(&f->next, next, memory_order_relaxed);
    atomic_store_explicit(&prev->next, f, memory_order_relaxed);
    if (!next)
      p->pend_tail = f;
  }
}

static int submit_core(conc_executor *ex, conc_fn fn, void *arg,
                       const conc_submit_options *o, unsigned flags,
                       conc_future **out, const void *direct);

static int pp_submit(conc_executor *ex, conc_fn fn, void *arg,
                     const conc_submit_options *o, unsigned flags,
                     conc_future **out) {
  return submit_core(ex, fn, arg, o, flags, out, NULL);
}

/* conc_executor_submit_task: when a worker can take the task at once, its
 * input goes from the caller's buffer straight into the ring - one copy,
 * and the closure's buffer is never touched. */
static int pp_submit_task(conc_executor *ex, const char *name, const void *in,
                          size_t len, const conc_submit_options *opts,
                          conc_future **out) {
  conc_fn fn;
  void *arg;
  int rc = conc__closure_new_empty(name, len, &fn, &arg);
  if (rc)
    return rc;
  rc = submit_core(ex, fn, arg, opts, FF_FREE_ARG, out, in);
  if (rc)
    conc__closure_free(arg);
  return rc;
}

static int submit_core(conc_executor *ex, conc_fn fn, void *arg,
                       const conc_submit_options *o, unsigned flags,
                       conc_future **out, const void *direct) {
  ppool *p = P(ex);
  const char *name;
  const void *in;
  size_t len;
  conc_bytes *obuf;
  if (!conc__closure_info(fn, arg, &name, &in, &len, &obuf))
    return CONC_ENOTSUP; /* a function pointer cannot cross processes */
  if (!conc__executor_local(ex))
    return CONC_EBROKEN;
  bool found = false;
  size_t index = name ? name_index(p, name, &found) : 0;
  if (!found)
    return CONC_ENOENT;
  conc_future *f = conc__future_new_task(fn, arg, out ? 2 : 1);
  if (!f)
    return CONC_ENOMEM;
  (void)index;
  f->flags |= (uint16_t)(flags | FF_HELPED);
  conc__closure_set_helper(arg, &p->hp->h);
  if (o && o->deadline >= 0) {
    f->flags |= FF_DEADLINE;
    f->u.deadline = o->deadline;
  } else if (p->timing) {
    f->flags |= FF_TIMED;
    f->u.submitted = conc_now();
  }
  done_list d = {NULL};
  pthread_mutex_lock(&p->mu);
  int rc = p->broken ? CONC_EBROKEN : p->shutdown ? CONC_ESHUTDOWN : 0;
  /* backpressure: wait for room (never on the collector: callbacks that
   * submit must not block the thread that makes room) */
  if (!rc && p->max_queued && p->npending >= p->max_queued &&
      !pthread_equal(pthread_self(), p->thread)) {
    double timeout = o ? o->timeout : -1;
    double deadline = conc__deadline(timeout);
    while (!rc && p->npending >= p->max_queued) {
      if (timeout == 0) {
        rc = CONC_EAGAIN;
        break;
      }
      p->room_waiters++;
      if (deadline == INFINITY) {
        pthread_cond_wait(&p->room_cv, &p->mu);
      } else {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        double left = deadline - conc_now();
        if (left < 0)
          left = 0;
        ts.tv_sec += (time_t)left;
        ts.tv_nsec += (long)((left - (double)(time_t)left) * 1e9);
        if (ts.tv_nsec >= 1000000000L) {
          ts.tv_sec++;
          ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&p->room_cv, &p->mu, &ts);
      }
      p->room_waiters--;
      rc = p->broken ? CONC_EBROKEN : p->shutdown ? CONC_ESHUTDOWN : 0;
      if (!rc && p->npending >= p->max_queued && conc_now() >= deadline)
        rc = CONC_ETIMEDOUT;
    }
  }
  if (rc) {
    pthread_mutex_unlock(&p->mu);
    f->flags &= (uint16_t)~FF_FREE_ARG; /* the caller frees arg on error */
    conc_future_release(f);
    if (out)
      conc_future_release(f);
    return rc;
  }
  p->n_submitted++;
  if (direct && !p->pend_head && !p->retry_head && fits_inline(p, len + 8)) {
    slot *s = best_slot(p);
    int st = s ? conc__future_start(f) : 1;
    if (st == CONC_EDEADLINE) {
      p->n_deadline++;
      done_add(&d, f, CONC_EDEADLINE, 0,
               conc__strdup("deadline passed before the task started"));
      direct = NULL;
      goto queued;
    }
    if (st == 0) { /* RUNNING: into the ring now, or first in line */
      uint64_t id = ++p->next_id;
      uint32_t off = 0;
      inflight e = {f, id, (f->flags & FF_TIMED) ? f->u.submitted : NAN, true,
                    0, 0, 0};
      int sr = send_task(p, s, f, id, direct, &off, &e);
      if (sr == 1) {
        unsigned k = (s->fl_head + s->fl_n) % p->depth;
        e.in_off = off;
        s->fl[k] = e;
        s->fl_n++;
        s->sent++;
        direct = NULL;
        goto queued;
      }
      memcpy(conc__closure_input(arg), direct, len);
      direct = NULL;
      conc__fq_push(&p->retry_head, &p->retry_tail, f);
      dispatch(p, &d);
      goto queued;
    }
  }
  if (direct && len)
    memcpy(conc__closure_input(arg), direct, len);
  int prio = o ? o->priority : 0;
  if (prio)
    p->prio_mode = true;
  if (p->prio_mode) {
    prio_insert(p, f, prio);
  } else {
    f->detail = (int32_t)p->arrivals++; /* its key, should priorities come */
    conc__fq_push(&p->pend_head, &p->pend_tail, f);
  }
  p->npending++;
  dispatch(p, &d);
queued:;
  bool wake = p->sleep_inf; /* it must watch the task (stops, timeouts) */
  p->sleep_inf = false;
  pthread_mutex_unlock(&p->mu);
  if (wake)
    poke(p);
  done_run(&d);
  if (out)
    *out = f;
  return 0;
}

static int pp_shutdown(conc_executor *ex, bool wait, bool cancel_futures) {
  ppool *p = P(ex);
  if (!conc__executor_local(ex))
    return 0;
  done_list d = {NULL};
  pthread_mutex_lock(&p->mu);
  p->shutdown = true;
  if (cancel_futures) {
    conc_future *f;
    while ((f = conc__fq_pop(&p->pend_head, &p->pend_tail))) {
      p->npending--;
      if (conc__future_cancel(f))
        p->n_cancelled++;
      conc_future_release(f);
    }
    for (unsigned i = 0; i < p->nslots; i++) {
      slot *s = &p->slots[i];
      for (unsigned k = 0; k < s->fl_n; k++) {
        inflight e = s->fl[(s->fl_head + k) % p->depth];
        if (e.f)
          conc_future_stop(e.f);
      }
    }
    for (conc_future *r = p->retry_head; r;
         r = atomic_load_explicit(&r->next, memory_order_relaxed))
      conc_future_stop(r);
  }
  bool own = pthread_equal(pthread_self(), p->thread);
  pthread_cond_broadcast(&p->room_cv);
  pthread_mutex_unlock(&p->mu);
  done_run(&d);
  poke(p);
  if (!wait)
    return 0;
  if (own)
    return CONC_EDEADLK;
  pthread_mutex_lock(&p->mu);
  while (!p->thread_done)
    pthread_cond_wait(&p->cv, &p->mu);
  pthread_mutex_unlock(&p->mu);
  return 0;
}

static void pp_free(conc_executor *ex) {
  ppool *p = P(ex);
  bool local = conc__executor_local(ex);
  if (local && p->thread_started)
    pthread_join(p->thread, NULL);
  if (p->hp) { /* first: a waiter may be collecting right now */
    if (local)
      pthread_mutex_lock(&p->hp->rx);
    p->hp->h.pool = NULL;
    if (local)
      pthread_mutex_unlock(&p->hp->rx);
    conc__helper_release(&p->hp->h);
    p->hp = NULL;
  }
  for (unsigned i = 0; i < p->nslots; i++) {
    slot *s = &p->slots[i];
    if (local) {
      slot_close(s);
    } else { /* a forked copy: our descriptors, not our children */
      if (s->sock >= 0)
        close(s->sock);
      if (s->pidfd >= 0)
        close(s->pidfd);
      if (s->watch_w >= 0)
        close(s->watch_w);
    }
    if (s->ar)
      arena_unref(s->ar); /* views of results may keep it mapped */
    s->ar = NULL;
    s->ch = NULL;
    if (s->memfd >= 0)
      close(s->memfd);
    conc__free(s->fl);
  }
  if (local) {
    conc__fsrv_close(&p->srv);
  } else {
    if (p->srv.ctl >= 0)
      close(p->srv.ctl);
    if (p->srv.death_w >= 0)
      close(p->srv.death_w);
    if (p->srv.pidfd >= 0)
      close(p->srv.pidfd);
  }
  if (p->evfd >= 0)
    close(p->evfd);
  conc__free(p->slots);
  conc__free(p->names);
  conc__free(p->initargs);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->cv);
  pthread_cond_destroy(&p->room_cv);
  conc__free(p);
}

static bool pp_is_own_thread(const conc_executor *ex) {
  const ppool *p = (const ppool *)ex;
  return p->thread_started && pthread_equal(pthread_self(), p->thread);
}

static void pp_stats(conc_executor *ex, conc_executor_stats *st) {
  ppool *p = P(ex);
  pthread_mutex_lock(&p->mu);
  st->submitted = p->n_submitted;
  st->completed = p->n_completed;
  st->failed = p->n_failed;
  st->cancelled = p->n_cancelled;
  st->deadline_missed = p->n_deadline;
  unsigned long long running = 0, queued = p->npending, workers = 0;
  for (conc_future *f = p->retry_head; f;
       f = atomic_load_explicit(&f->next, memory_order_relaxed))
    queued++;
  for (unsigned i = 0; i < p->nslots; i++) {
    slot *s = &p->slots[i];
    if (!slot_live(s))
      continue;
    workers++;
    if (s->fl_n) {
      inflight e = s->fl[s->fl_head];
      bool run = e.f && atomic_load(&s->ch->started) == e.id;
      running += run;
      queued += s->fl_n - run - (e.f == NULL);
    }
  }
  st->running = running;
  st->queued = queued;
  st->workers = (unsigned)workers;
  if (p->timing) {
    uint64_t t = 0;
    for (int b = 0; b < HIST_BUCKETS; b++)
      t += p->hist_run[b];
    st->timed = t;
    st->queue_wait_p50 = hist_quantile(p->hist_wait, 0.50);
    st->queue_wait_p99 = hist_quantile(p->hist_wait, 0.99);
    st->run_time_p50 = hist_quantile(p->hist_run, 0.50);
    st->run_time_p99 = hist_quantile(p->hist_run, 0.99);
  }
  pthread_mutex_unlock(&p->mu);
}

static const conc__executor_vt pp_vt = {
    "process_pool", pp_submit,        pp_shutdown, pp_free,
    pp_is_own_thread, pp_stats,       pp_submit_task,
};

/* ---- creation ---- */

void conc_process_pool_options_init(conc_process_pool_options *o) {
  if (!o)
    return;
  memset(o, 0, sizeof *o);
  o->size = sizeof *o;
  o->task_timeout = -1;
  o->stop_grace = 5;
}

int conc_process_pool_create(const conc_process_pool_options *opts,
                             conc_executor **out) {
  if (!out)
    return CONC_EINVAL;
  *out = NULL;
  conc_process_pool_options o;
  conc_process_pool_options_init(&o);
  if (opts) {
    if (opts->size != sizeof o)
      return CONC_EINVAL;
    o = *opts;
  }
  size_t cap = o.ring_size ? o.ring_size : (4u << 20);
  if (cap < (64u << 10) || cap > (1ull << 30) || (cap & (cap - 1)) ||
      o.max_workers > 4096 || (o.initargs_len && !o.initargs) ||
      isnan(o.task_timeout) || isnan(o.stop_grace) || o.max_in_flight > 4096)
    return CONC_EINVAL;
  if (!conc__init_done()) {
    conc_log(CONC_LOG_ERROR, "conc_process_pool_create: call "
                             "conc_init(&argc, &argv) first thing in main");
    return CONC_EPERM;
  }
  conc_task_fn initfn;
  if (o.initializer && conc_task_lookup(o.initializer, &initfn) != 0)
    return CONC_EINVAL;
  if (o.initializer &&
      CONC__WIRE_HDR + conc__round16(8 + o.initargs_len) >
          conc__pchan_inline_max(cap))
    return CONC_EINVAL;
  unsigned n = o.max_workers ? o.max_workers : (unsigned)conc_cpu_count();
  ppool *p = conc__calloc(1, sizeof *p);
  if (!p)
    return CONC_ENOMEM;
  p->ex.gen = conc__fork_gen(); /* pp_free's view until executor_init */
  int rc = 0;
  p->srv.ctl = p->srv.death_w = p->srv.pidfd = -1;
  p->srv.pid = -1;
  p->evfd = -1;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&p->room_cv, &ca);
  pthread_condattr_destroy(&ca);
  p->max_queued = o.max_queued;
  p->timing = (o.flags & CONC_EXECUTOR_TIMING) != 0;
  p->cap = cap;
  p->nslots = n;
  p->depth = 1 + (o.max_in_flight ? o.max_in_flight : 256);
  p->want = p->depth < 2 ? p->depth : 2; /* until run times are known */
  p->max_tasks = o.max_tasks_per_child;
  p->task_timeout = o.task_timeout < 0 ? -1 : o.task_timeout;
  p->stop_grace = o.stop_grace < 0 ? -1 : o.stop_grace;
  p->hp = conc__calloc(1, sizeof *p->hp);
  if (!p->hp) {
    rc = CONC_ENOMEM;
    goto fail;
  }
  atomic_init(&p->hp->h.refs, 1);
  p->hp->h.help = pp_help;
  p->hp->h.destroy = pp_helper_destroy;
  p->hp->h.recycle = pp_recycle;
  p->hp->h.helping = pp_helping;
  conc__bufcache_init(&p->hp->cache);
  p->hp->h.pool = p;
  pthread_mutex_init(&p->hp->rx, NULL);
  p->slots = conc__calloc(n, sizeof *p->slots);
  p->nnames = conc_task_count();
  p->names = conc__calloc(p->nnames ? p->nnames : 1, sizeof *p->names);
  if (!p->slots || !p->names) {
    rc = CONC_ENOMEM;
    goto fail;
  }
  for (size_t i = 0; i < p->nnames; i++)
    p->names[i] = conc_task_name(i);
  if (o.initializer) {
    bool found;
    p->init_index = (uint32_t)name_index(p, o.initializer, &found);
    p->has_init = found;
    if (o.initargs_len) {
      p->initargs = conc__malloc(o.initargs_len);
      if (!p->initargs) {
        rc = CONC_ENOMEM;
        goto fail;
      }
      memcpy(p->initargs, o.initargs, o.initargs_len);
      p->initargs_len = o.initargs_len;
    }
  }
  for (unsigned i = 0; i < n; i++) {
    slot *s = &p->slots[i];
    s->memfd = s->sock = s->watch_w = s->pidfd = -1;
    s->fl = conc__calloc(p->depth, sizeof *s->fl);
    if (!s->fl) {
      rc = CONC_ENOMEM;
      goto fail;
    }
  }
  p->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (p->evfd < 0) {
    rc = -errno;
    goto fail;
  }
  rc = conc__fsrv_start(&p->srv, 60);
  if (rc)
    goto fail;
  for (unsigned i = 0; i < n; i++) {
    rc = slot_spawn(p, &p->slots[i]);
    if (rc)
      goto fail_workers;
  }
  /* wait for the pids: the pool is whole when create returns */
  double deadline = conc_now() + 60;
  for (;;) {
    bool all = true;
    for (unsigned i = 0; i < n; i++)
      all &= p->slots[i].pid > 0 || p->slots[i].hup;
    if (all || p->srv_gone)
      break;
    double left = deadline - conc_now();
    if (left <= 0)
      break;
    struct pollfd pf = {p->srv.ctl, POLLIN, 0};
    poll(&pf, 1, (int)(left * 1e3) + 1);
    done_list d = {NULL};
    server_messages(p, &d);
    done_run(&d);
  }
  rc = pthread_create(&p->thread, NULL, collector, p);
  if (rc) {
    rc = rc == ENOMEM ? CONC_ENOMEM : CONC_EAGAIN;
    goto fail_workers;
  }
  p->thread_started = true;
  conc__executor_init(&p->ex, &pp_vt, n, o.flags);
  *out = &p->ex;
  return 0;
fail_workers:
  /* closing the server's socket and the workers' pipes ends them all */
fail:
  pp_free(&p->ex);
  return rc;
}

int conc_process_pool_pids(conc_executor *ex, int *pids, size_t cap) {
  if (!ex || ex->vt != &pp_vt || (!pids && cap))
    return CONC_EINVAL;
  ppool *p = P(ex);
  pthread_mutex_lock(&p->mu);
  size_t k = 0;
  if (p->srv.pid > 0 && !p->srv_gone) {
    if (k < cap)
      pids[k] = p->srv.pid;
    k++;
  }
  for (unsigned i = 0; i < p->nslots; i++) {
    slot *s = &p->slots[i];
    if (slot_live(s) && s->pid > 0 && !s->hup) {
      if (k < cap)
        pids[k] = s->pid;
      k++;
    }
  }
  pthread_mutex_unlock(&p->mu);
  return (int)k;
}
