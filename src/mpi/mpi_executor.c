/* mpi_executor.c - the MPI executor (conc/mpi.h), library conc_mpi.
 *
 * DESIGN
 * Threads.  conc_mpi_executor_create starts one progress thread; it calls
 * MPI_Init_thread (FUNNELED: it is the only thread that ever calls MPI),
 * learns the rank, and either
 *   - on rank 0 (the client) runs the scheduler below until shutdown, or
 *   - on a worker rank serves tasks (worker_main), after which the thread
 *     that called create exits the process.
 * MPI_Finalize runs on that same thread.
 *
 * Who calls MPI on rank 0 (MPI_THREAD_SERIALIZED): whoever holds the
 * helper's mutex `hp->mpi`: the progress thread, a submitter that sends
 * its own task (try-lock after queueing it), or a thread waiting for one
 * of the executor's futures (FF_HELPED: future.c calls mx_help, which
 * try-locks and receives what arrived).  So a task submitted and waited
 * for goes out and comes back on the caller's thread, without a wake-up
 * hop to the progress thread and back (each costs a futex wake and a
 * context switch: ~20 us on this kind of VM).  While someone else drove
 * MPI in the last HANDOFF_NS, the progress thread stands back (a timed
 * sleep); it takes over when the waiters go to sleep.  If MPI grants only
 * FUNNELED, everything goes through the progress thread as before.
 * Futures completed under `hp->mpi` are published after it is released;
 * those with done callbacks completed by a helper or a submitter go to
 * the progress thread (`deferred`), so that callbacks never run on a
 * thread that may hold a lock the callback wants.  Lock order: hp->mpi,
 * then mu.
 *
 * Messages.  Every message on TAG_FRAME is one wire frame (src/wire.h):
 * HELLO both ways at start-up, TASK rank 0 -> worker, RESULT worker ->
 * rank 0, EXIT rank 0 -> worker at shutdown.  A payload above INLINE_MAX
 * travels as the frame with FF_FD (whose payload ends with the u64 length
 * instead of the bytes, as for a memfd) followed by the bytes themselves
 * as one message on TAG_BULK, sent from and received into the task's own
 * buffers.  MPI keeps messages of one (source, tag) in order, and each
 * side reads a frame's bulk right after the frame, so bulks pair with
 * their frames.
 *
 * Rank 0.  `mu` guards the pending FIFO, the shutdown flags, `deferred`
 * and the counters; slots (one per worker rank, each with up to `depth`
 * tasks in flight), next_id, nbulk and rbuf are guarded by hp->mpi.  The
 * loop: receive every frame that arrived, dispatch pending tasks to the
 * least loaded slots with room (future goes RUNNING, frame sent with
 * MPI_Isend), publish the futures completed, and when idle spin, then
 * sleep on `wake` with a doubling timeout (no timeout when nothing is in
 * flight and nothing happened for idle_spin).
 * A result is matched to its slot entry by task id; the entry's send
 * requests are completed before the future is published (its input
 * buffer belongs to the future).
 *
 * Worker ranks.  Frames are received as they arrive.  Without isolation
 * the tasks run one at a time on the progress thread (between two tasks it
 * receives again, so pipelined tasks keep arriving) and results are sent
 * with blocking MPI_Send.  With isolation each task goes to a local
 * process pool; the progress thread checks the pool's futures between
 * MPI polls and, with nothing else to do, collects results from the
 * pool's rings itself (the futures' helper, FF_HELPED) with a sched_yield
 * between polls for idle_spin, then waits for the oldest job with a
 * doubling timeout: the rank neither spins against its own task's process
 * for the CPU nor waits for the pool's collector thread.
 */
#include "executor-int.h"
#include "fsrv.h"
#include "wire.h"

#include <mpi.h>
#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "conc/mpi.h"
#include "conc/process_pool.h"

#define TAG_FRAME 1
#define TAG_BULK 2
#define INLINE_MAX (64u << 10)
#define MSG_MAX 4096u
#define STOP_POLL 0.01 /* how often tasks in flight are checked for stops */
/* the progress thread stands back while another thread drove MPI this
 * recently (ns); a waiter that stops driving says so (mx_park) */
#define HANDOFF_NS 1000000u
#define HELP_POLL_NS 50000u /* see mx_help */
#define HELP_BULK_NS 2000000u
#define RECYCLE_MIN (64u << 10)
#define RECYCLE_MAX (64u << 20)

static _Atomic int created; /* one MPI executor per process */

typedef struct entry {
  conc_future *f; /* NULL: free */
  uint64_t id;
  unsigned char *frame; /* allocated frame, or NULL: it is in small */
  MPI_Request req[2];
  bool stop_sent;
  unsigned char small[96]; /* frames of small inputs */
} entry;

typedef struct slot {
  int dest; /* rank in comm */
  unsigned n;
  entry *e; /* depth entries */
} slot;

/* Rank 0's MPI lock and the futures' helper (future-int.h): refcounted
 * apart from the executor, so that a waiter holding a future may call
 * mx_help while the executor is being destroyed (h.pool is NULL then). */
typedef struct mpi_helper {
  conc__helper h;
  pthread_mutex_t mpi; /* held by whoever calls MPI */
  bool mpi_done;       /* MPI finalized (or about to be): under mpi */
  conc__bufcache cache; /* big output buffers for reuse */
} mpi_helper;

typedef struct mpx {
  conc_executor ex; /* first */
  mpi_helper *hp;
  bool serialized; /* MPI_THREAD_SERIALIZED: helpers may drive MPI */
  conc_mpi_options o;
  pthread_t thread;
  bool thread_started;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int start; /* 0 starting; 1 rank 0 ready; 2 worker done; <0 failed */
  int status; /* worker rank's exit status */
  MPI_Comm comm;
  bool inter;
  int rank, nworkers;
  /* rank 0 */
  _Atomic uint32_t wake;
  _Atomic uint32_t sleeping; /* 0 awake, 1 timed sleep, 2 until poked */
  _Atomic uint64_t last_drive; /* mono_ns of a helper's/submitter's drive */
  conc_future *pend_head, *pend_tail;
  conc_future *deferred; /* completed by a helper, callbacks pending */
  size_t npending, ninflight;
  unsigned nbulk; /* bulk inputs still being sent (under hp->mpi) */
  bool unpushed;  /* a frame sent did not leave at once (under hp->mpi) */
  bool shutdown, thread_done;
  bool stop_all; /* shutdown(cancel_futures): stop what is in flight */
  unsigned depth;
  slot *slots;
  const char **names;
  size_t nnames;
  uint64_t next_id;
  unsigned char *rbuf;
  size_t rcap;
  unsigned long long n_submitted, n_completed, n_failed, n_cancelled,
      n_deadline;
} mpx;

static inline mpx *M(conc_executor *ex) { return (mpx *)ex; }

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The idle policy shared by both sides: spin for idle_spin after the
 * last activity, then sleep on *w with a doubling timeout up to
 * idle_sleep_max.  *sleep_ns is the current back-off (0 while busy).  The
 * spin polls with a CPU pause and yields the CPU only every YIELD_NS: a
 * sched_yield per poll costs a system call each time and, on a loaded
 * machine, the rest of a time slice - the latency of every message. */
#define YIELD_NS 20000u
#define SHORT_NS 20000u /* worker_main: a short task */
static void idle_wait(const mpx *m, _Atomic uint32_t *w, uint32_t seen,
                      uint64_t last_active, uint64_t *sleep_ns) {
  uint64_t now = mono_ns();
  if (now - last_active < (uint64_t)(m->o.idle_spin * 1e9)) {
    static _Thread_local uint64_t last_yield;
    if (now - last_yield < YIELD_NS) {
      for (int i = 0; i < 16; i++)
        conc__pause();
    } else {
      sched_yield();
      last_yield = mono_ns();
    }
    return;
  }
  uint64_t max = (uint64_t)(m->o.idle_sleep_max * 1e9);
  *sleep_ns = *sleep_ns ? *sleep_ns * 2 : 10000;
  if (*sleep_ns > max)
    *sleep_ns = max;
  conc__futex_wait(w, seen, conc_now() + (double)*sleep_ns * 1e-9, false);
}

/* Receive the frame of a matched message into a buffer grown as needed.
 * Returns the byte count. */
static size_t recv_matched(MPI_Message *msg, MPI_Status *st,
                           unsigned char **buf, size_t *cap) {
  int n = 0;
  MPI_Get_count(st, MPI_BYTE, &n);
  if ((size_t)n > *cap) {
    size_t c = (size_t)n < 256 ? 256 : (size_t)n;
    unsigned char *b = conc__realloc(*buf, c);
    CONC_MUST(b != NULL);
    *buf = b;
    *cap = c;
  }
  MPI_Mrecv(*buf, n, MPI_BYTE, msg, MPI_STATUS_IGNORE);
  return (size_t)n;
}

static void send_frame(MPI_Comm comm, int dest, unsigned type, uint64_t id) {
  unsigned char h[CONC__WIRE_HDR];
  conc__frame_header(h, type, 0, 0, id);
  MPI_Send(h, (int)sizeof h, MPI_BYTE, dest, TAG_FRAME, comm);
}

static void send_hello(MPI_Comm comm, int dest) {
  unsigned char b[CONC__WIRE_HDR + CONC__HELLO_LEN];
  conc__hello_msg h = {conc_task_registry_hash(), (uint32_t)conc_task_count(),
                       (uint32_t)getpid()};
  conc__frame_header(b, CONC__FT_HELLO, 0, CONC__HELLO_LEN, 0);
  conc__hello_encode(b + CONC__WIRE_HDR, &h);
  MPI_Send(b, (int)sizeof b, MPI_BYTE, dest, TAG_FRAME, comm);
}

/* Receive a HELLO from src (MPI_ANY_SOURCE allowed): 0 with *h and *from,
 * CONC_EPROTO. */
static int recv_hello(MPI_Comm comm, int src, conc__hello_msg *h, int *from) {
  unsigned char b[64];
  MPI_Status st;
  MPI_Recv(b, (int)sizeof b, MPI_BYTE, src, TAG_FRAME, comm, &st);
  int n = 0;
  MPI_Get_count(&st, MPI_BYTE, &n);
  *from = st.MPI_SOURCE;
  conc__frame f;
  if (conc__frame_decode(b, (size_t)n, &f) != 0)
    return CONC_EPROTO;
  return conc__hello_decode(&f, h);
}

/* ==== worker ranks ==== */

typedef struct wjob {
  struct wjob *next;
  uint64_t id;
  uint32_t index;
  unsigned char *frame; /* the received frame (inline input) */
  unsigned char *bulk;  /* or the bulk input */
  const unsigned char *in;
  size_t len;
  conc_future *f;       /* isolated: the local pool's future */
  struct wjob *lprev, *lnext; /* isolated: the outstanding list */
  bool stopped;         /* not isolated: a stop came before it ran */
  double deadline;      /* start deadline on this rank's clock, or -1 */
} wjob;

typedef struct wstate {
  mpx *m;
  conc_executor *pool; /* isolated */
  size_t ntasks;
  conc_task_fn *fns;
  conc_bytes out;
  wjob *run_head, *run_tail; /* not isolated: received, not run */
  _Atomic uint32_t idle_word; /* idle_wait's futex (timed sleeps only) */
  size_t outstanding;
  /* isolated: jobs in the local pool, oldest first */
  wjob *out_head, *out_tail;
} wstate;

static void job_free(wjob *j) {
  conc__free(j->frame);
  conc__free(j->bulk);
  if (j->f)
    conc_future_release(j->f);
  conc__free(j);
}

static void send_result(mpx *m, uint64_t id, int outcome, int code,
                        uint64_t run_ns, const char *msg,
                        const unsigned char *out, size_t olen) {
  uint32_t mlen = 0;
  if (outcome == 0)
    msg = NULL;
  if (msg) {
    size_t l = strlen(msg);
    mlen = (uint32_t)(l > MSG_MAX ? MSG_MAX : l);
  }
  if (outcome)
    olen = 0;
  size_t head = conc__result_head(mlen);
  bool bulk = olen > INLINE_MAX;
  size_t plen = head + (bulk ? 8 : olen);
  unsigned char stackbuf[CONC__WIRE_HDR + 64];
  unsigned char *b = CONC__WIRE_HDR + plen <= sizeof stackbuf
                         ? stackbuf
                         : conc__malloc(CONC__WIRE_HDR + plen);
  CONC_MUST(b != NULL);
  conc__frame_header(b, CONC__FT_RESULT, bulk ? CONC__FF_FD : 0,
                     (uint32_t)plen, id);
  conc__result_encode_head(b + CONC__WIRE_HDR, outcome, code, run_ns, msg,
                           mlen);
  if (bulk)
    conc__put64(b + CONC__WIRE_HDR + head, olen);
  else if (olen)
    memcpy(b + CONC__WIRE_HDR + head, out, olen);
  MPI_Send(b, (int)(CONC__WIRE_HDR + plen), MPI_BYTE, 0, TAG_FRAME, m->comm);
  if (b != stackbuf)
    conc__free(b);
  if (bulk)
    MPI_Send(out, (int)olen, MPI_BYTE, 0, TAG_BULK, m->comm);
}

static void submit_isolated(wstate *w, wjob *j) {
  const char *name = j->index < w->ntasks ? conc_task_name(j->index) : NULL;
  conc_submit_options so;
  conc_submit_options_init(&so);
  so.deadline = j->deadline;
  int rc = name ? conc_executor_submit_task(w->pool, name, j->in, j->len,
                                            &so, &j->f)
                : CONC_ENOENT;
  conc__free(j->frame);
  conc__free(j->bulk);
  j->frame = j->bulk = NULL;
  j->in = NULL;
  if (rc) {
    char *msg = conc__asprintf("worker rank %d cannot run the task: %s",
                               w->m->rank, conc_strerror(rc));
    send_result(w->m, j->id, CONC_ETASK, rc, 0, msg, NULL, 0);
    conc__free(msg);
    conc__free(j);
    return;
  }
  w->outstanding++;
  j->lnext = NULL;
  j->lprev = w->out_tail;
  if (w->out_tail)
    w->out_tail->lnext = j;
  else
    w->out_head = j;
  w->out_tail = j;
}

static void finish_isolated(wstate *w, wjob *j) {
  void *r = NULL;
  int outcome = conc_future_result(j->f, 0, &r);
  if (outcome == 0) {
    const conc_bytes *b = r;
    send_result(w->m, j->id, 0, 0, 0, NULL, b->data, b->len);
  } else {
    int detail = 0;
    const char *msg = NULL;
    conc_future_error(j->f, &detail, &msg);
    if (outcome != CONC_ETASK && outcome != CONC_ECANCELED &&
        outcome != CONC_EWORKER && outcome != CONC_EKILLED &&
        outcome != CONC_EDEADLINE) {
      detail = outcome; /* e.g. CONC_EBROKEN: the task could not run */
      outcome = CONC_ETASK;
    }
    send_result(w->m, j->id, outcome, detail, 0, msg, NULL, 0);
  }
  if (j->lprev)
    j->lprev->lnext = j->lnext;
  else
    w->out_head = j->lnext;
  if (j->lnext)
    j->lnext->lprev = j->lprev;
  else
    w->out_tail = j->lprev;
  w->outstanding--;
  job_free(j);
}

static void run_direct(wstate *w, wjob *j) {
  conc__task_ctx ctx = {.future = NULL};
  w->out.len = 0;
  uint64_t t0 = mono_ns();
  if (j->stopped) {
    ctx.outcome = CONC_ECANCELED;
    ctx.msg = conc__strdup("task stopped on request before it started");
  } else if (j->deadline >= 0 && conc_now() > j->deadline) {
    ctx.outcome = CONC_EDEADLINE;
    ctx.msg = conc__asprintf("deadline passed before the task started "
                             "(on rank %d)", w->m->rank);
  } else if (j->index >= w->ntasks) {
    ctx.outcome = CONC_ETASK;
    ctx.code = CONC_ENOENT;
    ctx.msg = conc__asprintf("no task number %u on rank %d", j->index,
                             w->m->rank);
  } else {
    conc__task_ctx *prev = conc__task_ctx_swap(&ctx);
    conc__task_invoke(w->fns[j->index], j->in, j->len, &w->out, &ctx);
    conc__task_ctx_swap(prev);
  }
  send_result(w->m, j->id, ctx.outcome, ctx.code, mono_ns() - t0,
              ctx.msg ? ctx.msg : "task failed", w->out.data, w->out.len);
  conc__free(ctx.msg);
  if (w->out.cap > (64u << 20))
    conc_bytes_free(&w->out);
  job_free(j);
}

/* Receive one frame if any.  Returns 1 (handled), 0 (none), 2 (EXIT). */
static int worker_recv(wstate *w, unsigned char **buf, size_t *cap) {
  mpx *m = w->m;
  int flag = 0;
  MPI_Message msg;
  MPI_Status st;
  MPI_Improbe(0, TAG_FRAME, m->comm, &flag, &msg, &st);
  if (!flag)
    return 0;
  size_t n = recv_matched(&msg, &st, buf, cap);
  conc__frame f;
  conc__task_msg t;
  if (conc__frame_decode(*buf, n, &f) != 0) {
    conc_log(CONC_LOG_ERROR, "MPI worker rank %d: bad frame from rank 0",
             m->rank);
    MPI_Abort(m->comm, 3);
  }
  if (f.type == CONC__FT_EXIT)
    return 2;
  if (f.type == CONC__FT_STOP) {
    for (wjob *j = w->out_head; j; j = j->lnext)
      if (j->id == f.id)
        conc_future_stop(j->f);
    for (wjob *j = w->run_head; j; j = j->next)
      if (j->id == f.id)
        j->stopped = true;
    return 1;
  }
  if (conc__task_decode(&f, &t) != 0 || f.type != CONC__FT_TASK) {
    conc_log(CONC_LOG_ERROR, "MPI worker rank %d: unexpected frame type %u",
             m->rank, f.type);
    MPI_Abort(m->comm, 3);
  }
  wjob *j = conc__calloc(1, sizeof *j);
  CONC_MUST(j != NULL);
  j->id = f.id;
  j->index = t.index;
  j->len = (size_t)t.len;
  j->deadline = t.has_deadline ? conc_now() + (double)t.deadline_ns * 1e-9
                               : -1;
  if (f.flags & CONC__FF_FD) {
    j->bulk = conc__malloc(j->len ? j->len : 1);
    CONC_MUST(j->bulk != NULL);
    MPI_Recv(j->bulk, (int)j->len, MPI_BYTE, 0, TAG_BULK, m->comm,
             MPI_STATUS_IGNORE);
    j->in = j->bulk;
  } else {
    /* keep the frame: the task reads its input in place */
    j->frame = *buf;
    *buf = NULL;
    *cap = 0;
    j->in = t.in;
  }
  if (m->o.isolate) {
    submit_isolated(w, j);
  } else {
    if (w->run_tail)
      w->run_tail->next = j;
    else
      w->run_head = j;
    w->run_tail = j;
  }
  return 1;
}

/* Serve tasks until EXIT.  Returns the rank's exit status. */
static int worker_main(mpx *m) {
  conc__hello_msg h0, mine = {conc_task_registry_hash(),
                              (uint32_t)conc_task_count(), 0};
  int from;
  int rc = recv_hello(m->comm, 0, &h0, &from);
  send_hello(m->comm, 0);
  int status = 0;
  if (rc == 0 && (h0.hash != mine.hash || h0.count != mine.count)) {
    conc_log(CONC_LOG_ERROR,
             "MPI worker rank %d: task registry differs from rank 0's: %u "
             "tasks (hash %016llx) here, %u (hash %016llx) on rank 0; every "
             "rank must run the same program",
             m->rank, mine.count, (unsigned long long)mine.hash, h0.count,
             (unsigned long long)h0.hash);
    status = 1;
  } else if (rc) {
    conc_log(CONC_LOG_ERROR, "MPI worker rank %d: bad HELLO from rank 0",
             m->rank);
    status = 1;
  }
  wstate w = {.m = m};
  w.ntasks = conc_task_count();
  w.fns = conc__calloc(w.ntasks ? w.ntasks : 1, sizeof *w.fns);
  CONC_MUST(w.fns != NULL);
  for (size_t i = 0; i < w.ntasks; i++)
    conc_task_lookup(conc_task_name(i), &w.fns[i]);
  if (status == 0 && m->o.isolate) {
    conc_process_pool_options po;
    conc_process_pool_options_init(&po);
    po.max_workers = m->o.procs_per_rank;
    po.max_in_flight = m->o.max_in_flight;
    po.flags = CONC_EXECUTOR_NO_EXIT_HOOK;
    po.task_timeout = m->o.task_timeout;
    po.stop_grace = m->o.stop_grace;
    rc = conc_process_pool_create(&po, &w.pool);
    if (rc) {
      conc_log(CONC_LOG_ERROR,
               "MPI worker rank %d: cannot start its process pool: %s",
               m->rank, conc_strerror(rc));
      MPI_Abort(m->comm, 2);
    }
  }
  unsigned char *buf = NULL;
  size_t cap = 0;
  bool exiting = false;
  uint64_t last = mono_ns(), sleep_ns = 0;
  for (;;) {
    bool work = false;
    uint32_t seen = atomic_load_explicit(&w.idle_word, memory_order_acquire);
    /* receive what arrived.  One empty probe is not proof (a progress
     * call may bring in only part of what waits in the shared-memory
     * queues): stop after a few in a row, since a task run here blocks
     * receiving and frames left behind would wait for it (deadlines,
     * stops). */
    for (int k = 0, empty = 0; k < 64 && !exiting; k++) {
      int r = worker_recv(&w, &buf, &cap);
      if (r == 0) {
        if (++empty >= 4)
          break;
        continue;
      }
      empty = 0;
      work = true;
      if (r == 2)
        exiting = true;
    }
    /* run the queued tasks: the next ones without receiving in between
     * while each took under SHORT_NS (up to 16: the probes above cost
     * more than a tiny task; a frame waits at most 16 short tasks) */
    for (int n = 0; w.run_head && n < 16; n++) {
      wjob *j = w.run_head;
      w.run_head = j->next;
      if (!w.run_head)
        w.run_tail = NULL;
      uint64_t t0 = mono_ns();
      run_direct(&w, j);
      work = true;
      if (mono_ns() - t0 > SHORT_NS)
        break;
    }
    /* isolated: jobs the local pool finished, oldest first */
    for (wjob *j = w.out_head, *nx; j; j = nx) {
      nx = j->lnext;
      if (conc_future_done(j->f)) {
        finish_isolated(&w, j);
        work = true;
      }
    }
    if (exiting && !w.run_head && w.outstanding == 0)
      break;
    if (work) {
      last = mono_ns();
      sleep_ns = 0;
    } else if (w.out_head) {
      /* a job is out: collect from the local pool's rings ourselves (no
       * hop through its collector thread), yielding the CPU to the task's
       * process between polls; after idle_spin, wait for the oldest job
       * with a doubling timeout (sleeps until the collector completes
       * it), then poll MPI again */
      conc_future *f = w.out_head->f;
      conc__helper *h =
          (f->flags & FF_HELPED) ? conc__closure_helper(f->arg) : NULL;
      if (h && h->help(h)) {
        last = mono_ns();
        sleep_ns = 0;
      } else if (mono_ns() - last < (uint64_t)(m->o.idle_spin * 1e9)) {
        sched_yield();
      } else {
        uint64_t max = (uint64_t)(m->o.idle_sleep_max * 1e9);
        sleep_ns = sleep_ns ? sleep_ns * 2 : 20000;
        if (sleep_ns > max)
          sleep_ns = max;
        conc_future_wait(f, (double)sleep_ns * 1e-9);
      }
    } else {
      idle_wait(m, &w.idle_word, seen, last, &sleep_ns);
    }
  }
  conc__free(buf);
  if (w.pool)
    conc_executor_destroy(w.pool);
  conc_bytes_free(&w.out);
  conc__free(w.fns);
  return status;
}

/* ==== rank 0 ==== */

static size_t name_index(const mpx *m, const char *name, bool *found) {
  return conc__names_find(m->names, m->nnames, name, found);
}

/* Futures to complete once hp->mpi is released (callbacks may wait for
 * other futures of the executor, or submit to it).  The outcome is written
 * into the record now - a running task-bound future has no other
 * completer (only this executor completes its running futures) - and
 * published later; f->next links the list. */
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

/* Publish, then drop the executor's reference. */
static void done_run(conc_future *f) {
  while (f) {
    conc_future *next = atomic_load_explicit(&f->next, memory_order_relaxed);
    conc__future_finish_prepared(f);
    conc_future_release(f);
    f = next;
  }
}

/* Wake the progress thread: always from its sleep without a timeout; from
 * a timed one only if `force` (it has something to do now). */
static void poke(mpx *m, bool force) {
  atomic_fetch_add_explicit(&m->wake, 1, memory_order_seq_cst);
  uint32_t s = atomic_load_explicit(&m->sleeping, memory_order_seq_cst);
  if (s == 2 || (s == 1 && force))
    conc__futex_wake(&m->wake, 1, false);
}

/* A thread other than the progress thread completed the futures of d
 * (hp->mpi held): keep those without callbacks in *mine (published by the
 * caller once the lock is released), hand the others to the progress
 * thread.  (A callback added in the instant between this check and the
 * publication runs on the caller, as in the process pool.) */
static void split_done(mpx *m, done_list *d, done_list *mine) {
  bool any = false;
  pthread_mutex_lock(&m->mu);
  for (conc_future *f = d->head, *next; f; f = next) {
    next = atomic_load_explicit(&f->next, memory_order_relaxed);
    if (atomic_load_explicit(&f->cbs, memory_order_seq_cst)) {
      atomic_store_explicit(&f->next, m->deferred, memory_order_relaxed);
      m->deferred = f;
      any = true;
    } else {
      done_push(mine, f);
    }
  }
  d->head = NULL;
  pthread_mutex_unlock(&m->mu);
  if (any)
    poke(m, true);
}

/* Send f to slot s as entry e (hp->mpi held).  Returns 0 or an error for
 * the task alone. */
static int send_task(mpx *m, slot *s, entry *e, conc_future *f) {
  const char *name;
  const void *in;
  size_t len;
  conc_bytes *out;
  conc__closure_info(f->fn, f->arg, &name, &in, &len, &out);
  if (len > INT_MAX)
    return CONC_ENOTSUP;
  bool bulk = len > INLINE_MAX;
  /* a start deadline travels as the time left (DECISIONS: re-anchored on
   * the worker's clock); conc__future_start checked it has not passed */
  bool dl = (f->flags & FF_DEADLINE) != 0;
  size_t off = dl ? 16 : 8;
  size_t plen = off + (bulk ? 8 : len);
  size_t flen = CONC__WIRE_HDR + plen;
  /* small frames live in the entry (no allocation per task) */
  unsigned char *b = flen <= sizeof e->small ? e->small : conc__malloc(flen);
  if (!b)
    return CONC_ENOMEM;
  uint64_t id = ++m->next_id;
  conc__frame_header(b, CONC__FT_TASK,
                     (bulk ? CONC__FF_FD : 0) | (dl ? CONC__FF_DEADLINE : 0),
                     (uint32_t)plen, id);
  conc__put32(b + 16, (uint32_t)f->detail);
  conc__put32(b + 20, 0);
  if (dl) {
    double left = f->u.deadline - conc_now();
    conc__put64(b + 24, left > 0 ? (uint64_t)(left * 1e9) : 0);
  }
  unsigned char *p = b + CONC__WIRE_HDR + off;
  if (bulk)
    conc__put64(p, len);
  else if (len)
    memcpy(p, in, len);
  e->f = f;
  e->id = id;
  e->frame = b == e->small ? NULL : b;
  e->stop_sent = false;
  e->req[1] = MPI_REQUEST_NULL;
  MPI_Isend(b, (int)flen, MPI_BYTE, s->dest, TAG_FRAME, m->comm, &e->req[0]);
  /* a small frame usually leaves within the call; if not, it moves only
   * when rank 0 calls MPI again: say so (mx_submit wakes the progress
   * thread) */
  int gone = 0;
  MPI_Test(&e->req[0], &gone, MPI_STATUS_IGNORE);
  if (!gone)
    m->unpushed = true;
  if (bulk) {
    MPI_Isend(in, (int)len, MPI_BYTE, s->dest, TAG_BULK, m->comm,
              &e->req[1]);
    m->nbulk++;
  }
  s->n++;
  return 0;
}

static slot *best_slot(mpx *m) {
  slot *best = NULL;
  for (int i = 0; i < m->nworkers; i++) {
    slot *s = &m->slots[i];
    if (s->n < m->depth && (!best || s->n < best->n))
      best = s;
  }
  return best;
}

static entry *free_entry(mpx *m, slot *s) {
  for (unsigned k = 0; k < m->depth; k++)
    if (!s->e[k].f)
      return &s->e[k];
  return NULL;
}

/* Hand pending tasks to slots with room (hp->mpi held); futures that end
 * here go to d.  Returns true if anything moved. */
static bool dispatch(mpx *m, done_list *d) {
  bool moved = false;
  for (;;) {
    slot *s = best_slot(m);
    if (!s)
      return moved;
    pthread_mutex_lock(&m->mu);
    conc_future *f = conc__fq_pop(&m->pend_head, &m->pend_tail);
    if (!f) {
      pthread_mutex_unlock(&m->mu);
      return moved;
    }
    m->npending--;
    int st = conc__future_start(f);
    if (st == CONC__SKIPPED)
      m->n_cancelled++;
    else if (st == CONC_EDEADLINE)
      m->n_deadline++;
    else
      m->ninflight++;
    pthread_mutex_unlock(&m->mu);
    moved = true;
    if (st == CONC__SKIPPED) {
      conc_future_release(f); /* cancelled: completed by the canceller */
      continue;
    }
    if (st == CONC_EDEADLINE) {
      done_add(d, f, CONC_EDEADLINE, 0,
               conc__strdup("deadline passed before the task started"));
      continue;
    }
    entry *e = free_entry(m, s);
    int rc = send_task(m, s, e, f);
    if (rc) {
      pthread_mutex_lock(&m->mu);
      m->ninflight--;
      m->n_failed++;
      pthread_mutex_unlock(&m->mu);
      done_add(d, f, rc, 0,
               conc__asprintf("cannot send the task's input: %s",
                              conc_strerror(rc)));
    }
  }
}

_Noreturn static void protocol_error(mpx *m, int src, const char *what) {
  conc_log(CONC_LOG_ERROR, "MPI executor: %s from rank %d: aborting the job",
           what, src);
  MPI_Abort(m->comm, 3);
  abort();
}

/* An empty buffer with room for n bytes from the cache, if one fits. */
static void take_cached(mpx *m, conc_bytes *out, size_t n) {
  conc__bufcache_take(&m->hp->cache, out, n, RECYCLE_MIN);
}

/* Receive and handle one frame if any (hp->mpi held); its future goes to
 * d. */
static bool client_recv(mpx *m, done_list *d) {
  int flag = 0;
  MPI_Message msg;
  MPI_Status st;
  MPI_Improbe(MPI_ANY_SOURCE, TAG_FRAME, m->comm, &flag, &msg, &st);
  if (!flag)
    return false;
  int src = st.MPI_SOURCE;
  size_t n = recv_matched(&msg, &st, &m->rbuf, &m->rcap);
  conc__frame fr;
  conc__result_msg r;
  if (conc__frame_decode(m->rbuf, n, &fr) != 0 ||
      conc__result_decode(&fr, &r) != 0 || (fr.flags & CONC__FF_ARENA))
    protocol_error(m, src, "bad frame"); /* (arenas: process pools only) */
  int si = m->inter ? src : src - 1;
  if (si < 0 || si >= m->nworkers)
    protocol_error(m, src, "frame from an unknown rank");
  slot *s = &m->slots[si];
  entry *e = NULL;
  for (unsigned k = 0; k < m->depth && !e; k++)
    if (s->e[k].f && s->e[k].id == fr.id)
      e = &s->e[k];
  if (!e)
    protocol_error(m, src, "a result for no task in flight");
  conc_future *f = e->f;
  const char *name;
  const void *in;
  size_t len;
  conc_bytes *out;
  conc__closure_info(f->fn, f->arg, &name, &in, &len, &out);
  int outcome = r.outcome;
  if (outcome == 0) {
    out->len = 0;
    if (r.len <= INT_MAX)
      take_cached(m, out, (size_t)r.len);
    if (r.len > INT_MAX || conc_bytes_reserve(out, (size_t)r.len) != 0) {
      if (fr.flags & CONC__FF_FD) /* the bytes are on their way: take them */
        protocol_error(m, src, "a result too large to receive");
      outcome = CONC_ENOMEM;
    } else if (fr.flags & CONC__FF_FD) {
      MPI_Recv(out->data, (int)r.len, MPI_BYTE, src, TAG_BULK, m->comm,
               MPI_STATUS_IGNORE);
      out->len = (size_t)r.len;
    } else {
      if (r.len)
        memcpy(out->data, r.out, (size_t)r.len);
      out->len = (size_t)r.len;
    }
  }
  char *text = NULL;
  if (outcome != 0 && r.msg_len) {
    text = conc__malloc((size_t)r.msg_len + 1);
    if (text) {
      memcpy(text, r.msg, r.msg_len);
      text[r.msg_len] = 0;
    }
  }
  /* the input buffer belongs to f: the sends must be over first */
  if (e->req[1] != MPI_REQUEST_NULL)
    m->nbulk--;
  MPI_Waitall(2, e->req, MPI_STATUSES_IGNORE);
  conc__free(e->frame);
  e->frame = NULL;
  e->f = NULL;
  s->n--;
  pthread_mutex_lock(&m->mu);
  m->ninflight--;
  if (outcome == 0)
    m->n_completed++;
  else if (outcome == CONC_ECANCELED)
    m->n_cancelled++;
  else if (outcome == CONC_EDEADLINE)
    m->n_deadline++;
  else
    m->n_failed++;
  pthread_mutex_unlock(&m->mu);
  if (outcome == 0) {
    f->outcome = 0;
    f->u.result = out;
    done_push(d, f);
  } else {
    if (!text && outcome == CONC_ETASK)
      text = conc__strdup("task failed");
    if (outcome == CONC_EWORKER && text) {
      char *t2 = conc__asprintf("rank %d: %s", src, text);
      if (t2) {
        conc__free(text);
        text = t2;
      }
    }
    done_add(d, f, outcome, r.code, text);
  }
  return true;
}

/* Drive the bulk sends in flight: a large message moves in fragments, and
 * each needs the sender to call MPI (hp->mpi held).  Returns true if one
 * completed. */
static bool progress_bulk(mpx *m) {
  bool any = false;
  for (int i = 0; m->nbulk && i < m->nworkers; i++) {
    slot *s = &m->slots[i];
    for (unsigned k = 0; s->n && k < m->depth; k++) {
      entry *e = &s->e[k];
      if (!e->f || e->req[1] == MPI_REQUEST_NULL)
        continue;
      int done = 0;
      MPI_Test(&e->req[1], &done, MPI_STATUS_IGNORE); /* NULLs it if done */
      if (done) {
        m->nbulk--;
        any = true;
      }
    }
  }
  return any;
}

/* One round of MPI work (hp->mpi held): receive what arrived, send what
 * waits, push bulk sends.  True if anything happened. */
static bool drive(mpx *m, done_list *d) {
  bool work = false;
  for (int k = 0; k < 256 && client_recv(m, d); k++)
    work = true;
  work |= dispatch(m, d);
  if (m->nbulk)
    work |= progress_bulk(m);
  return work;
}

/* future.c: a thread waiting for one of our futures drives MPI itself if
 * nobody else does (never blocks). */
static bool mx_help(conc__helper *h) {
  mpi_helper *hp = (mpi_helper *)h;
  if (pthread_mutex_trylock(&hp->mpi) != 0)
    return false;
  mpx *m = h->pool;
  done_list d = {NULL}, mine = {NULL};
  bool work = false;
  if (m && !hp->mpi_done) {
    uint64_t t0 = mono_ns();
    atomic_store_explicit(&m->last_drive, t0, memory_order_relaxed);
    /* poll for up to HELP_POLL_NS before returning: future.c yields the
     * CPU between calls, which would add a system call (or a time slice)
     * to a result due in a microsecond */
    for (unsigned i = 0; !(work = drive(m, &d)); i++) {
      /* a big input still moving needs our calls for each fragment:
       * leaving now would hand it to the progress thread and back */
      uint64_t limit = m->nbulk ? HELP_BULK_NS : HELP_POLL_NS;
      if ((i & 7) == 7 && mono_ns() - t0 > limit)
        break;
      conc__pause();
    }
    if (d.head)
      split_done(m, &d, &mine); /* before unlocking: m may go after */
  }
  pthread_mutex_unlock(&hp->mpi);
  done_run(mine.head);
  return work;
}

/* future.c: a waiter that drove MPI goes to sleep; the progress thread
 * takes over at once. */
static void mx_park(conc__helper *h) {
  mpi_helper *hp = (mpi_helper *)h;
  pthread_mutex_lock(&hp->mpi);
  mpx *m = h->pool;
  if (m && !hp->mpi_done) {
    atomic_store_explicit(&m->last_drive, 0, memory_order_relaxed);
    poke(m, true);
  }
  pthread_mutex_unlock(&hp->mpi);
}

static void mx_helper_destroy(conc__helper *h) {
  mpi_helper *hp = (mpi_helper *)h;
  conc__bufcache_destroy(&hp->cache);
  pthread_mutex_destroy(&hp->mpi);
  conc__free(hp);
}

static void mx_recycle(conc__helper *h, conc_bytes *b) {
  conc__bufcache_put(&((mpi_helper *)h)->cache, b, RECYCLE_MAX);
}

/* Pass stop requests on to the worker ranks (hp->mpi held). */
static void pass_stops(mpx *m, bool stop_all) {
  for (int i = 0; i < m->nworkers; i++) {
    slot *s = &m->slots[i];
    for (unsigned k = 0; s->n && k < m->depth; k++) {
      entry *e = &s->e[k];
      if (!e->f || e->stop_sent)
        continue;
      if (stop_all)
        conc_future_stop(e->f);
      /* acquire: pairs with the fetch_or in conc_future_stop */
      if (atomic_load_explicit(&e->f->state, memory_order_acquire) &
          FS_STOP) {
        send_frame(m->comm, s->dest, CONC__FT_STOP, e->id);
        e->stop_sent = true;
      }
    }
  }
}

/* Sleep on `wake` until poked or for ns (0: until poked). */
static void client_sleep(mpx *m, uint32_t seen, uint64_t ns) {
  atomic_store_explicit(&m->sleeping, ns ? 1 : 2, memory_order_seq_cst);
  conc__futex_wait(&m->wake, seen, ns ? conc_now() + (double)ns * 1e-9
                                      : INFINITY, false);
  atomic_store_explicit(&m->sleeping, 0, memory_order_relaxed);
}

static void client_main(mpx *m) {
  mpi_helper *hp = m->hp;
  uint64_t last = mono_ns(), sleep_ns = 0;
  uint64_t spin_ns = (uint64_t)(m->o.idle_spin * 1e9);
  double next_stops = 0;
  bool stopped_all = false;
  for (;;) {
    uint32_t seen = atomic_load_explicit(&m->wake, memory_order_seq_cst);
    pthread_mutex_lock(&m->mu);
    conc_future *def = m->deferred; /* callbacks to run here */
    m->deferred = NULL;
    bool stop_all = m->stop_all && !stopped_all;
    bool any = m->ninflight > 0;
    pthread_mutex_unlock(&m->mu);
    bool work = def != NULL;
    done_run(def);
    uint64_t now = mono_ns();
    uint64_t other =
        atomic_load_explicit(&m->last_drive, memory_order_relaxed);
    bool others = m->serialized && now - other < HANDOFF_NS;
    bool stops = any && (stop_all || conc_now() >= next_stops);
    bool nbulk = false;
    if (!others || stops) {
      done_list d = {NULL};
      pthread_mutex_lock(&hp->mpi);
      if (!others) {
        m->unpushed = false; /* driving pushes them */
        work |= drive(m, &d);
      }
      if (stops) {
        pass_stops(m, stop_all);
        stopped_all |= stop_all;
        next_stops = conc_now() + STOP_POLL;
      }
      nbulk = m->nbulk != 0;
      pthread_mutex_unlock(&hp->mpi);
      done_run(d.head);
    }
    pthread_mutex_lock(&m->mu);
    bool busy = m->ninflight > 0;
    bool pending = m->pend_head != NULL;
    bool done = m->shutdown && !busy && !pending && !m->deferred;
    pthread_mutex_unlock(&m->mu);
    if (done)
      break;
    if (work) {
      last = now;
      sleep_ns = 0;
      continue;
    }
    if (nbulk) { /* fragments to push: never sleep (see above) */
      sched_yield();
      continue;
    }
    if (others) { /* somebody drives: look again when they may have
                     stopped */
      client_sleep(m, seen, other + HANDOFF_NS - now + 1000);
      sleep_ns = 0;
      continue;
    }
    if (!busy && !pending) { /* nothing can arrive */
      uint64_t la = last > other ? last : other;
      /* a pause between tasks: stay near; a long one: sleep until poked */
      client_sleep(m, seen, now - la < spin_ns ? la + spin_ns - now : 0);
      sleep_ns = 0;
      continue;
    }
    atomic_store_explicit(&m->sleeping, 1, memory_order_seq_cst);
    idle_wait(m, &m->wake, seen, last, &sleep_ns);
    atomic_store_explicit(&m->sleeping, 0, memory_order_relaxed);
  }
  /* no helper drives MPI after this; publish what they handed over */
  pthread_mutex_lock(&hp->mpi);
  hp->mpi_done = true;
  pthread_mutex_unlock(&hp->mpi);
  pthread_mutex_lock(&m->mu);
  conc_future *def = m->deferred;
  m->deferred = NULL;
  pthread_mutex_unlock(&m->mu);
  done_run(def);
}

/* Read /proc/self/cmdline into an argv for MPI_Comm_spawn (without
 * argv[0]); NULL on failure.  One allocation (free it once). */
static char **self_args(void) {
  FILE *fp = fopen("/proc/self/cmdline", "rb");
  if (!fp)
    return NULL;
  char buf[65536];
  size_t n = fread(buf, 1, sizeof buf - 1, fp);
  fclose(fp);
  buf[n] = 0;
  size_t argc = 0;
  for (size_t i = 0; i < n; i++)
    argc += buf[i] == 0;
  char **v = conc__malloc((argc + 1) * sizeof *v + n + 1);
  if (!v)
    return NULL;
  char *s = (char *)(v + argc + 1);
  memcpy(s, buf, n + 1);
  size_t k = 0, pos = strlen(s) + 1; /* skip argv[0] */
  while (pos < n) {
    v[k++] = s + pos;
    pos += strlen(s + pos) + 1;
  }
  v[k] = NULL;
  return v;
}

static void *progress(void *arg) {
  mpx *m = arg;
  conc__block_signals();
  /* the back-off's short sleeps: no 50 us of timer slack on top */
  prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
  int provided = 0;
  if (MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided) !=
      MPI_SUCCESS) {
    pthread_mutex_lock(&m->mu);
    m->start = CONC_EBROKEN;
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
    return NULL;
  }
  /* below SERIALIZED only this thread calls MPI (see the top) */
  m->serialized = provided >= MPI_THREAD_SERIALIZED;
  MPI_Comm parent = MPI_COMM_NULL;
  MPI_Comm_get_parent(&parent);
  int rc = 0;
  if (parent != MPI_COMM_NULL) { /* spawned: a worker */
    m->comm = parent;
    m->inter = true;
    int r;
    MPI_Comm_rank(parent, &r);
    m->rank = r + 1;
  } else {
    int size;
    MPI_Comm_rank(MPI_COMM_WORLD, &m->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    m->comm = MPI_COMM_WORLD;
    m->nworkers = size - 1;
    if (m->o.spawn && size == 1) {
      char exe[4096];
      ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
      char **args = self_args();
      if (k <= 0 || !args) {
        rc = CONC_ENOMEM;
      } else {
        exe[k] = 0;
        MPI_Comm inter;
        int err = MPI_Comm_spawn(exe, args, (int)m->o.spawn, MPI_INFO_NULL, 0,
                                 MPI_COMM_SELF, &inter, MPI_ERRCODES_IGNORE);
        if (err == MPI_SUCCESS) {
          m->comm = inter;
          m->inter = true;
          m->nworkers = (int)m->o.spawn;
        } else {
          rc = CONC_EBROKEN;
        }
      }
      conc__free(args);
    } else if (size < 2 && m->rank == 0) {
      conc_log(CONC_LOG_ERROR,
               "MPI executor: one rank only: run the program with "
               "`mpiexec -n N` (N >= 2), or set spawn");
      rc = CONC_EBROKEN;
    }
  }
  if (m->rank != 0) {
    int status = worker_main(m);
    if (m->inter)
      MPI_Comm_disconnect(&m->comm);
    MPI_Finalize();
    pthread_mutex_lock(&m->mu);
    m->status = status;
    m->start = 2;
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
    return NULL;
  }
  /* rank 0: a slot per worker, then check every worker's registry */
  if (rc == 0 && m->nworkers > 0) {
    m->slots = conc__calloc((size_t)m->nworkers, sizeof *m->slots);
    for (int i = 0; m->slots && i < m->nworkers; i++) {
      m->slots[i].dest = m->inter ? i : i + 1;
      m->slots[i].e = conc__calloc(m->depth, sizeof(entry));
      if (!m->slots[i].e) {
        conc_log(CONC_LOG_ERROR, "MPI executor: out of memory at start-up");
        MPI_Abort(m->comm, 2);
      }
    }
    if (!m->slots) {
      conc_log(CONC_LOG_ERROR, "MPI executor: out of memory at start-up");
      MPI_Abort(m->comm, 2);
    }
  }
  if (rc == 0) {
    conc__hello_msg mine = {conc_task_registry_hash(),
                            (uint32_t)conc_task_count(), 0};
    for (int i = 0; i < m->nworkers; i++)
      send_hello(m->comm, m->slots[i].dest);
    for (int i = 0; i < m->nworkers; i++) {
      conc__hello_msg h;
      int from = -1;
      int e = recv_hello(m->comm, MPI_ANY_SOURCE, &h, &from);
      int wr = m->inter ? from + 1 : from;
      if (e) {
        conc_log(CONC_LOG_ERROR, "MPI executor: bad HELLO from rank %d", wr);
        rc = CONC_EPROTO;
      } else if (h.hash != mine.hash || h.count != mine.count) {
        conc_log(CONC_LOG_ERROR,
                 "MPI executor: worker rank %d (pid %u) has a different task "
                 "registry: %u tasks (hash %016llx), rank 0 has %u (hash "
                 "%016llx); every rank must run the same program",
                 wr, h.pid, h.count, (unsigned long long)h.hash, mine.count,
                 (unsigned long long)mine.hash);
        rc = CONC_EREGISTRY;
      }
    }
    if (rc) /* end the workers */
      for (int i = 0; i < m->nworkers; i++)
        send_frame(m->comm, m->inter ? i : i + 1, CONC__FT_EXIT, 0);
  }
  pthread_mutex_lock(&m->mu);
  m->start = rc ? rc : 1;
  pthread_cond_broadcast(&m->cv);
  pthread_mutex_unlock(&m->mu);
  if (rc == 0) {
    client_main(m);
    for (int i = 0; i < m->nworkers; i++)
      send_frame(m->comm, m->slots[i].dest, CONC__FT_EXIT, 0);
  }
  if (m->inter)
    MPI_Comm_disconnect(&m->comm);
  MPI_Finalize();
  pthread_mutex_lock(&m->mu);
  m->thread_done = true;
  pthread_cond_broadcast(&m->cv);
  pthread_mutex_unlock(&m->mu);
  return NULL;
}

/* ==== executor interface ==== */

/* The future of a closure (refs: executor + caller if out).  Returns 0
 * with *fp, or an error (nothing created). */
static int new_future(mpx *m, conc_fn fn, void *arg,
                      const conc_submit_options *o, unsigned flags,
                      bool out, conc_future **fp) {
  const char *name;
  const void *in;
  size_t len;
  conc_bytes *obuf;
  if (!conc__closure_info(fn, arg, &name, &in, &len, &obuf))
    return CONC_ENOTSUP; /* a function pointer cannot cross processes */
  if (!conc__executor_local(&m->ex))
    return CONC_EBROKEN;
  bool found = false;
  size_t index = name ? name_index(m, name, &found) : 0;
  if (!found)
    return CONC_ENOENT;
  if (len > INT_MAX)
    return CONC_EINVAL;
  conc_future *f = conc__future_new_task(fn, arg, out ? 2 : 1);
  if (!f)
    return CONC_ENOMEM;
  f->flags |= (uint16_t)flags;
  f->detail = (int32_t)index;
  if (m->serialized) { /* waiters may drive MPI (mx_help) */
    f->flags |= FF_HELPED;
    conc__closure_set_helper(arg, &m->hp->h);
  }
  if (o && o->deadline >= 0) {
    f->flags |= FF_DEADLINE;
    f->u.deadline = o->deadline;
  }
  *fp = f;
  return 0;
}

/* A future refused at submission: drop it without touching its closure
 * (the caller frees arg on error). */
static void drop_future(conc_future *f, bool out) {
  f->flags &= (uint16_t)~FF_FREE_ARG;
  conc_future_release(f);
  if (out)
    conc_future_release(f);
}

static int mx_submit(conc_executor *ex, conc_fn fn, void *arg,
                     const conc_submit_options *o, unsigned flags,
                     conc_future **out) {
  mpx *m = M(ex);
  conc_future *f;
  int rc = new_future(m, fn, arg, o, flags, out != NULL, &f);
  if (rc)
    return rc;
  pthread_mutex_lock(&m->mu);
  if (m->shutdown) {
    pthread_mutex_unlock(&m->mu);
    drop_future(f, out != NULL);
    return CONC_ESHUTDOWN;
  }
  conc__fq_push(&m->pend_head, &m->pend_tail, f);
  m->npending++;
  m->n_submitted++;
  pthread_mutex_unlock(&m->mu);
  if (out)
    *out = f;
  /* send it ourselves if MPI is free: no hop to the progress thread */
  bool sent = false;
  mpi_helper *hp = m->hp;
  if (m->serialized && pthread_mutex_trylock(&hp->mpi) == 0) {
    done_list d = {NULL}, mine = {NULL};
    if (!hp->mpi_done) { /* (not a drive: results are left to others) */
      dispatch(m, &d);
      /* sends still to push need somebody calling MPI: if nobody waits,
       * only the progress thread will */
      sent = !m->unpushed && !m->nbulk;
      m->unpushed = false;
      if (d.head)
        split_done(m, &d, &mine);
    }
    pthread_mutex_unlock(&hp->mpi);
    done_run(mine.head);
  }
  poke(m, !sent);
  return 0;
}

static int mx_shutdown(conc_executor *ex, bool wait, bool cancel_futures) {
  mpx *m = M(ex);
  if (!conc__executor_local(ex))
    return 0;
  pthread_mutex_lock(&m->mu);
  m->shutdown = true;
  if (cancel_futures) {
    m->stop_all = true;
    conc_future *f;
    while ((f = conc__fq_pop(&m->pend_head, &m->pend_tail))) {
      m->npending--;
      if (conc__future_cancel(f))
        m->n_cancelled++;
      conc_future_release(f);
    }
  }
  bool own = pthread_equal(pthread_self(), m->thread);
  pthread_mutex_unlock(&m->mu);
  poke(m, true);
  if (!wait)
    return 0;
  if (own)
    return CONC_EDEADLK;
  pthread_mutex_lock(&m->mu);
  while (!m->thread_done)
    pthread_cond_wait(&m->cv, &m->mu);
  pthread_mutex_unlock(&m->mu);
  return 0;
}

static void mx_free(conc_executor *ex) {
  mpx *m = M(ex);
  bool local = conc__executor_local(ex);
  if (local && m->thread_started)
    pthread_join(m->thread, NULL);
  if (m->hp) { /* a waiter may be in mx_help right now */
    if (local)
      pthread_mutex_lock(&m->hp->mpi);
    m->hp->h.pool = NULL;
    if (local)
      pthread_mutex_unlock(&m->hp->mpi);
    conc__helper_release(&m->hp->h);
    m->hp = NULL;
  }
  for (int i = 0; m->slots && i < m->nworkers; i++)
    conc__free(m->slots[i].e);
  conc__free(m->slots);
  conc__free(m->names);
  conc__free(m->rbuf);
  pthread_mutex_destroy(&m->mu);
  pthread_cond_destroy(&m->cv);
  conc__free(m);
}

static bool mx_is_own_thread(const conc_executor *ex) {
  const mpx *m = (const mpx *)ex;
  return m->thread_started && pthread_equal(pthread_self(), m->thread);
}

static void mx_stats(conc_executor *ex, conc_executor_stats *st) {
  mpx *m = M(ex);
  pthread_mutex_lock(&m->mu);
  st->submitted = m->n_submitted;
  st->completed = m->n_completed;
  st->failed = m->n_failed;
  st->cancelled = m->n_cancelled;
  st->deadline_missed = m->n_deadline;
  st->queued = m->npending;
  st->running = m->ninflight;
  st->workers = (unsigned)m->nworkers;
  pthread_mutex_unlock(&m->mu);
}

/* submit_task: the generic closure (the input is copied once, then sent
 * from there; sending a big input straight from the caller's buffer, the
 * caller driving MPI until it is out, measured slower here: the send
 * cannot start before the worker rank has finished its previous task) */
static const conc__executor_vt mx_vt = {
    .kind = "mpi",
    .submit = mx_submit,
    .shutdown = mx_shutdown,
    .free = mx_free,
    .is_own_thread = mx_is_own_thread,
    .stats = mx_stats,
    .submit_task = NULL,
};

/* ==== creation ==== */

void conc_mpi_options_init(conc_mpi_options *o) {
  if (!o)
    return;
  memset(o, 0, sizeof *o);
  o->size = sizeof *o;
  o->isolate = true;
  o->task_timeout = -1;
  o->stop_grace = 5;
  o->idle_spin = -1;
  o->idle_sleep_max = 0;
}

int conc_mpi_executor_create(const conc_mpi_options *opts,
                             conc_executor **out) {
  if (!out)
    return CONC_EINVAL;
  *out = NULL;
  conc_mpi_options o;
  conc_mpi_options_init(&o);
  if (opts) {
    if (opts->size != sizeof o)
      return CONC_EINVAL;
    o = *opts;
  }
  if (o.max_in_flight > 4096 || o.procs_per_rank > 4096 || o.spawn > 65536 ||
      isnan(o.idle_spin) || isnan(o.idle_sleep_max) || o.idle_spin > 10 ||
      isnan(o.task_timeout) || isnan(o.stop_grace) ||
      o.idle_sleep_max > 10)
    return CONC_EINVAL;
  if (!o.max_in_flight)
    o.max_in_flight = 8;
  if (!o.procs_per_rank)
    o.procs_per_rank = 1;
  if (o.idle_spin < 0)
    o.idle_spin = 1e-3;
  if (o.idle_sleep_max <= 0)
    o.idle_sleep_max = 1e-3;
  if (!conc__init_done()) {
    conc_log(CONC_LOG_ERROR, "conc_mpi_executor_create: call "
                             "conc_init(&argc, &argv) first thing in main");
    return CONC_EPERM;
  }
  int zero = 0;
  if (!atomic_compare_exchange_strong(&created, &zero, 1))
    return CONC_EBUSY;
  mpx *m = conc__calloc(1, sizeof *m);
  if (!m)
    return CONC_ENOMEM;
  m->ex.gen = conc__fork_gen();
  m->o = o;
  m->depth = o.max_in_flight;
  pthread_mutex_init(&m->mu, NULL);
  pthread_cond_init(&m->cv, NULL);
  m->hp = conc__calloc(1, sizeof *m->hp);
  if (!m->hp) {
    mx_free(&m->ex);
    return CONC_ENOMEM;
  }
  atomic_init(&m->hp->h.refs, 1);
  m->hp->h.help = mx_help;
  m->hp->h.destroy = mx_helper_destroy;
  m->hp->h.recycle = mx_recycle;
  m->hp->h.park = mx_park;
  m->hp->h.pool = m;
  pthread_mutex_init(&m->hp->mpi, NULL);
  conc__bufcache_init(&m->hp->cache);
  m->nnames = conc_task_count();
  m->names = conc__calloc(m->nnames ? m->nnames : 1, sizeof *m->names);
  if (!m->names) {
    mx_free(&m->ex);
    return CONC_ENOMEM;
  }
  for (size_t i = 0; i < m->nnames; i++)
    m->names[i] = conc_task_name(i);
  int rc = pthread_create(&m->thread, NULL, progress, m);
  if (rc) {
    mx_free(&m->ex);
    return rc == ENOMEM ? CONC_ENOMEM : CONC_EAGAIN;
  }
  m->thread_started = true;
  /* wait for MPI: the rank decides what this call is */
  pthread_mutex_lock(&m->mu);
  while (m->start == 0)
    pthread_cond_wait(&m->cv, &m->mu);
  int start = m->start;
  pthread_mutex_unlock(&m->mu);
  if (start == 2) { /* a worker rank: its work is done */
    int status = m->status;
    pthread_join(m->thread, NULL);
    fflush(NULL);
    exit(status);
  }
  if (start < 0) {
    mx_free(&m->ex);
    return start;
  }
  conc__executor_init(&m->ex, &mx_vt, (unsigned)m->nworkers *
                      (o.isolate ? o.procs_per_rank : 1), o.flags);
  *out = &m->ex;
  return 0;
}
