/* io.c - the loop's epoll poller: fd waits, callback watches and timers,
 * and the cross-thread inbox (eventfd).
 *
 * DESIGN
 * Threads.  A loop's poller (conc__io) is created on first use, from any
 * thread (conc_loop_ref and conc_loop_spawn_threadsafe may come first from
 * another thread), and published in the loop by compare-and-swap (release;
 * readers load with acquire); the loser of a race frees its copy.  After
 * that, everything but `holds` and the inbox is touched by the loop's
 * thread only, without locks.
 *
 * Fd table.  One record per fd number (grown on demand): the coroutine
 * waiting to read (rd), the one waiting to write (wr; the same coroutine
 * when it waits for both), the callback watch (events, cb, arg), and
 * `reg`, the events registered with epoll.  Readiness is level-triggered.
 * Registration grows eagerly (epoll_ctl when a wait or watch wants an event
 * not registered) and shrinks lazily: only when epoll reports an event that
 * nobody wants any more is the registration reduced (MOD) or dropped
 * (DEL).  So a coroutine that reads, waits, reads again costs no epoll_ctl
 * in the steady state.  An event wakes the waiter with the ready mask as
 * its wake code (> 0) and clears the slot; a waiter woken otherwise
 * (timeout, cancel) clears its own slot when it runs.  A waiter that is no
 * longer parked (woken by its deadline, not yet run) is left alone.
 *
 * Read hint.  After a short read (fewer bytes than asked) the socket is
 * most likely empty, so tcp.c marks it `drained` and its next read waits
 * for readiness first instead of trying a read that would fail with
 * EAGAIN: a server then makes two syscalls per request (read, write) plus
 * its share of epoll_wait.  Readiness is level-triggered, so waiting on an
 * fd that does hold data returns on the next poll; any IN event clears the
 * mark.  The mark only counts while IN is registered (the fd is pollable).
 *
 * Callback timers: a binary min-heap on (deadline, sequence).  One poll
 * pass fires only timers armed before the pass began (sequence), so a
 * callback that re-arms with 0 runs on the next pass, not in a loop.
 *
 * Inbox (conc__remote).  A mutex-protected FIFO of messages with an
 * eventfd in the epoll set.  A poster appends and, if the inbox is not
 * already signalled, sets `signalled` and writes the eventfd, all under the
 * lock.  The loop, when epoll reports the eventfd, reads it, then takes the
 * whole list and clears `signalled` under the lock, and runs the messages
 * outside it.  A message posted after the list was taken finds `signalled`
 * clear and writes again, so none is missed.  The inbox is refcounted
 * (the poller holds one reference, each pending future-await record one)
 * because a future may complete after its loop is gone: `closed` (set
 * under the lock by destroy, which also closes the eventfd) makes later
 * posts fail.  `refuse_spawn` is set when destroy begins: cross-thread
 * spawns fail with CONC_ECLOSED from then on, while wake-ups are still
 * delivered to the coroutines that destroy is draining.
 *
 * Lock order: the inbox lock is a leaf; no callback runs under it.
 */
#include "internal.h"
#include "io-int.h"

#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define EFD_TAG UINT64_MAX
#define EV_BATCH 256
#define NO_HEAP ((size_t)-1)

struct conc__remote {
  pthread_mutex_t mu;
  conc__msg *head, *tail;
  /* Written under mu; read without it by the loop (conc__io_busy) to
   * notice queued messages, relaxed: the eventfd and mu order the rest. */
  atomic_bool signalled;
  bool refuse_spawn;
  bool closed;
  int efd;
  _Atomic int refs;
};

typedef struct fdrec {
  unsigned reg;       /* events registered with epoll (0: not registered) */
  unsigned watch_ev;  /* watched events (0: no watch) */
  conc_coro *rd, *wr; /* waiting coroutines */
  bool drained;       /* a read came back short, no IN event since */
  conc_watch_fn cb;
  void *arg;
} fdrec;

struct conc_loop_timer {
  conc__io *io;
  conc_timer_fn cb;
  void *arg;
  double deadline;
  uint64_t seq;
  size_t heap_idx;
};

struct conc__io {
  int epfd;
  conc__remote *remote;
  _Atomic int holds;   /* conc_loop_ref count; any thread */
  fdrec *fds;
  size_t nfds;
  size_t waits;        /* parked coroutines: fd waits and bridge waits */
  size_t watches;      /* fds with a watch */
  conc_loop_timer **heap;
  size_t heap_len, heap_cap;
  size_t timers;       /* created, armed or not */
  uint64_t seq;
};

/* ---- inbox ---------------------------------------------------------- */

static void remote_signal_locked(conc__remote *r) {
  if (atomic_load_explicit(&r->signalled, memory_order_relaxed) || r->closed)
    return;
  atomic_store_explicit(&r->signalled, true, memory_order_relaxed);
  uint64_t one = 1;
  ssize_t w;
  do
    w = write(r->efd, &one, sizeof one);
  while (w < 0 && errno == EINTR);
  /* EAGAIN: the counter is saturated, which still means readable. */
  CONC_MUST(w == sizeof one || errno == EAGAIN);
}

conc__remote *conc__io_remote(conc__io *io) {
  /* relaxed: the caller already holds a reference (the poller's). */
  atomic_fetch_add_explicit(&io->remote->refs, 1, memory_order_relaxed);
  return io->remote;
}

void conc__remote_release(conc__remote *r) {
  /* acq_rel: the last releaser sees every other holder's writes. */
  if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) != 1)
    return;
  CONC_ASSERT(r->closed && !r->head);
  pthread_mutex_destroy(&r->mu);
  conc__free(r);
}

int conc__remote_post(conc__remote *r, conc__msg *m) {
  pthread_mutex_lock(&r->mu);
  if (r->closed) {
    pthread_mutex_unlock(&r->mu);
    return CONC_ECLOSED;
  }
  m->next = NULL;
  if (r->tail)
    r->tail->next = m;
  else
    r->head = m;
  r->tail = m;
  remote_signal_locked(r);
  pthread_mutex_unlock(&r->mu);
  return 0;
}

static conc__msg *remote_take(conc__remote *r) {
  uint64_t v;
  while (read(r->efd, &v, sizeof v) < 0 && errno == EINTR)
    ;
  pthread_mutex_lock(&r->mu);
  conc__msg *m = r->head;
  r->head = r->tail = NULL;
  atomic_store_explicit(&r->signalled, false, memory_order_relaxed);
  pthread_mutex_unlock(&r->mu);
  return m;
}

static void run_msgs(conc_loop *l, conc__msg *m, bool dropped) {
  while (m) {
    conc__msg *next = m->next;
    m->run(l, m, dropped);
    m = next;
  }
}

/* ---- creation ------------------------------------------------------- */

static void io_free(conc__io *io) {
  if (io->epfd >= 0)
    close(io->epfd);
  if (io->remote) {
    /* Closed already by conc__io_destroy once published; only an
     * unpublished poller (creation failed or lost the race) gets here
     * open, and no other thread knows it. */
    if (!io->remote->closed) {
      if (io->remote->efd >= 0)
        close(io->remote->efd);
      io->remote->closed = true;
    }
    conc__remote_release(io->remote);
  }
  conc__free(io->fds);
  conc__free(io->heap);
  conc__free(io);
}

static int io_create(conc__io **out) {
  int err = CONC_ENOMEM;
  conc__io *io = conc__calloc(1, sizeof *io);
  if (!io)
    return CONC_ENOMEM;
  io->epfd = -1;
  io->remote = conc__calloc(1, sizeof *io->remote);
  if (!io->remote)
    goto fail;
  io->remote->efd = -1;
  pthread_mutex_init(&io->remote->mu, NULL);
  atomic_init(&io->remote->refs, 1);
  io->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (io->epfd < 0) {
    err = -errno;
    goto fail;
  }
  io->remote->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (io->remote->efd < 0) {
    err = -errno;
    goto fail;
  }
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = EFD_TAG};
  if (epoll_ctl(io->epfd, EPOLL_CTL_ADD, io->remote->efd, &ev) != 0) {
    err = -errno;
    goto fail;
  }
  *out = io;
  return 0;
fail:
  io_free(io);
  return err;
}

int conc__io_get(conc_loop *l, conc__io **out) {
  _Atomic(conc__io *) *slot = conc__loop_io_slot(l);
  /* acquire: pairs with the release of the CAS below. */
  conc__io *io = atomic_load_explicit(slot, memory_order_acquire);
  if (CONC_LIKELY(io != NULL)) {
    *out = io;
    return 0;
  }
  int err = io_create(&io);
  if (err)
    return err;
  conc__io *expected = NULL;
  if (!atomic_compare_exchange_strong_explicit(slot, &expected, io,
                                               memory_order_acq_rel,
                                               memory_order_acquire)) {
    io_free(io); /* another thread won */
    io = expected;
  }
  *out = io;
  return 0;
}

/* ---- fd table ------------------------------------------------------- */

static int fd_reserve(conc__io *io, int fd) {
  if ((size_t)fd < io->nfds)
    return 0;
  size_t n = io->nfds ? io->nfds : 64;
  while (n <= (size_t)fd)
    n *= 2;
  fdrec *t = conc__realloc(io->fds, n * sizeof *t);
  if (!t)
    return CONC_ENOMEM;
  memset(t + io->nfds, 0, (n - io->nfds) * sizeof *t);
  io->fds = t;
  io->nfds = n;
  return 0;
}

static unsigned fd_wanted(const fdrec *r) {
  return (r->rd ? CONC_POLL_IN : 0) | (r->wr ? CONC_POLL_OUT : 0) |
         r->watch_ev;
}

/* Make fd's epoll registration exactly `want` (0: none). */
static int fd_set_reg(conc__io *io, int fd, unsigned want) {
  fdrec *r = &io->fds[fd];
  if (r->reg == want)
    return 0;
  struct epoll_event ev = {.events = want, .data.u64 = (uint64_t)fd};
  int op = want == 0 ? EPOLL_CTL_DEL : r->reg ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
  int rc = epoll_ctl(io->epfd, op, fd, &ev);
  if (rc != 0 && errno == ENOENT && op == EPOLL_CTL_MOD)
    rc = epoll_ctl(io->epfd, op = EPOLL_CTL_ADD, fd, &ev); /* closed, reused */
  else if (rc != 0 && errno == EEXIST && op == EPOLL_CTL_ADD)
    rc = epoll_ctl(io->epfd, op = EPOLL_CTL_MOD, fd, &ev);
  if (rc != 0) {
    int e = errno;
    if (op == EPOLL_CTL_DEL) { /* gone already (closed): nothing left */
      r->reg = 0;
      return 0;
    }
    return e == EPERM ? CONC_ENOTSUP : -e;
  }
  r->reg = want;
  return 0;
}

/* Grow the registration to cover what fd's waiters and watch want. */
static int fd_need(conc__io *io, int fd) {
  fdrec *r = &io->fds[fd];
  unsigned want = fd_wanted(r);
  if ((want & ~r->reg) == 0)
    return 0;
  return fd_set_reg(io, fd, want | r->reg);
}

/* ---- coroutine waits ------------------------------------------------ */

bool conc__io_drained(conc_coro *c, int fd) {
  conc__io *io = atomic_load_explicit(conc__loop_io_slot(conc__coro_loop(c)),
                                      memory_order_acquire);
  if (!io || (size_t)fd >= io->nfds)
    return false;
  const fdrec *r = &io->fds[fd];
  return r->drained && (r->reg & CONC_POLL_IN);
}

void conc__io_set_drained(conc_coro *c, int fd) {
  conc__io *io = atomic_load_explicit(conc__loop_io_slot(conc__coro_loop(c)),
                                      memory_order_acquire);
  if (io && (size_t)fd < io->nfds && (io->fds[fd].reg & CONC_POLL_IN))
    io->fds[fd].drained = true;
}

void conc__io_wait_begin(conc__io *io) { io->waits++; }
void conc__io_wait_end(conc__io *io) { io->waits--; }

/* A zero-timeout wait: ask poll(2) directly. */
static int poll_now(int fd, unsigned events) {
  struct pollfd p = {.fd = fd, .events = (short)events};
  int rc;
  do
    rc = poll(&p, 1, 0);
  while (rc < 0 && errno == EINTR);
  if (rc < 0)
    return -errno;
  if (p.revents & POLLNVAL)
    return CONC_EBADF;
  unsigned got = (unsigned)p.revents & (CONC_POLL_IN | CONC_POLL_OUT |
                                        CONC_POLL_ERR | CONC_POLL_HUP);
  return got ? (int)got : CONC_ETIMEDOUT;
}

int conc__io_wait_fd(conc_coro *c, int fd, unsigned events, double deadline) {
  int err = conc__coro_take_cancel(c);
  if (err)
    return err;
  conc__io *io;
  err = conc__io_get(conc__coro_loop(c), &io);
  if (err)
    return err;
  err = fd_reserve(io, fd);
  if (err)
    return err;
  fdrec *r = &io->fds[fd];
  if (((events & CONC_POLL_IN) && r->rd) || ((events & CONC_POLL_OUT) && r->wr))
    return CONC_EBUSY;
  if (deadline <= conc_now())
    return poll_now(fd, events);
  if (events & CONC_POLL_IN)
    r->rd = c;
  if (events & CONC_POLL_OUT)
    r->wr = c;
  err = fd_need(io, fd);
  if (!err) {
    io->waits++;
    err = conc__coro_park(c, deadline);
    io->waits--;
  }
  r = &io->fds[fd]; /* the table may have grown meanwhile */
  if (r->rd == c)
    r->rd = NULL;
  if (r->wr == c)
    r->wr = NULL;
  return err;
}

int conc_coro_wait_fd_until(int fd, unsigned events, double deadline) {
  conc_coro *c = conc__coro_current();
  if (!c)
    return CONC_EPERM;
  events &= CONC_POLL_IN | CONC_POLL_OUT;
  if (fd < 0 || events == 0 || isnan(deadline))
    return CONC_EINVAL;
  return conc__io_wait_fd(c, fd, events, deadline);
}

int conc_coro_wait_fd(int fd, unsigned events, double timeout) {
  return conc_coro_wait_fd_until(fd, events, conc__timeout_deadline(timeout));
}

/* ---- watches -------------------------------------------------------- */

static int loop_io(conc_loop *l, conc__io **io) {
  if (!l)
    return CONC_EINVAL;
  if (!conc__loop_owned(l))
    return CONC_EPERM;
  return conc__io_get(l, io);
}

int conc_loop_watch(conc_loop *l, int fd, unsigned events, conc_watch_fn cb,
                    void *arg) {
  events &= CONC_POLL_IN | CONC_POLL_OUT;
  if (!l || !cb || fd < 0 || events == 0)
    return CONC_EINVAL;
  conc__io *io;
  int err = loop_io(l, &io);
  if (!err)
    err = fd_reserve(io, fd);
  if (err)
    return err;
  fdrec *r = &io->fds[fd];
  unsigned old_ev = r->watch_ev;
  conc_watch_fn old_cb = r->cb;
  void *old_arg = r->arg;
  r->watch_ev = events;
  r->cb = cb;
  r->arg = arg;
  err = fd_need(io, fd);
  if (err) {
    r->watch_ev = old_ev;
    r->cb = old_cb;
    r->arg = old_arg;
    return err;
  }
  if (!old_ev)
    io->watches++;
  return 0;
}

int conc_loop_unwatch(conc_loop *l, int fd) {
  if (!l || fd < 0)
    return CONC_EINVAL;
  conc__io *io;
  int err = loop_io(l, &io);
  if (err)
    return err;
  if ((size_t)fd >= io->nfds || !io->fds[fd].watch_ev)
    return CONC_ENOENT;
  fdrec *r = &io->fds[fd];
  r->watch_ev = 0;
  r->cb = NULL;
  r->arg = NULL;
  io->watches--;
  /* With nobody else on the fd, drop the registration now: callers such
   * as libcurl close the fd right after removing the watch, and a stale
   * registration would hide a new fd of the same number from epoll.  (A
   * waiting coroutine keeps its part; the rest shrinks lazily.) */
  if (fd_wanted(r) == 0)
    fd_set_reg(io, fd, 0);
  return 0;
}

/* On the loop thread: wake fd's waiters with CONC_ECLOSED, drop its watch
 * and its registration (before the caller closes it).  */
static void fd_forget(conc__io *io, int fd) {
  if ((size_t)fd >= io->nfds)
    return;
  fdrec *r = &io->fds[fd];
  conc_coro *rd = r->rd, *wr = r->wr;
  r->rd = r->wr = NULL;
  r->drained = false;
  if (rd && conc__coro_parked(rd))
    conc__coro_unpark(rd, CONC_ECLOSED);
  if (wr && wr != rd && conc__coro_parked(wr))
    conc__coro_unpark(wr, CONC_ECLOSED);
  if (r->watch_ev)
    io->watches--;
  r->watch_ev = 0;
  r->cb = NULL;
  fd_set_reg(io, fd, 0);
}

void conc__io_fd_new(int fd) {
  conc_loop *l = conc__loop_current();
  if (!l || fd < 0)
    return;
  conc__io *io =
      atomic_load_explicit(conc__loop_io_slot(l), memory_order_acquire);
  if (!io || (size_t)fd >= io->nfds)
    return;
  /* A new file cannot be registered yet: whatever the table says comes
   * from an fd of the same number closed behind conc's back. */
  io->fds[fd].reg = 0;
  io->fds[fd].drained = false;
}

int conc_sock_close(int fd) {
  if (fd < 0)
    return CONC_EINVAL;
  conc_loop *l = conc__loop_current();
  if (l) {
    conc__io *io =
        atomic_load_explicit(conc__loop_io_slot(l), memory_order_acquire);
    if (io)
      fd_forget(io, fd);
  }
  /* Linux frees the fd even when close reports EINTR: never retry. */
  if (close(fd) != 0 && errno != EINTR)
    return -errno;
  return 0;
}

/* ---- callback timers ------------------------------------------------ */

static bool t_less(const conc_loop_timer *a, const conc_loop_timer *b) {
  return a->deadline < b->deadline ||
         (a->deadline == b->deadline && a->seq < b->seq);
}

static void t_set(conc__io *io, size_t i, conc_loop_timer *t) {
  io->heap[i] = t;
  t->heap_idx = i;
}

static void t_up(conc__io *io, size_t i) {
  conc_loop_timer *t = io->heap[i];
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!t_less(t, io->heap[p]))
      break;
    t_set(io, i, io->heap[p]);
    i = p;
  }
  t_set(io, i, t);
}

static void t_down(conc__io *io, size_t i) {
  conc_loop_timer *t = io->heap[i];
  for (;;) {
    size_t k = 2 * i + 1;
    if (k >= io->heap_len)
      break;
    if (k + 1 < io->heap_len && t_less(io->heap[k + 1], io->heap[k]))
      k++;
    if (!t_less(io->heap[k], t))
      break;
    t_set(io, i, io->heap[k]);
    i = k;
  }
  t_set(io, i, t);
}

static void t_remove(conc__io *io, conc_loop_timer *t) {
  size_t i = t->heap_idx;
  CONC_ASSERT(i < io->heap_len && io->heap[i] == t);
  t->heap_idx = NO_HEAP;
  conc_loop_timer *last = io->heap[--io->heap_len];
  if (i == io->heap_len)
    return;
  t_set(io, i, last);
  t_up(io, i);
  t_down(io, last->heap_idx);
}

int conc_loop_timer_create(conc_loop *l, conc_timer_fn cb, void *arg,
                           conc_loop_timer **out) {
  if (!cb || !out)
    return CONC_EINVAL;
  conc__io *io;
  int err = loop_io(l, &io);
  if (err)
    return err;
  conc_loop_timer *t = conc__calloc(1, sizeof *t);
  if (!t)
    return CONC_ENOMEM;
  t->io = io;
  t->cb = cb;
  t->arg = arg;
  t->heap_idx = NO_HEAP;
  io->timers++;
  *out = t;
  return 0;
}

int conc_loop_timer_start(conc_loop_timer *t, double timeout) {
  if (!t || timeout < 0 || isnan(timeout))
    return CONC_EINVAL;
  conc__io *io = t->io;
  if (t->heap_idx == NO_HEAP && io->heap_len == io->heap_cap) {
    size_t cap = io->heap_cap ? 2 * io->heap_cap : 16;
    conc_loop_timer **h = conc__realloc(io->heap, cap * sizeof *h);
    if (!h)
      return CONC_ENOMEM;
    io->heap = h;
    io->heap_cap = cap;
  }
  if (t->heap_idx != NO_HEAP)
    t_remove(io, t);
  t->deadline = conc_now() + timeout;
  t->seq = io->seq++;
  t_set(io, io->heap_len++, t);
  t_up(io, t->heap_idx);
  return 0;
}

int conc_loop_timer_stop(conc_loop_timer *t) {
  if (!t)
    return CONC_EINVAL;
  if (t->heap_idx != NO_HEAP)
    t_remove(t->io, t);
  return 0;
}

bool conc_loop_timer_active(const conc_loop_timer *t) {
  return t && t->heap_idx != NO_HEAP;
}

void conc_loop_timer_destroy(conc_loop_timer *t) {
  if (!t)
    return;
  conc_loop_timer_stop(t);
  t->io->timers--;
  conc__free(t);
}

/* ---- holds ---------------------------------------------------------- */

int conc_loop_ref(conc_loop *l) {
  if (!l)
    return CONC_EINVAL;
  conc__io *io;
  int err = conc__io_get(l, &io);
  if (err)
    return err;
  /* relaxed: the loop re-reads holds on every pass; no data rides on it. */
  atomic_fetch_add_explicit(&io->holds, 1, memory_order_relaxed);
  return 0;
}

int conc_loop_unref(conc_loop *l) {
  if (!l)
    return CONC_EINVAL;
  conc__io *io;
  int err = conc__io_get(l, &io);
  if (err)
    return err;
  int h = atomic_load_explicit(&io->holds, memory_order_relaxed);
  do {
    if (h <= 0)
      return CONC_EINVAL;
  } while (!atomic_compare_exchange_weak_explicit(
      &io->holds, &h, h - 1, memory_order_relaxed, memory_order_relaxed));
  if (h == 1) { /* wake the loop so that it sees the last hold gone */
    pthread_mutex_lock(&io->remote->mu);
    remote_signal_locked(io->remote);
    pthread_mutex_unlock(&io->remote->mu);
  }
  return 0;
}

/* ---- cross-thread spawn --------------------------------------------- */

typedef struct spawn_msg {
  conc__msg m;
  conc_coro_fn fn;
  void *arg;
  conc_future *f;
} spawn_msg;

static int remote_entry(void *arg, void **result) {
  spawn_msg *s = arg;
  void *res = NULL;
  int err = s->fn(s->arg, &res);
  if (err == 0)
    conc_future_set_result(s->f, res);
  else
    conc_future_set_error(s->f, err, "coroutine failed: %s",
                          conc_strerror(err));
  conc_future_release(s->f);
  conc__free(s);
  *result = res;
  return err;
}

static void spawn_run(conc_loop *l, conc__msg *m, bool dropped) {
  spawn_msg *s = (spawn_msg *)m;
  conc__io *io =
      atomic_load_explicit(conc__loop_io_slot(l), memory_order_acquire);
  /* refuse_spawn is written by this thread only (destroy): no lock. */
  if (dropped || io->remote->refuse_spawn) {
    conc_future_cancel(s->f);
  } else if (conc_future_set_running(s->f) == 0) {
    int err = conc_coro_spawn(l, remote_entry, s, NULL, NULL);
    if (err == 0)
      return; /* remote_entry owns s now */
    conc_future_set_error(s->f, err, "spawn failed: %s", conc_strerror(err));
  }
  conc_future_release(s->f);
  conc__free(s);
}

int conc_loop_spawn_threadsafe(conc_loop *l, conc_coro_fn fn, void *arg,
                               conc_future **out) {
  if (!l || !fn || !out)
    return CONC_EINVAL;
  if (conc__loop_owned(l) && conc__loop_closing(l))
    return CONC_ECLOSED; /* from one of its coroutines, during destroy */
  conc__io *io;
  int err = conc__io_get(l, &io);
  if (err)
    return err;
  spawn_msg *s = conc__malloc(sizeof *s);
  if (!s)
    return CONC_ENOMEM;
  err = conc_future_create(&s->f);
  if (err) {
    conc__free(s);
    return err;
  }
  s->m.run = spawn_run;
  s->fn = fn;
  s->arg = arg;
  *out = conc_future_retain(s->f);
  conc__remote *r = io->remote;
  pthread_mutex_lock(&r->mu);
  if (r->refuse_spawn || r->closed) {
    pthread_mutex_unlock(&r->mu);
    conc_future_release(s->f);
    conc_future_release(s->f);
    conc__free(s);
    *out = NULL;
    return CONC_ECLOSED;
  }
  s->m.next = NULL;
  if (r->tail)
    r->tail->next = &s->m;
  else
    r->head = &s->m;
  r->tail = &s->m;
  remote_signal_locked(r);
  pthread_mutex_unlock(&r->mu);
  return 0;
}

/* ---- the scheduler's hooks ------------------------------------------ */

bool conc__io_held(conc__io *io, bool closing) {
  /* Queued messages count too: a loop run with nothing but a pending
   * cross-thread spawn starts that coroutine before it returns. */
  return !closing &&
         (atomic_load_explicit(&io->holds, memory_order_relaxed) > 0 ||
          atomic_load_explicit(&io->remote->signalled, memory_order_relaxed));
}

bool conc__io_busy(conc__io *io, bool closing) {
  return io->waits > 0 || io->watches > 0 || io->heap_len > 0 ||
         conc__io_held(io, closing) ||
         atomic_load_explicit(&io->remote->signalled, memory_order_relaxed);
  /* (signalled is repeated for the closing case: wake-ups of coroutines
   * being drained must still be delivered.) */
}

int conc__io_can_destroy(conc__io *io) {
  return io->timers > 0 ? CONC_EBUSY : 0;
}

void conc__io_closing(conc__io *io) {
  pthread_mutex_lock(&io->remote->mu);
  io->remote->refuse_spawn = true;
  pthread_mutex_unlock(&io->remote->mu);
}

void conc__io_destroy(conc_loop *l, conc__io *io) {
  conc__remote *r = io->remote;
  pthread_mutex_lock(&r->mu);
  r->closed = true;
  conc__msg *m = r->head;
  r->head = r->tail = NULL;
  close(r->efd);
  r->efd = -1;
  pthread_mutex_unlock(&r->mu);
  run_msgs(l, m, true);
  io_free(io);
}

/* One batch of epoll events: wake waiters, run watch callbacks. */
static void dispatch(conc_loop *l, conc__io *io, const struct epoll_event *e,
                     int n) {
  conc__msg *msgs = NULL;
  for (int i = 0; i < n; i++) {
    if (e[i].data.u64 == EFD_TAG) {
      conc__msg *m = remote_take(io->remote);
      if (m) { /* run after this batch, in order */
        conc__msg *t = m;
        while (t->next)
          t = t->next;
        t->next = msgs;
        msgs = m;
      }
      continue;
    }
    int fd = (int)e[i].data.u64;
    if ((size_t)fd >= io->nfds)
      continue;
    unsigned ev = e[i].events & (CONC_POLL_IN | CONC_POLL_OUT |
                                 CONC_POLL_ERR | CONC_POLL_HUP);
    const unsigned eh = CONC_POLL_ERR | CONC_POLL_HUP;
    fdrec *r = &io->fds[fd];
    if (ev & (CONC_POLL_IN | eh))
      r->drained = false;
    unsigned wanted = fd_wanted(r); /* before the slots are cleared */
    conc_coro *rd = r->rd, *wr = r->wr;
    if (rd && (ev & (CONC_POLL_IN | eh)) && conc__coro_parked(rd)) {
      unsigned mine = CONC_POLL_IN | eh | (wr == rd ? CONC_POLL_OUT : 0);
      r->rd = NULL;
      if (wr == rd)
        r->wr = wr = NULL;
      conc__coro_unpark(rd, (int)(ev & mine));
    }
    if (wr && (ev & (CONC_POLL_OUT | eh)) && conc__coro_parked(wr)) {
      r->wr = NULL;
      conc__coro_unpark(wr, (int)(ev & (CONC_POLL_OUT | eh)));
    }
    if (r->watch_ev && (ev & (r->watch_ev | eh)))
      r->cb(l, fd, ev & (r->watch_ev | eh), r->arg);
    /* An event nobody wanted when it came: shrink the registration to
     * what is wanted now.  (Waiters just woken keep theirs: they usually
     * wait again soon, and then no epoll_ctl is needed.) */
    if (ev & ~(wanted | (wanted ? eh : 0))) {
      r = &io->fds[fd]; /* the callback may have grown the table */
      fd_set_reg(io, fd, fd_wanted(r));
    }
  }
  run_msgs(l, msgs, false);
}

static void run_timers(conc__io *io) {
  if (io->heap_len == 0)
    return;
  uint64_t seq_end = io->seq;
  double now = conc_now();
  while (io->heap_len > 0 && io->heap[0]->deadline <= now &&
         io->heap[0]->seq < seq_end) {
    conc_loop_timer *t = io->heap[0];
    t_remove(io, t);
    t->cb(t, t->arg);
  }
}

void conc__io_poll(conc_loop *l, conc__io *io, double deadline) {
  if (io->heap_len > 0 && io->heap[0]->deadline < deadline)
    deadline = io->heap[0]->deadline;
  struct timespec ts, *tp = NULL;
  if (deadline != INFINITY) {
    double rel = deadline == -INFINITY ? 0 : deadline - conc_now();
    if (rel < 0)
      rel = 0;
    double s = floor(rel);
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((rel - s) * 1e9);
    if (ts.tv_nsec >= 1000000000L)
      ts.tv_nsec = 999999999L;
    tp = &ts;
  }
  struct epoll_event ev[EV_BATCH];
  int n = epoll_pwait2(io->epfd, ev, EV_BATCH, tp, NULL);
  if (n < 0 && errno == ENOSYS) { /* kernel before 5.11: ms resolution */
    int ms = -1;
    if (tp)
      ms = (int)ceil(fmin((double)ts.tv_sec * 1e3 + ts.tv_nsec / 1e6, 1e9));
    n = epoll_wait(io->epfd, ev, EV_BATCH, ms);
  }
  if (n > 0)
    dispatch(l, io, ev, n);
  else
    CONC_MUST(n == 0 || errno == EINTR);
  run_timers(io);
}
