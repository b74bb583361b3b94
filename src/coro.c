/* coro.c - the coroutine scheduler: one loop per thread.
 *
 * DESIGN
 * Threads.  A loop belongs to the thread that created it (owner_tid); every
 * entry point checks it and nothing here locks.  tls_loop names the loop
 * running on this thread (set by run and by destroy's drain), and
 * loop->current the coroutine on the CPU.
 *
 * Switching.  A waiting coroutine switches straight to the next one of
 * the current tick (or to the loop's own context, main, when main has
 * work), through the annotated layer of ctx.h, so each coroutine's ASan
 * stack bounds and TSan fiber are maintained there (fiber created at
 * spawn, destroyed when the finished coroutine is reaped).  All those
 * switches happen at one call site, switch_out (not inlined), through
 * conc__ctx_jump_sym, which leaves by ret: the return-stack predictor
 * then predicts it.  A new coroutine gets its stack and context at its
 * first switch in (start_prep: the stack freed last, hot).  A finished
 * coroutine leaves by conc__ctx_jump_final straight to the next runnable
 * coroutine (or main), which reaps it (frees its stack) first thing:
 * never from the stack being freed.
 *
 * States of a coroutine:
 *   NEW      spawned, in the run queue, never ran
 *   READY    in the run queue after a wake (wake code decided)
 *   YIELDED  in the run queue from conc_coro_yield (still a waiting point:
 *            a cancel sets its wake code to CONC_ECANCELED)
 *   RUNNING  the current coroutine
 *   WAITING  parked: maybe in the timer heap (finite deadline), maybe on an
 *            awaited coroutine's waiter list
 *   DONE     returned; err/result final
 * Cancellation: WAITING -> woken with CONC_ECANCELED; YIELDED -> wake code
 * becomes CONC_ECANCELED; NEW/READY/RUNNING -> cancel_pending, consumed by
 * the next waiting point; DONE -> nothing.
 *
 * Scheduling.  The run queue is FIFO (intrusive singly linked).  One tick
 * runs as many coroutines as were queued at its start (tick_left; so a
 * yielding coroutine runs again only after the others).  At a tick
 * boundary the last coroutine of the tick starts the next tick itself
 * (switch_out) unless main has work: the queue is empty, or POLL_EVERY
 * (64) switches ran since main last looked and a timer is armed or the
 * poller has interest.  Main then polls I/O (without waiting while
 * coroutines are runnable) and moves expired timers to the queue.  So
 * while coroutines keep yielding, I/O and timers are still served every
 * 64 switches (a timer fires at most 64 switches late), and at once
 * whenever the queue empties; a yield costs no clock read, no epoll call.
 * Timers live in a binary min-heap on (deadline, sequence): equal
 * deadlines wake in the order they were set.  With an empty queue the
 * thread sleeps until the earliest deadline: in epoll_wait once the loop
 * has an I/O poller (src/io.c, created on first use of conc/net.h), else
 * in clock_nanosleep (absolute).  With no timer, no I/O interest and
 * coroutines left, nothing can wake them: run returns CONC_EDEADLK.
 *
 * Memory.  A coroutine record has two references: the coroutine's own
 * (dropped when it is reaped) and the handle's (dropped by
 * conc_coro_release, or at once for a detached spawn).  The record never
 * points into the loop after the coroutine finished, so handles may
 * outlive their loop.  A record whose last reference goes at reap is kept
 * on the loop's free list (up to FREE_RECS_MAX) for the next spawn.
 * Stacks come from per-size stack pools (stack.h).
 */
#include "internal.h"
#include "conc/coro.h"
#include "coro-int.h"
#include "ctx.h"
#include "stack.h"

#include <time.h>

#define FREE_RECS_MAX 4096 /* records a loop keeps for reuse */
/* Switches between two checks of I/O and timers while coroutines stay
 * runnable (switch_out). */
#define POLL_EVERY 64

/* The loop running on this thread (coro-int.h). */
_Thread_local conc_loop *conc__tls_loop __attribute__((tls_model("initial-exec")));
#define tls_loop conc__tls_loop
typedef conc__local local;

/* ---- stack overflow reports -------------------------------------------
 *
 * A coroutine that overflows its stack touches the guard page below it
 * and takes SIGSEGV on that (exhausted) stack.  So that this is reported,
 * not silent: conc_loop_run gives its thread an alternate signal stack
 * (unless the thread has one, as under ASan) and a process-wide SIGSEGV
 * handler is installed once, SA_ONSTACK, remembering the handler it
 * replaced.  The handler recognises a fault in the guard page of the
 * coroutine running on this thread (tls_loop->current: a fault is
 * delivered to the faulting thread), writes one line to stderr with
 * write(2) only (async-signal-safe), then chains: to the previous
 * handler (the user's, or a sanitizer's, which then reports), or, if that
 * was SIG_DFL or SIG_IGN, restores the default action and returns, so the
 * faulting instruction faults again and the process dies of SIGSEGV (a
 * SIGSEGV sent by kill is re-raised instead).  Other faults chain without
 * a message.  A handler installed later by the user replaces this one. */

#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

static pthread_once_t segv_once = PTHREAD_ONCE_INIT;
static struct sigaction segv_prev;
static uintptr_t segv_page; /* sysconf is not async-signal-safe */

static size_t fmt_hex(char *p, uintptr_t v) {
  char tmp[2 + 2 * sizeof v];
  size_t n = 0;
  do {
    tmp[n++] = "0123456789abcdef"[v & 15];
    v >>= 4;
  } while (v);
  p[0] = '0';
  p[1] = 'x';
  for (size_t i = 0; i < n; i++)
    p[2 + i] = tmp[n - 1 - i];
  return n + 2;
}

static size_t fmt_dec(char *p, size_t v) {
  char tmp[24];
  size_t n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  for (size_t i = 0; i < n; i++)
    p[i] = tmp[n - 1 - i];
  return n;
}

static size_t fmt_str(char *p, const char *s) {
  size_t n = strlen(s);
  memcpy(p, s, n);
  return n;
}

static void segv_chain(int sig, siginfo_t *info, void *uc) {
  const struct sigaction *o = &segv_prev;
  if (o->sa_flags & SA_SIGINFO) {
    if (o->sa_sigaction) {
      o->sa_sigaction(sig, info, uc);
      return;
    }
  } else if (o->sa_handler != SIG_DFL && o->sa_handler != SIG_IGN) {
    o->sa_handler(sig);
    return;
  }
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(sig, &dfl, NULL);
  if (info->si_code <= 0) /* sent, not a fault: returning would not refault */
    raise(sig);
}

static void on_segv(int sig, siginfo_t *info, void *uc) {
  int saved = errno;
  conc_loop *l = tls_loop;
  conc_coro *c = l ? l->current : NULL;
  uintptr_t a = (uintptr_t)info->si_addr;
  if (c && c->stack.lo && c->stack.guarded) {
    uintptr_t lo = (uintptr_t)c->stack.lo;
    uintptr_t page = segv_page;
    if (a < lo && a >= lo - page) {
      char msg[512];
      size_t n = 0;
      n += fmt_str(msg + n, "conc: stack overflow in coroutine ");
      n += fmt_hex(msg + n, (uintptr_t)c);
      n += fmt_str(msg + n, " (function ");
      n += fmt_hex(msg + n, (uintptr_t)c->fn);
      n += fmt_str(msg + n, ", loop ");
      n += fmt_hex(msg + n, (uintptr_t)l);
      n += fmt_str(msg + n, "): fault at ");
      n += fmt_hex(msg + n, a);
      n += fmt_str(msg + n, " in the guard page below its ");
      n += fmt_dec(msg + n, c->stack.size);
      n += fmt_str(msg + n, "-byte stack; increase "
                            "conc_loop_options.stack_size (or "
                            "conc_coro_options.stack_size)\n");
      for (size_t off = 0; off < n;) {
        ssize_t w = write(2, msg + off, n - off);
        if (w < 0 && errno == EINTR)
          continue;
        if (w <= 0)
          break;
        off += (size_t)w;
      }
    }
  }
  errno = saved;
  segv_chain(sig, info, uc);
}

static void segv_install(void) {
  segv_page = (uintptr_t)sysconf(_SC_PAGESIZE);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGSEGV, NULL, &segv_prev) != 0)
    return;
  (void)sigaction(SIGSEGV, &sa, NULL);
}

/* The alternate signal stack conc_loop_run installed on this thread (NULL:
 * none, or the thread had one already). */
#define ALTSTACK_SIZE (64 * 1024)

static void *altstack_enter(void) {
  pthread_once(&segv_once, segv_install);
  stack_t cur;
  if (sigaltstack(NULL, &cur) != 0 || !(cur.ss_flags & SS_DISABLE))
    return NULL; /* the thread has one (a sanitizer's, the user's) */
  size_t size = ALTSTACK_SIZE;
  if ((size_t)SIGSTKSZ > size)
    size = (size_t)SIGSTKSZ;
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return NULL;
  stack_t ss = {.ss_sp = p, .ss_size = size, .ss_flags = 0};
  if (sigaltstack(&ss, NULL) != 0) {
    munmap(p, size);
    return NULL;
  }
  return p;
}

static void altstack_leave(void *p) {
  if (!p)
    return;
  size_t size = ALTSTACK_SIZE;
  if ((size_t)SIGSTKSZ > size)
    size = (size_t)SIGSTKSZ;
  stack_t ss = {.ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE};
  CONC_MUST(sigaltstack(&ss, NULL) == 0);
  munmap(p, size);
}

/* ---- options -------------------------------------------------------- */

void conc_loop_options_init(conc_loop_options *o) {
  if (!o)
    return;
  memset(o, 0, sizeof *o);
  o->size = sizeof *o;
  o->stack_size = 128 * 1024;
}

void conc_coro_options_init(conc_coro_options *o) {
  if (!o)
    return;
  memset(o, 0, sizeof *o);
  o->size = sizeof *o;
}

/* ---- run queue ------------------------------------------------------ */

#define rq_push conc__rq_push

static conc_coro *rq_pop(conc_loop *l) {
  conc_coro *c = l->rq_head;
  if (c) {
    l->rq_head = c->next;
    if (!l->rq_head)
      l->rq_tail = NULL;
    l->rq_len--;
    c->next = NULL;
  }
  return c;
}

/* ---- timer heap ----------------------------------------------------- */

static bool heap_less(const conc_coro *a, const conc_coro *b) {
  return a->deadline < b->deadline ||
         (a->deadline == b->deadline && a->seq < b->seq);
}

static void heap_set(conc_loop *l, size_t i, conc_coro *c) {
  l->heap[i] = c;
  c->heap_idx = i;
}

static void heap_up(conc_loop *l, size_t i) {
  conc_coro *c = l->heap[i];
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!heap_less(c, l->heap[p]))
      break;
    heap_set(l, i, l->heap[p]);
    i = p;
  }
  heap_set(l, i, c);
}

static void heap_down(conc_loop *l, size_t i) {
  conc_coro *c = l->heap[i];
  size_t n = l->heap_len;
  for (;;) {
    size_t k = 2 * i + 1;
    if (k >= n)
      break;
    if (k + 1 < n && heap_less(l->heap[k + 1], l->heap[k]))
      k++;
    if (!heap_less(l->heap[k], c))
      break;
    heap_set(l, i, l->heap[k]);
    i = k;
  }
  heap_set(l, i, c);
}

static int heap_push(conc_loop *l, conc_coro *c, double deadline) {
  if (l->heap_len == l->heap_cap) {
    size_t cap = l->heap_cap ? 2 * l->heap_cap : 64;
    conc_coro **h = conc__realloc(l->heap, cap * sizeof *h);
    if (!h)
      return CONC_ENOMEM;
    l->heap = h;
    l->heap_cap = cap;
  }
  c->deadline = deadline;
  c->seq = l->seq++;
  heap_set(l, l->heap_len++, c);
  heap_up(l, c->heap_idx);
  return 0;
}

static void heap_remove(conc_loop *l, conc_coro *c) {
  size_t i = c->heap_idx;
  CONC_ASSERT(i < l->heap_len && l->heap[i] == c);
  c->heap_idx = NO_HEAP;
  conc_coro *last = l->heap[--l->heap_len];
  if (i == l->heap_len)
    return;
  heap_set(l, i, last);
  heap_up(l, i);
  heap_down(l, last->heap_idx);
}

/* ---- wake / park ---------------------------------------------------- */

static void waiter_unlink(conc_coro *c) {
  conc_coro *t = c->awaited;
  if (c->w_prev)
    c->w_prev->w_next = c->w_next;
  else
    t->waiters = c->w_next;
  if (c->w_next)
    c->w_next->w_prev = c->w_prev;
  else
    t->waiters_tail = c->w_prev;
  c->w_prev = c->w_next = NULL;
  c->awaited = NULL;
}

/* Make a WAITING coroutine runnable; its wait returns code. */
static void wake(conc_loop *l, conc_coro *c, int code) {
  CONC_ASSERT(c->state == WAITING);
  if (c->heap_idx != NO_HEAP)
    heap_remove(l, c);
  if (c->awaited)
    waiter_unlink(c);
  c->wake = code;
  c->state = READY;
  rq_push(l, c);
}

/* Whether the I/O poller has anything that may wake a coroutine. */
static bool io_busy(conc_loop *l) {
  conc__io *io = atomic_load_explicit(&l->io, memory_order_acquire);
  return io && conc__io_busy(io, l->closing);
}

/* The calling coroutine, or NULL outside one (callers return CONC_EPERM). */
static conc_coro *self_or_eperm(void) {
  conc_loop *l = tls_loop;
  return l ? l->current : NULL;
}

/* A waiting point's entry check: a pending cancel (or a closing loop)
 * makes the wait return CONC_ECANCELED without waiting. */
static int take_cancel(conc_coro *c) {
  if (c->cancel_pending || c->loop->closing) {
    c->cancel_pending = false;
    return CONC_ECANCELED;
  }
  return 0;
}

/* Leave the running coroutine c (already queued or parked): switch
 * straight to the next coroutine of the current tick, or to the main
 * context when the tick is over and main has work: the run queue is empty
 * (main sleeps, or returns), or at least POLL_EVERY switches ran since
 * main last polled and a timer is armed or the poller has interest (main
 * polls without waiting and wakes due timers, then starts the next tick).
 * So I/O and timers are checked every POLL_EVERY switches while
 * coroutines stay runnable, and whenever the run queue empties; a tick
 * boundary without that starts the next tick here.  Returns when c runs
 * again (whoever resumes it sets it RUNNING and current).
 *
 * Not inlined, and one switch inside: every coroutine switches out from
 * this one call site, so conc__ctx_jump_sym's return is predicted right
 * (see src/arch/ctx-x86_64.S). */
static void start_prep(conc_coro *n);
static void reap(conc_loop *l, conc_coro *c);
#define switch_out conc__coro_switch_out

/* The next coroutine of the tick for the running coroutine c to switch to
 * (popped, RUNNING), c itself (it was alone: no switch), or NULL: go to
 * main.  See switch_out. */
static inline conc_coro *next_runnable(conc_loop *l, conc_coro *c) {
  if (l->tick_left == 0) {
    size_t len = l->rq_len;
    if (len > 0 && l->since_poll >= POLL_EVERY) {
      if (l->heap_len > 0 || io_busy(l))
        len = 0; /* through main, which polls */
      else
        l->since_poll = 0;
    }
    l->since_poll += len;
    l->tick_left = len;
  }
  if (l->tick_left == 0)
    return NULL;
  conc_coro *n = l->rq_head;
  l->tick_left--;
  rq_pop(l);
  n->state = RUNNING;
  if (n != c) {
    l->current = n;
    if (n->ctx.sp == NULL)
      start_prep(n);
  }
  return n;
}

/* Reap the coroutine that finished last, if any (it switched to us). */
static inline void reap_zombie(conc_loop *l) {
  conc_coro *z = l->zombie;
  if (z) {
    l->zombie = NULL;
    reap(l, z);
  }
}

__attribute__((noinline)) void conc__coro_switch_out(conc_loop *l,
                                                     conc_coro *c) {
  conc_coro *n = next_runnable(l, c);
  if (n == c)
    return;
  conc__ctx_jump_sym(&c->ctx, n ? &n->ctx : &l->main);
  reap_zombie(l);
}

/* Park the running coroutine until woken or the deadline (INFINITY: none)
 * and return the wake code (CONC_ETIMEDOUT at the deadline). */
static inline __attribute__((always_inline)) int park(conc_coro *c,
                                                     double deadline) {
  conc_loop *l = c->loop;
  if (deadline != INFINITY) {
    int err = heap_push(l, c, deadline);
    if (err)
      return err;
  }
  c->state = WAITING;
  switch_out(l, c);
  return c->wake;
}

/* ---- park / unpark for other modules (coro-int.h) ------------------ */


void conc__coro_wake(conc_coro *c, int code) {
  CONC_ASSERT(c->loop && c->state == WAITING && !c->awaited);
  wake(c->loop, c, code);
}

int conc__coro_park_timed(conc_coro *c, double deadline) {
  CONC_ASSERT(c && c == self_or_eperm());
  return park(c, deadline);
}


_Atomic(conc__io *) *conc__loop_io_slot(conc_loop *l) { return &l->io; }

bool conc__loop_owned(const conc_loop *l) {
  return l->owner_tid == conc__gettid();
}

conc_loop *conc__loop_current(void) { return tls_loop; }

int conc__loop_tid(const conc_loop *l) { return l->owner_tid; }

conc_loop *conc__coro_loop(const conc_coro *c) { return c->loop; }

bool conc__loop_closing(const conc_loop *l) { return l->closing; }

/* ---- coroutine body ------------------------------------------------- */

static void coro_entry(void *p) {
  conc_coro *c = p;
  conc_loop *l = c->loop;
  reap_zombie(l);
  void *res = NULL;
  int err = c->fn(c->arg, &res);
  while (c->locals) {
    local *e = c->locals;
    c->locals = e->next;
    if (e->dtor && e->value)
      e->dtor(e->value);
    conc__free(e);
  }
  c->err = err;
  c->result = res;
  c->state = DONE;
  while (c->waiters)
    wake(l, c->waiters, 0);
  /* Straight to the next coroutine of the tick (or main), which reaps
   * this one: its stack is freed from another stack. */
  l->zombie = c;
  conc_coro *n = next_runnable(l, c);
  if (!n)
    l->current = NULL;
  conc__ctx_jump_final(&c->ctx, n ? &n->ctx : &l->main);
}

/* Before the first switch into n: run it on the stack freed last (still
 * in cache and TLB: with spawn-run-finish churn every new coroutine runs
 * on the stack of the one that just finished) and make its context.  Spawn
 * only reserved a free stack (or, with none free, allocated one, which is
 * exchanged here for the hot one), so spawn still reports ENOMEM and this
 * cannot fail. */
static void start_prep(conc_coro *n) {
  if (n->stack.lo)
    conc__stack_swap_hot(n->pool, &n->stack);
  else
    conc__stack_take(n->pool, &n->stack);
  /* the spawner's FP control state, as documented */
  int r = conc__ctx_make_fp(&n->ctx, n->stack.lo, n->stack.size, coro_entry, n,
                            n->fp, conc__ctx_fiber_of(&n->ctx));
  CONC_MUST(r == 0); /* stack sizes are whole pages */
}

static void coro_unref(conc_coro *c) {
  if (--c->refs == 0)
    conc__free(c);
}

/* From the main context: free a finished coroutine's stack and fiber. */
static void reap(conc_loop *l, conc_coro *c) {
  conc__ctx_destroy(&c->ctx);
  conc__stack_free(c->pool, &c->stack);
  if (c->all_prev)
    c->all_prev->all_next = c->all_next;
  else
    l->all = c->all_next;
  if (c->all_next)
    c->all_next->all_prev = c->all_prev;
  c->all_prev = c->all_next = NULL;
  c->loop = NULL;
  l->live--;
  if (c->refs == 1 && l->n_free_recs < FREE_RECS_MAX) {
    /* Last reference (detached, or handle already released): keep the
     * record for the next spawn. */
    c->next = l->free_recs;
    l->free_recs = c;
    l->n_free_recs++;
    return;
  }
  coro_unref(c);
}

/* Run the coroutines queued now, in order.  Coroutines pass the CPU to
 * each other directly (switch_out) while the tick's budget lasts; control
 * comes back here when it is spent or a coroutine finished. */
static void run_tick(conc_loop *l) {
  l->tick_left = l->rq_len;
  while (l->tick_left > 0 && l->rq_head) {
    l->tick_left--;
    conc_coro *c = rq_pop(l);
    c->state = RUNNING;
    l->current = c;
    if (c->ctx.sp == NULL)
      start_prep(c);
    conc__ctx_jump(&l->main, &c->ctx);
    l->current = NULL;
    reap_zombie(l);
  }
  l->tick_left = 0;
}

static void sleep_until(double deadline) {
  double s = floor(deadline);
  struct timespec ts = {.tv_sec = (time_t)s,
                        .tv_nsec = (long)((deadline - s) * 1e9)};
  if (ts.tv_nsec >= 1000000000L)
    ts.tv_nsec = 999999999L;
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
    ;
}

/* The scheduler proper; returns 0 or CONC_EDEADLK.  The loop runs while
 * coroutines are left, or while conc_loop_ref holds keep it (not while
 * closing). */
static int schedule(conc_loop *l) {
  conc__ctx_init_current(&l->main);
  for (;;) {
    conc__io *io = atomic_load_explicit(&l->io, memory_order_acquire);
    if (l->live == 0 && !(io && conc__io_held(io, l->closing)))
      break;
    run_tick(l);
    l->since_poll = 0;
    /* The tick may have created the poller. */
    io = atomic_load_explicit(&l->io, memory_order_acquire);
    if (io && (l->heap_len > 0 || conc__io_busy(io, l->closing))) {
      /* Poll without waiting while coroutines are runnable; else wait
       * until the earliest coroutine deadline (the poller adds its own
       * timers).  Fd events, callback timers and cross-thread messages
       * are handled inside. */
      double dl = l->heap_len > 0 ? l->heap[0]->deadline : INFINITY;
      conc__io_poll(l, io, l->rq_len > 0 ? -INFINITY : dl);
      double now = conc_now();
      while (l->heap_len > 0 && l->heap[0]->deadline <= now)
        wake(l, l->heap[0], CONC_ETIMEDOUT);
    } else if (l->heap_len > 0) {
      double now = conc_now();
      if (l->rq_len == 0 && l->heap[0]->deadline > now) {
        sleep_until(l->heap[0]->deadline);
        now = conc_now();
      }
      while (l->heap_len > 0 && l->heap[0]->deadline <= now)
        wake(l, l->heap[0], CONC_ETIMEDOUT);
    } else if (l->rq_len == 0 && l->live > 0) {
      return CONC_EDEADLK;
    }
  }
  return 0;
}

/* ---- loops ---------------------------------------------------------- */

int conc_loop_create(const conc_loop_options *opts, conc_loop **out) {
  conc_loop_options def;
  if (!out)
    return CONC_EINVAL;
  if (!opts) {
    conc_loop_options_init(&def);
    opts = &def;
  }
  if (opts->size != sizeof *opts || opts->stack_size > ((size_t)1 << 30))
    return CONC_EINVAL;
  conc_loop *l = conc__calloc(1, sizeof *l);
  if (!l)
    return CONC_ENOMEM;
  l->stack_size = opts->stack_size ? opts->stack_size : 128 * 1024;
  l->owner_tid = conc__gettid();
  *out = l;
  return 0;
}

int conc_loop_run(conc_loop *l) {
  if (!l)
    return CONC_EINVAL;
  if (l->owner_tid != conc__gettid())
    return CONC_EPERM;
  if (tls_loop || l->running)
    return CONC_EBUSY;
  void *alt = altstack_enter();
  tls_loop = l;
  l->running = true;
  int err = schedule(l);
  l->running = false;
  tls_loop = NULL;
  altstack_leave(alt);
  return err;
}

static conc__stack_pool *pool_for(conc_loop *l, size_t size, int *err) {
  for (pool_entry *e = l->pools; e; e = e->next)
    if (e->stack_size == size)
      return e->pool;
  pool_entry *e = conc__malloc(sizeof *e);
  if (!e) {
    *err = CONC_ENOMEM;
    return NULL;
  }
  conc__stack_options o;
  conc__stack_options_init(&o);
  o.stack_size = size;
  *err = conc__stack_pool_create(&o, &e->pool);
  if (*err) {
    conc__free(e);
    return NULL;
  }
  e->stack_size = size;
  e->next = l->pools;
  l->pools = e;
  return e->pool;
}

int conc_loop_destroy(conc_loop *l) {
  if (!l)
    return CONC_EINVAL;
  if (l->owner_tid != conc__gettid())
    return CONC_EPERM;
  if (l->running || tls_loop)
    return CONC_EBUSY;
  conc__io *io = atomic_load_explicit(&l->io, memory_order_acquire);
  if (io) {
    int err = conc__io_can_destroy(io);
    if (err)
      return err;
    conc__io_closing(io);
  }
  if (l->live > 0) {
    l->closing = true;
    for (conc_coro *c = l->all; c; c = c->all_next)
      conc_coro_cancel(c);
    void *alt = altstack_enter();
    tls_loop = l;
    l->running = true;
    int err = schedule(l);
    l->running = false;
    tls_loop = NULL;
    altstack_leave(alt);
    /* Every wait returns at once while closing: nothing can stay parked. */
    CONC_MUST(err == 0 && l->live == 0);
  }
  /* A coroutine may have created the poller while being drained. */
  io = atomic_load_explicit(&l->io, memory_order_acquire);
  if (io)
    conc__io_destroy(l, io);
  while (l->pools) {
    pool_entry *e = l->pools;
    l->pools = e->next;
    conc__stack_pool_destroy(e->pool);
    conc__free(e);
  }
  while (l->free_recs) {
    conc_coro *c = l->free_recs;
    l->free_recs = c->next;
    conc__free(c);
  }
  conc__free(l->heap);
  conc__free(l);
  return 0;
}

/* ---- coroutines ----------------------------------------------------- */

int conc_coro_spawn(conc_loop *l, conc_coro_fn fn, void *arg,
                    const conc_coro_options *opts, conc_coro **out) {
  if (!l) {
    conc_coro *self = self_or_eperm();
    if (!self)
      return CONC_EINVAL;
    l = self->loop;
  }
  if (!fn || (opts && (opts->size != sizeof *opts ||
                       opts->stack_size > ((size_t)1 << 30))))
    return CONC_EINVAL;
  /* A thread running l is its owner: no gettid on that path. */
  if (tls_loop != l && l->owner_tid != conc__gettid())
    return CONC_EPERM;
  if (l->closing)
    return CONC_ECLOSED;
  size_t size = opts && opts->stack_size ? opts->stack_size : l->stack_size;
  int err = 0;
  conc__stack_pool *pool = l->pools && l->pools->stack_size == size
                               ? l->pools->pool
                               : pool_for(l, size, &err);
  if (!pool)
    return err;
  conc_coro *c = l->free_recs;
  if (c) {
    l->free_recs = c->next;
    l->n_free_recs--;
  } else {
    c = conc__malloc(sizeof *c);
    if (!c)
      return CONC_ENOMEM;
  }
  err = conc__stack_reserve(pool, &c->stack);
  if (err) {
    conc__free(c);
    return err;
  }
  /* Every field, without a memset of the whole record. */
  c->locals = NULL;
  c->result = NULL;
  c->err = 0;
  c->wake = 0;
  c->cancel_pending = false;
  c->all_prev = NULL;
  c->deadline = 0;
  c->seq = 0;
  c->awaited = NULL;
  c->w_prev = c->w_next = NULL;
  c->waiters = c->waiters_tail = NULL;
  c->pool = pool;
  c->ctx.sp = NULL; /* context made at the first switch in (start_prep) */
  c->fp = conc__ctx_get_fp();
  conc__ctx_fiber_early(&c->ctx);
  c->loop = l;
  c->fn = fn;
  c->arg = arg;
  c->state = NEW;
  c->heap_idx = NO_HEAP;
  c->refs = out ? 2 : 1;
  c->all_next = l->all;
  if (l->all)
    l->all->all_prev = c;
  l->all = c;
  l->live++;
  rq_push(l, c);
  if (out)
    *out = c;
  return 0;
}

conc_coro *conc_coro_retain(conc_coro *h) {
  if (h)
    h->refs++;
  return h;
}

void conc_coro_release(conc_coro *h) {
  if (h)
    coro_unref(h);
}

int conc_coro_result(conc_coro *h, void **result) {
  if (!h)
    return CONC_EINVAL;
  if (h->state != DONE)
    return CONC_EAGAIN;
  if (result)
    *result = h->result;
  return h->err;
}

int conc_coro_cancel(conc_coro *h) {
  if (!h)
    return CONC_EINVAL;
  conc_loop *l = h->loop;
  if (!l) /* finished */
    return 0;
  if (l->owner_tid != conc__gettid())
    return CONC_EPERM;
  switch (h->state) {
  case WAITING:
    wake(l, h, CONC_ECANCELED);
    break;
  case YIELDED:
    h->wake = CONC_ECANCELED;
    break;
  case NEW:
  case READY:
  case RUNNING:
    h->cancel_pending = true;
    break;
  default:
    break;
  }
  return 0;
}

int conc_coro_await_until(conc_coro *h, double deadline, void **result) {
  conc_coro *c = self_or_eperm();
  if (!c)
    return CONC_EPERM;
  if (!h || isnan(deadline))
    return CONC_EINVAL;
  if (h == c)
    return CONC_EDEADLK;
  if (h->state != DONE && h->loop != c->loop)
    return CONC_EINVAL;
  int err = take_cancel(c);
  if (err)
    return err;
  if (h->state != DONE) {
    if (deadline < INFINITY && deadline <= conc_now())
      return CONC_ETIMEDOUT;
    c->awaited = h;
    c->w_next = NULL;
    c->w_prev = h->waiters_tail;
    if (h->waiters_tail)
      h->waiters_tail->w_next = c;
    else
      h->waiters = c;
    h->waiters_tail = c;
    err = park(c, deadline);
    if (err) {
      if (c->awaited) /* heap_push failed */
        waiter_unlink(c);
      return err;
    }
  }
  if (result)
    *result = h->result;
  return h->err;
}

int conc_coro_await(conc_coro *h, double timeout, void **result) {
  return conc_coro_await_until(h, conc__deadline(timeout), result);
}

int conc_coro_yield(void) {
  conc_coro *c = self_or_eperm();
  if (!c)
    return CONC_EPERM;
  int err = take_cancel(c);
  if (err)
    return err;
  conc_loop *l = c->loop;
  c->wake = 0;
  c->state = YIELDED;
  rq_push(l, c);
  switch_out(l, c);
  return c->wake;
}

int conc_coro_sleep_until(double deadline) {
  conc_coro *c = self_or_eperm();
  if (!c)
    return CONC_EPERM;
  if (isnan(deadline))
    return CONC_EINVAL;
  if (deadline == INFINITY) {
    int err = take_cancel(c);
    return err ? err : park(c, INFINITY);
  }
  if (deadline <= conc_now())
    return conc_coro_yield();
  int err = take_cancel(c);
  if (err)
    return err;
  err = park(c, deadline);
  return err == CONC_ETIMEDOUT ? 0 : err;
}

int conc_coro_sleep(double seconds) {
  if (!self_or_eperm())
    return CONC_EPERM;
  if (seconds < 0 || isnan(seconds))
    return CONC_EINVAL;
  return conc_coro_sleep_until(conc_now() + seconds);
}

conc_coro *conc_coro_self(void) { return self_or_eperm(); }

/* ---- coroutine-local values ----------------------------------------- */

static local **local_find(conc_coro *c, const void *key) {
  local **p = &c->locals;
  while (*p && (*p)->key != key)
    p = &(*p)->next;
  return p;
}

int conc_coro_local_set(const void *key, void *value, void (*dtor)(void *)) {
  conc_coro *c = self_or_eperm();
  if (!c)
    return CONC_EPERM;
  if (!key)
    return CONC_EINVAL;
  local **p = local_find(c, key);
  local *e = *p;
  void *old = NULL;
  void (*old_dtor)(void *) = NULL;
  if (!e) {
    if (!value)
      return 0;
    e = conc__malloc(sizeof *e);
    if (!e)
      return CONC_ENOMEM;
    e->key = key;
    e->next = c->locals;
    c->locals = e;
  } else {
    old = e->value;
    old_dtor = e->dtor;
  }
  if (value) {
    e->value = value;
    e->dtor = dtor;
  } else {
    *p = e->next; /* unlinked before the dtor runs: it may set again */
    conc__free(e);
  }
  /* Last, so that the dtor sees a consistent list. */
  if (old && old != value && old_dtor)
    old_dtor(old);
  return 0;
}

int conc_coro_local_get(const void *key, void **value) {
  conc_coro *c = self_or_eperm();
  if (!c)
    return CONC_EPERM;
  if (!key || !value)
    return CONC_EINVAL;
  local *e = *local_find(c, key);
  *value = e ? e->value : NULL;
  return e ? 0 : CONC_ENOENT;
}

int conc_coro_run(conc_coro_fn fn, void *arg, void **result) {
  if (!fn)
    return CONC_EINVAL;
  if (tls_loop)
    return CONC_EBUSY;
  conc_loop *l = NULL;
  int err = conc_loop_create(NULL, &l);
  if (err)
    return err;
  conc_coro *h = NULL;
  err = conc_coro_spawn(l, fn, arg, NULL, &h);
  if (err) {
    conc_loop_destroy(l);
    return err;
  }
  int rerr = conc_loop_run(l);
  conc_loop_destroy(l);
  err = conc_coro_result(h, result);
  conc_coro_release(h);
  return rerr ? rerr : err;
}
