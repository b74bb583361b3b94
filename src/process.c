/* process.c - child processes running a function, tracked by pidfd.
 *
 * DESIGN
 *
 * start   fork() (so pthread_atfork handlers run: conc's pools hold their
 *         locks across it), then pidfd_open(pid) in the parent.  The pid
 *         cannot be recycled in between: nobody but us reaps it (no
 *         SIGCHLD handler, no waitpid(-1) in conc).  The child runs
 *         fn(arg), flushes stdio and _exits with the result.
 * join    poll(pidfd, POLLIN) outside the object's lock, then, under it,
 *         waitid(P_PIDFD, WEXITED | WNOHANG) reaps and records the status;
 *         the pidfd (and a daemon's watch pipe) are closed at reaping.
 *         Reaping happens under the lock, so concurrent join / is_alive /
 *         exitcode / kill calls never race on a closed descriptor.
 * daemon  a pipe per daemon child.  The parent keeps the write end (and
 *         lists it in a global registry); the child closes every listed
 *         write end (other daemons' and its own), makes its read end
 *         O_ASYNC with F_SETOWN = itself and F_SETSIG = SIGKILL, then
 *         reads it once without blocking to catch a parent that died
 *         before the set-up.  When the last write end closes - the parent
 *         exited or was killed, whatever thread forked - the kernel's
 *         pipe_release sends the fasync signal, SIGKILL, to the child.
 *
 * task    conc_process_start_task: CONC_START_FORK runs the task in a
 *         fork child as above; otherwise the process's own fork server
 *         (forkserver.c, started on first use) forks the child, which is
 *         the server's: we hold its pidfd (end, signals) and take its wait
 *         status from the server's EXITED report (ps_* below).
 *
 * Locks: the registry mutex (held across fork so the child sees a
 * consistent list), the fork server's ps_mu, and a private conc_lock per
 * conc_process; order: a process lock, ps_mu, the registry mutex.
 *
 * States of a conc_process: 0 not started (zero storage), RUNNING, REAPED.
 *
 * conc_pipe_open / conc_conn_*: see the pipe section at the end.
 */
#include "internal.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conc/process.h"
#include "conc/sync.h"
#include "conc/task.h"
#include "fsrv.h"
#include "pchan.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

enum { ST_NONE = 0, ST_RUNNING = 1, ST_REAPED = 2 };

struct proc_priv {
  conc_lock lock; /* private; serialises calls on this process */
  int state;
  int pid;
  int pidfd;
  int watch_w; /* daemon: write end of the watch pipe, else -1 */
  int code;    /* after reaping: exit code, or -signal */
  /* started by the fork server (its child, not ours): the server's
   * generation, else 0 */
  uint32_t srv_gen;
};
_Static_assert(sizeof(struct proc_priv) <= sizeof(conc_process),
               "conc_process size");
_Static_assert(_Alignof(struct proc_priv) <= _Alignof(conc_process),
               "conc_process align");

static inline struct proc_priv *priv(conc_process *p) {
  return (struct proc_priv *)(void *)p;
}

/* ---- registry of daemon watch pipes' write ends ---- */

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static int *reg_fds;
static size_t reg_n, reg_cap;

/* Under reg_mu. */
static int reg_add(int fd) {
  if (reg_n == reg_cap) {
    size_t cap = reg_cap ? 2 * reg_cap : 8;
    int *n = conc__realloc(reg_fds, cap * sizeof *n);
    if (!n)
      return CONC_ENOMEM;
    reg_fds = n;
    reg_cap = cap;
  }
  reg_fds[reg_n++] = fd;
  return 0;
}

static void reg_remove(int fd) {
  pthread_mutex_lock(&reg_mu);
  for (size_t i = 0; i < reg_n; i++) {
    if (reg_fds[i] == fd) {
      reg_fds[i] = reg_fds[--reg_n];
      break;
    }
  }
  if (reg_n == 0) { /* give the memory back: leak checks see none */
    conc__free(reg_fds);
    reg_fds = NULL;
    reg_cap = 0;
  }
  pthread_mutex_unlock(&reg_mu);
}

int conc__daemon_fd_add(int fd) {
  pthread_mutex_lock(&reg_mu);
  int rc = reg_add(fd);
  pthread_mutex_unlock(&reg_mu);
  return rc;
}

void conc__daemon_fd_remove(int fd) { reg_remove(fd); }

/* ---- child side ---- */

_Noreturn static void child_main(conc_process_fn fn, void *arg, int watch_r,
                                 int watch_w) {
  /* Every daemon's write end belongs to the parent alone.  reg_fds is the
   * parent's copy: leave the memory alone (the child ends with _exit). */
  for (size_t i = 0; i < reg_n; i++)
    close(reg_fds[i]);
  if (watch_r >= 0) {
    close(watch_w);
    if (conc__watch_parent(watch_r) != 0)
      kill(getpid(), SIGKILL); /* set-up failed, or the parent is gone */
  }
  int rc = fn(arg);
  fflush(NULL);
  _exit(rc & 255);
}

/* ---- the fork server of conc_process_start_task ----
 *
 * One per process, started on first use under ps_mu (conc__fsrv_start:
 * the program run again, stopped in conc_init).  A task child is the
 * server's child, not ours: the server reaps it and reports EXITED (pid,
 * wait status), which waits in ps_ex until the conc_process holding that
 * pid claims it.  The pidfd the server sends tells us when the child has
 * ended (POLLIN), then the status follows within moments.  Each server
 * incarnation has a generation; children of an earlier one (the server
 * died, or we are a fork child of the process that started it) end with
 * status unknown (255).  Lock order: a process's lock, ps_mu, reg_mu. */

static void reaped(struct proc_priv *pp, int code);
static int status_code(int status);

static pthread_mutex_t ps_mu = PTHREAD_MUTEX_INITIALIZER;
static conc__fsrv ps_srv;
static bool ps_up;
static int ps_owner;     /* getpid() of the process that started it */
static uint32_t ps_gen;  /* incarnations, never 0 once started */
static uint32_t ps_cookie;
static unsigned ps_live; /* children of this incarnation not claimed */
struct ps_exit {
  int pid, status;
};
static struct ps_exit *ps_ex;
static size_t ps_nex, ps_capex;

static void ps_table_clear(void) {
  conc__free(ps_ex);
  ps_ex = NULL;
  ps_nex = ps_capex = 0;
}

/* Under ps_mu: the server is gone (or not ours): drop it. */
static void ps_down(void) {
  if (ps_owner == (int)getpid()) {
    conc__fsrv_close(&ps_srv); /* closes the socket, reaps the server */
  } else {
    /* a fork child's copies: the server belongs to our parent; the
     * watch pipe's write end is left alone (children of conc_process_start
     * have closed it already, see child_main) */
    close(ps_srv.ctl);
    if (ps_srv.pidfd >= 0)
      close(ps_srv.pidfd);
    conc__daemon_fd_remove(ps_srv.death_w);
  }
  ps_up = false;
  ps_live = 0;
  ps_table_clear();
}

/* fork(): the child starts with no server of its own (ps_ensure starts
 * one when needed).  It closes its copies of the parent's server's
 * socket and pidfd - harmless if another thread was closing them: nothing
 * else has run in the child yet - and forgets the rest (the status table
 * may be mid-update: left, not freed).  ps_mu may have been held by
 * another thread: it is made anew.  The parent's server keeps its
 * watch-pipe write end registered (children of conc_process_start close
 * it).  No prepare handler: fork never waits for a server reply. */
static void ps_atfork_child(void) {
  pthread_mutex_init(&ps_mu, NULL);
  if (ps_up) {
    close(ps_srv.ctl);
    if (ps_srv.pidfd >= 0)
      close(ps_srv.pidfd);
  }
  ps_up = false;
  ps_live = 0;
  ps_ex = NULL;
  ps_nex = ps_capex = 0;
}

__attribute__((constructor)) static void ps_init(void) {
  pthread_atfork(NULL, NULL, ps_atfork_child);
}

static int ps_ensure(void) {
  if (ps_up && ps_owner != (int)getpid())
    ps_down();
  if (ps_up)
    return 0;
  if (!conc__init_done())
    return CONC_EPERM;
  int rc = conc__fsrv_start(&ps_srv, 60);
  if (rc)
    return rc;
  ps_up = true;
  ps_owner = (int)getpid();
  if (++ps_gen == 0)
    ps_gen = 1;
  return 0;
}

/* Under ps_mu: handle one message from the server.  Returns the message's
 * kind with *m (an EXITED status is filed), 0 if none is waiting, or
 * CONC_EBROKEN when the server is gone (ps_down done). */
static int ps_recv(conc__fsrv_msg *m) {
  for (;;) {
    int r = conc__fsrv_recv(&ps_srv, m);
    if (r == 0)
      return 0;
    if (r == CONC_EPROTO)
      continue; /* not one of ours: skip it */
    if (r < 0) {
      ps_down();
      return CONC_EBROKEN;
    }
    if (m->kind == CONC__FS_EXITED) {
      if (m->fd >= 0)
        close(m->fd);
      if (ps_nex == ps_capex) {
        size_t cap = ps_capex ? 2 * ps_capex : 8;
        struct ps_exit *n = conc__realloc(ps_ex, cap * sizeof *n);
        if (!n)
          return CONC__FS_EXITED; /* lost: that child ends "unknown" */
        ps_ex = n;
        ps_capex = cap;
      }
      ps_ex[ps_nex++] = (struct ps_exit){(int)m->a, (int)m->b};
    }
    return (int)m->kind;
  }
}

/* Under ps_mu: wait at most until deadline for a message. */
static void ps_wait(double deadline) {
  double left = deadline - conc_now();
  if (left <= 0)
    return;
  struct pollfd pf = {ps_srv.ctl, POLLIN, 0};
  poll(&pf, 1, left > 1 ? 1000 : (int)ceil(left * 1e3));
}

/* Under ps_mu: the status the server reported for pid, if it did. */
static bool ps_claim(int pid, int *status) {
  for (size_t i = 0; i < ps_nex; i++) {
    if (ps_ex[i].pid == pid) {
      *status = ps_ex[i].status;
      ps_ex[i] = ps_ex[--ps_nex];
      if (ps_nex == 0)
        ps_table_clear();
      return true;
    }
  }
  return false;
}

/* Under pp->lock: has the server's child ended?  Then wait (moments) for
 * the server's report and reap. */
static bool try_reap_srv(struct proc_priv *pp) {
  struct pollfd pf = {pp->pidfd, POLLIN, 0};
  if (poll(&pf, 1, 0) <= 0)
    return false; /* still running */
  int status = 0;
  bool got = false;
  pthread_mutex_lock(&ps_mu);
  double deadline = conc_now() + 10;
  while (ps_up && ps_gen == pp->srv_gen && ps_owner == (int)getpid()) {
    conc__fsrv_msg m;
    int r;
    while ((r = ps_recv(&m)) > 0) {
      if (m.kind == CONC__FS_SPAWNED && m.fd >= 0)
        close(m.fd); /* a reply nobody waits for any more */
    }
    if ((got = ps_claim(pp->pid, &status)) || r < 0 || conc_now() >= deadline)
      break;
    ps_wait(deadline);
  }
  if (ps_up && ps_gen == pp->srv_gen && ps_live > 0)
    ps_live--;
  pthread_mutex_unlock(&ps_mu);
  reaped(pp, got ? status_code(status) : 255);
  return true;
}

/* Ask the server for a child running task `name` on in[0..len).  Under
 * ps_mu.  Returns 0 with *pid, *pidfd (may be -1), or an error. */
static int ps_spawn(const char *name, const void *in, size_t len, int watch_r,
                    int *pid, int *pidfd) {
  size_t nl = strlen(name);
  int mfd = memfd_create("conc-process-task", MFD_CLOEXEC);
  if (mfd < 0)
    return errno == ENOMEM ? CONC_ENOMEM : -errno;
  unsigned char hdr[4 + 64];
  conc__put32(hdr, (uint32_t)nl);
  memcpy(hdr + 4, name, nl);
  int rc = 0;
  const unsigned char *parts[2] = {hdr, in};
  size_t sizes[2] = {4 + nl, len};
  for (int k = 0; k < 2 && rc == 0; k++) {
    size_t done = 0;
    while (done < sizes[k]) {
      ssize_t w = write(mfd, parts[k] + done, sizes[k] - done);
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0) {
        rc = w < 0 && errno != ENOSPC ? -errno : CONC_ENOMEM;
        break;
      }
      done += (size_t)w;
    }
  }
  for (int attempt = 0; rc == 0; attempt++) {
    rc = ps_ensure();
    if (rc)
      break;
    uint32_t cookie = ++ps_cookie;
    int fds[2] = {mfd, watch_r};
    rc = conc__fsrv_send(&ps_srv, CONC__FS_TASK, cookie, 0, fds,
                         watch_r >= 0 ? 2 : 1);
    if (rc == CONC_ECLOSED || rc == -EPIPE || rc == -ECONNRESET) {
      ps_down();
      rc = attempt == 0 ? 0 : CONC_EBROKEN; /* once more, a new server */
      continue;
    }
    if (rc)
      break;
    double deadline = conc_now() + 60;
    for (;;) {
      conc__fsrv_msg m;
      int r = ps_recv(&m);
      if (r < 0) {
        rc = r;
        break;
      }
      if (r == CONC__FS_SPAWNED && m.a == cookie) {
        if (m.b == 0) {
          if (m.fd >= 0)
            close(m.fd);
          rc = m.c == ENOMEM ? CONC_ENOMEM : CONC_EAGAIN;
        } else {
          *pid = (int)m.b;
          *pidfd = m.fd;
          ps_live++;
        }
        break;
      }
      if (r == CONC__FS_SPAWNED && m.fd >= 0)
        close(m.fd); /* a reply nobody waits for any more */
      if (r == 0) {
        if (conc_now() >= deadline) {
          rc = CONC_EBROKEN;
          break;
        }
        ps_wait(deadline);
      }
    }
    break;
  }
  close(mfd);
  return rc;
}

void conc__process_shutdown(void) {
  pthread_mutex_lock(&ps_mu);
  if (ps_up && (ps_live == 0 || ps_owner != (int)getpid()))
    ps_down();
  pthread_mutex_unlock(&ps_mu);
}

/* ---- parent side ---- */

static int fork_start(conc_process *p, conc_process_fn fn, void *arg,
                      bool daemon);

void conc_process_options_init(conc_process_options *o) {
  if (!o)
    return;
  memset(o, 0, sizeof *o);
  o->size = sizeof *o;
}

int conc_process_start(conc_process *p, conc_process_fn fn, void *arg,
                       const conc_process_options *opts) {
  if (!p || !fn || (opts && (opts->size != sizeof *opts ||
                             (unsigned)opts->start_method > CONC_START_FORK)))
    return CONC_EINVAL;
  if (opts && opts->start_method == CONC_START_FORKSERVER)
    return CONC_ENOTSUP; /* a function pointer means nothing there */
  return fork_start(p, fn, arg, opts && opts->daemon);
}

static int fork_start(conc_process *p, conc_process_fn fn, void *arg,
                      bool daemon) {
  struct proc_priv *pp = priv(p);
  int st = pp->state;
  if (st != ST_NONE && st != ST_REAPED)
    return CONC_EINVAL;
  if (st == ST_NONE)
    memset(p, 0, sizeof *p);
  int fds[2] = {-1, -1};
  int r = 0;
  if (daemon && pipe2(fds, O_CLOEXEC) != 0)
    return errno == ENOMEM ? CONC_ENOMEM : -errno;

  /* Unflushed stdio buffers would be written twice: by us and by the
   * child's flush at its exit. */
  fflush(NULL);
  pthread_mutex_lock(&reg_mu);
  if (daemon) {
    r = reg_add(fds[1]);
    if (r != 0) {
      pthread_mutex_unlock(&reg_mu);
      goto fail;
    }
  }
  pid_t pid = fork();
  if (pid == 0) {
    pthread_mutex_unlock(&reg_mu);
    child_main(fn, arg, fds[0], fds[1]);
  }
  int err = errno;
  pthread_mutex_unlock(&reg_mu);
  if (pid < 0) {
    r = err == ENOMEM ? CONC_ENOMEM : CONC_EAGAIN;
    if (daemon)
      reg_remove(fds[1]);
    goto fail;
  }
  int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (pidfd < 0) {
    r = errno == ENOSYS ? CONC_ENOTSUP : -errno;
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
    if (daemon)
      reg_remove(fds[1]);
    goto fail;
  }
  /* make sure the descriptor does not leak into exec'd programs */
  fcntl(pidfd, F_SETFD, FD_CLOEXEC);
  if (daemon)
    close(fds[0]);
  conc_lock_init(&pp->lock, 0);
  pp->pid = pid;
  pp->pidfd = pidfd;
  pp->watch_w = daemon ? fds[1] : -1;
  pp->code = 0;
  pp->srv_gen = 0;
  pp->state = ST_RUNNING;
  return 0;
fail:
  if (daemon) {
    close(fds[0]);
    close(fds[1]);
  }
  return r;
}

/* The child of the fork start method for a task: run it here. */
struct task_arg {
  const char *name;
  const void *in;
  size_t len;
};
static int run_task_here(void *arg) {
  const struct task_arg *t = arg;
  return conc__task_process_run(t->name, t->in, t->len);
}

int conc_process_start_task(conc_process *p, const char *name, const void *in,
                            size_t len, const conc_process_options *opts) {
  if (!p || !name || (!in && len) ||
      (opts && (opts->size != sizeof *opts ||
                (unsigned)opts->start_method > CONC_START_FORK)))
    return CONC_EINVAL;
  conc_task_fn fn;
  int rc = conc_task_lookup(name, &fn);
  if (rc)
    return rc;
  struct proc_priv *pp = priv(p);
  int st = pp->state;
  if (st != ST_NONE && st != ST_REAPED)
    return CONC_EINVAL;
  bool daemon = opts && opts->daemon;
  if (opts && opts->start_method == CONC_START_FORK) {
    struct task_arg t = {name, in, len}; /* the child gets a copy */
    return fork_start(p, run_task_here, &t, daemon);
  }
  if (st == ST_NONE)
    memset(p, 0, sizeof *p);
  int wp[2] = {-1, -1};
  if (daemon) {
    if (pipe2(wp, O_CLOEXEC) != 0)
      return errno == ENOMEM ? CONC_ENOMEM : -errno;
    rc = conc__daemon_fd_add(wp[1]); /* our other children close it */
    if (rc) {
      close(wp[0]);
      close(wp[1]);
      return rc;
    }
  }
  int pid = 0, pidfd = -1;
  uint32_t gen = 0;
  pthread_mutex_lock(&ps_mu);
  rc = ps_spawn(name, in, len, wp[0], &pid, &pidfd);
  gen = ps_gen;
  pthread_mutex_unlock(&ps_mu);
  if (wp[0] >= 0)
    close(wp[0]);
  if (rc == 0 && pidfd < 0) {
    /* the server could not open one (no pidfds, or out of descriptors):
     * the child runs untracked; say so (no kill by pid: the server may
     * have reaped it and the pid be reused) */
    rc = CONC_EAGAIN;
    pthread_mutex_lock(&ps_mu);
    if (ps_up && ps_gen == gen && ps_live > 0)
      ps_live--;
    pthread_mutex_unlock(&ps_mu);
  }
  if (rc) {
    if (daemon) {
      conc__daemon_fd_remove(wp[1]);
      close(wp[1]);
    }
    return rc;
  }
  conc_lock_init(&pp->lock, 0);
  pp->pid = pid;
  pp->pidfd = pidfd;
  pp->watch_w = wp[1];
  pp->code = 0;
  pp->srv_gen = gen;
  pp->state = ST_RUNNING;
  return 0;
}

/* Under pp->lock, state RUNNING: the child has ended with exit code (or
 * -signal) code and is reaped: release what it held. */
static void reaped(struct proc_priv *pp, int code) {
  pp->code = code;
  close(pp->pidfd);
  pp->pidfd = -1;
  if (pp->watch_w >= 0) {
    reg_remove(pp->watch_w);
    close(pp->watch_w);
    pp->watch_w = -1;
  }
  pp->state = ST_REAPED;
}

static int status_code(int status) {
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  if (WIFSIGNALED(status))
    return -WTERMSIG(status);
  return 255;
}

static bool try_reap_srv(struct proc_priv *pp);

/* Under pp->lock, state RUNNING: reap if it ended.  True if reaped. */
static bool try_reap(struct proc_priv *pp) {
  if (pp->srv_gen)
    return try_reap_srv(pp);
  siginfo_t si;
  memset(&si, 0, sizeof si);
  int r = waitid((idtype_t)P_PIDFD, (id_t)pp->pidfd, &si, WEXITED | WNOHANG);
  if (r == 0 && si.si_pid == 0)
    return false; /* still running */
  int code;
  if (r == 0) {
    if (si.si_code == CLD_EXITED)
      code = si.si_status;
    else
      code = -si.si_status; /* CLD_KILLED, CLD_DUMPED */
  } else {
    /* ECHILD: someone else reaped it (SIGCHLD ignored, waitpid(-1)) */
    code = 255;
  }
  reaped(pp, code);
  return true;
}

static inline void lock(struct proc_priv *pp) {
  CONC_MUST(conc_lock_acquire(&pp->lock, -1) == 0);
}
static inline void unlock(struct proc_priv *pp) {
  CONC_MUST(conc_lock_release(&pp->lock) == 0);
}

/* Reap if ended; returns the state afterwards. */
static int refresh(struct proc_priv *pp) {
  lock(pp);
  if (pp->state == ST_RUNNING)
    try_reap(pp);
  int st = pp->state;
  unlock(pp);
  return st;
}

int conc_process_join(conc_process *p, double timeout) {
  if (!p)
    return CONC_EINVAL;
  struct proc_priv *pp = priv(p);
  double deadline = conc__deadline(timeout);
  for (;;) {
    lock(pp);
    int st = pp->state;
    if (st == ST_RUNNING && try_reap(pp))
      st = ST_REAPED;
    double now = conc_now();
    /* a private duplicate: another thread may reap and close pidfd while
     * we poll, and its number could be reused by an unrelated file */
    int fd = -1;
    if (st == ST_RUNNING && now < deadline)
      fd = fcntl(pp->pidfd, F_DUPFD_CLOEXEC, 0);
    unlock(pp);
    if (st == ST_NONE)
      return CONC_EINVAL;
    if (st == ST_REAPED)
      return 0;
    if (now >= deadline)
      return CONC_ETIMEDOUT;
    if (fd < 0) { /* no descriptor to spare (EMFILE): poll in slices */
      conc_sleep(0.01);
      continue;
    }
    int ms = -1;
    if (deadline != INFINITY) {
      double w = ceil((deadline - now) * 1e3);
      ms = w > 1e9 ? 1000000000 : (int)w;
    }
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    poll(&pf, 1, ms);
    close(fd);
  }
}

int conc_process_exitcode(conc_process *p, int *code) {
  if (!p || !code)
    return CONC_EINVAL;
  struct proc_priv *pp = priv(p);
  int st = refresh(pp);
  if (st == ST_NONE)
    return CONC_EINVAL;
  if (st == ST_RUNNING)
    return CONC_EAGAIN;
  *code = pp->code;
  return 0;
}

bool conc_process_is_alive(conc_process *p) {
  return p && refresh(priv(p)) == ST_RUNNING;
}

static int send_sig(conc_process *p, int sig) {
  if (!p)
    return CONC_EINVAL;
  struct proc_priv *pp = priv(p);
  lock(pp);
  int st = pp->state;
  if (st == ST_RUNNING)
    syscall(SYS_pidfd_send_signal, pp->pidfd, sig, NULL, 0); /* ESRCH: ended */
  unlock(pp);
  return st == ST_NONE ? CONC_EINVAL : 0;
}

int conc_process_terminate(conc_process *p) { return send_sig(p, SIGTERM); }

int conc_process_kill(conc_process *p) { return send_sig(p, SIGKILL); }

int conc_process_pid(const conc_process *p) {
  if (!p)
    return 0;
  const struct proc_priv *pp = (const struct proc_priv *)(const void *)p;
  return pp->state == ST_NONE ? 0 : pp->pid;
}

/* ---- pipe ----
 *
 * A socketpair(AF_UNIX, SOCK_STREAM).  Frame: 8-byte length (host order:
 * both ends are on one machine) + payload.  send() always passes
 * MSG_NOSIGNAL, so a closed peer gives EPIPE, never SIGPIPE.  The storage
 * holds fd + 1 so that zero-filled means closed. */


struct conn_priv {
  int fd1;
};
_Static_assert(sizeof(struct conn_priv) <= sizeof(conc_conn), "conc_conn");

static inline int conn_fd(const conc_conn *c) {
  return c ? ((const struct conn_priv *)(const void *)c)->fd1 - 1 : -1;
}

int conc_pipe_open(conc_conn *a, conc_conn *b) {
  if (!a || !b)
    return CONC_EINVAL;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return -errno;
  memset(a, 0, sizeof *a);
  memset(b, 0, sizeof *b);
  ((struct conn_priv *)(void *)a)->fd1 = sv[0] + 1;
  ((struct conn_priv *)(void *)b)->fd1 = sv[1] + 1;
  return 0;
}

int conc_conn_close(conc_conn *c) {
  int fd = conn_fd(c);
  if (fd < 0)
    return CONC_EINVAL;
  close(fd);
  memset(c, 0, sizeof *c);
  return 0;
}

/* Wait until fd is ready for events or the deadline passes.  Returns 0,
 * CONC_ETIMEDOUT. */
static int wait_fd(int fd, short events, double deadline) {
  for (;;) {
    double now = conc_now();
    if (now >= deadline && deadline != INFINITY) {
      struct pollfd pf = {.fd = fd, .events = events};
      return poll(&pf, 1, 0) > 0 ? 0 : CONC_ETIMEDOUT;
    }
    int ms = -1;
    if (deadline != INFINITY) {
      double w = ceil((deadline - now) * 1e3);
      ms = w > 1e9 ? 1000000000 : (int)w;
    }
    struct pollfd pf = {.fd = fd, .events = events};
    int r = poll(&pf, 1, ms);
    if (r > 0)
      return 0; /* ready, or POLLHUP/POLLERR: the I/O call tells which */
    if (r < 0 && errno != EINTR)
      return -errno;
  }
}

static int send_all(int fd, const unsigned char *b, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return errno == EPIPE || errno == ECONNRESET ? CONC_ECLOSED : -errno;
    }
    b += w;
    n -= (size_t)w;
  }
  return 0;
}

int conc_conn_send(conc_conn *c, const void *msg, size_t len,
                   double timeout) {
  if (!c || (!msg && len))
    return CONC_EINVAL;
  int fd = conn_fd(c);
  if (fd < 0)
    return CONC_ECLOSED;
  int r = wait_fd(fd, POLLOUT, conc__deadline(timeout));
  if (r != 0)
    return r;
  uint64_t hdr = len;
  r = send_all(fd, (const unsigned char *)&hdr, sizeof hdr);
  if (r == 0 && len)
    r = send_all(fd, msg, len);
  return r;
}

/* Read exactly n bytes (dst NULL: discard).  Returns 0, CONC_ECLOSED. */
static int recv_all(int fd, unsigned char *dst, size_t n) {
  unsigned char sink[4096];
  while (n > 0) {
    size_t want = dst ? n : (n < sizeof sink ? n : sizeof sink);
    ssize_t r = recv(fd, dst ? dst : sink, want, 0);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return errno == ECONNRESET ? CONC_ECLOSED : -errno;
    if (r == 0)
      return CONC_ECLOSED;
    if (dst)
      dst += r;
    n -= (size_t)r;
  }
  return 0;
}

int conc_conn_recv(conc_conn *c, void **msg, size_t *len, double timeout) {
  int fd = conn_fd(c);
  if (!c || !msg || !len)
    return CONC_EINVAL;
  if (fd < 0)
    return CONC_ECLOSED;
  int r = wait_fd(fd, POLLIN, conc__deadline(timeout));
  if (r != 0)
    return r;
  uint64_t hdr;
  r = recv_all(fd, (unsigned char *)&hdr, sizeof hdr);
  if (r != 0)
    return r;
  if (hdr > (uint64_t)SIZE_MAX / 2)
    return CONC_ERANGE; /* not a conc peer */
  unsigned char *b = conc__malloc(hdr ? (size_t)hdr : 1);
  r = recv_all(fd, b, (size_t)hdr); /* b NULL: read and drop */
  if (r != 0 || !b) {
    conc__free(b);
    return r != 0 ? r : CONC_ENOMEM;
  }
  *msg = b;
  *len = (size_t)hdr;
  return 0;
}
