/* forkserver.c - conc_init, the fork server, and starting one.
 *
 * DESIGN
 * A pool starts its server with posix_spawn("/proc/self/exe") (vfork-like,
 * safe from a multi-threaded caller), passing the control socket as fd 3,
 * the read end of a parent-watch pipe as fd 4 and CONC__FORKSERVER=3,4 in
 * the environment, and no other descriptor.  The program's main calls conc_init, which sees the
 * variable, removes it, and never returns: the process arms the watch
 * pipe (SIGKILL when the caller dies), says HELLO with its registry hash,
 * then forks a worker per SPAWN request and reports each child's exit
 * (SIGCHLD through a signalfd; waitpid(-1) is fine here: every child of
 * the server is a worker).  The server is single-threaded whenever it
 * forks, and small.  It exits when the control socket closes.
 *
 * conc_process_start_task has a server of its own (process.c starts it on
 * first use): a TASK request brings a memfd with the task's name and input
 * (and a daemon's watch pipe); the server forks a child that runs the task
 * and exits (task_child), replies SPAWNED with the child's pidfd, and
 * reports its exit as for a worker.
 */
#include "fsrv.h"
#include "pchan.h"
#include "wire.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conc/task.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

extern char **environ;

#define ENV_NAME "CONC__FORKSERVER"

static _Atomic int init_done;
static char argv0[256];

bool conc__init_done(void) { return atomic_load(&init_done) != 0; }

/* ---- messages ---- */

static int send_msg(int sock, const uint32_t w[4], const int *fds, int nfds) {
  unsigned char buf[16];
  for (int i = 0; i < 4; i++)
    conc__put32(buf + 4 * i, w[i]);
  struct iovec iov = {buf, sizeof buf};
  union {
    struct cmsghdr h;
    char b[CMSG_SPACE(4 * sizeof(int))];
  } u;
  memset(&u, 0, sizeof u);
  struct msghdr m = {0};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  if (nfds > 0) {
    m.msg_control = u.b;
    m.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
    memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
  }
  for (;;) {
    ssize_t r = sendmsg(sock, &m, MSG_NOSIGNAL);
    if (r == (ssize_t)sizeof buf)
      return 0;
    if (r < 0 && errno == EINTR)
      continue;
    return r < 0 ? (errno == EPIPE ? CONC_ECLOSED : -errno) : CONC_EPROTO;
  }
}

/* Receive one message with up to 4 fds; returns the byte count (0: EOF)
 * or -errno.  Received descriptors are close-on-exec. */
static ssize_t recv_msg(int sock, unsigned char *buf, size_t cap, int *fds,
                        int *nfds, int flags) {
  struct iovec iov = {buf, cap};
  union {
    struct cmsghdr h;
    char b[CMSG_SPACE(4 * sizeof(int))];
  } u;
  struct msghdr m = {0};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = u.b;
  m.msg_controllen = sizeof u.b;
  ssize_t r;
  do
    r = recvmsg(sock, &m, MSG_CMSG_CLOEXEC | flags);
  while (r < 0 && errno == EINTR);
  *nfds = 0;
  if (r < 0)
    return -errno;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
      continue;
    int n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
    for (int i = 0; i < n; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + (size_t)i * sizeof(int), sizeof fd);
      if (*nfds < 4)
        fds[(*nfds)++] = fd;
      else
        close(fd);
    }
  }
  if (m.msg_flags & MSG_TRUNC) { /* not one of ours */
    for (int i = 0; i < *nfds; i++)
      close(fds[i]);
    *nfds = 0;
    return CONC_EPROTO;
  }
  /* MSG_CTRUNC (no descriptor slot left here): the bytes still count */
  return r;
}

/* ---- the server ---- */

static void send_exited(int ctl) {
  int st;
  pid_t pid;
  while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
    uint32_t w[4] = {CONC__FS_EXITED, (uint32_t)pid, (uint32_t)st, 0};
    if (send_msg(ctl, w, NULL, 0) != 0)
      _exit(0);
  }
}

/* A child of the server running one registered task for
 * conc_process_start_task: fds[0] holds u32 name length (little-endian),
 * the name, the input; fds[1], if there, is a daemon's watch pipe. */
_Noreturn static void task_child(const int *fds, int nfds) {
  if (nfds > 1 && conc__watch_parent(fds[1]) != 0)
    _exit(255); /* the parent is gone already */
  struct stat st;
  void *m = MAP_FAILED;
  if (fstat(fds[0], &st) == 0 && st.st_size >= 4)
    m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fds[0], 0);
  close(fds[0]);
  if (m == MAP_FAILED) {
    conc_log(CONC_LOG_ERROR, "conc_process: cannot map the task's input");
    _exit(255);
  }
  const unsigned char *b = m;
  size_t size = (size_t)st.st_size;
  uint32_t nl = conc__get32(b);
  char name[64];
  if (nl == 0 || nl >= sizeof name || nl > size - 4) {
    conc_log(CONC_LOG_ERROR, "conc_process: bad task request");
    _exit(255);
  }
  memcpy(name, b + 4, nl);
  name[nl] = 0;
  prctl(PR_SET_NAME, name, 0, 0, 0);
  int code = conc__task_process_run(name, b + 4 + nl, size - 4 - nl);
  fflush(NULL);
  _exit(code);
}

int conc__task_process_run(const char *name, const void *in, size_t len) {
  conc_bytes out = {0};
  int code = 0;
  char msg[512];
  int rc = conc_task_run(name, in, len, &out, &code, msg, sizeof msg);
  conc_bytes_free(&out);
  if (rc == CONC_ETASK)
    conc_log(CONC_LOG_ERROR, "conc_process: task %s failed (code %d): %s",
             name, code, msg);
  else if (rc != 0)
    conc_log(CONC_LOG_ERROR, "conc_process: task %s: %s", name,
             conc_strerror(rc));
  return rc == 0 ? 0 : rc == CONC_ETASK && code > 0 && code < 256 ? code : 1;
}

static void spawn_task(int ctl, int sfd, int watch, const sigset_t *old,
                       uint32_t cookie, int *fds, int nfds) {
  pid_t pid = fork();
  if (pid == 0) {
    close(ctl);
    close(sfd);
    close(watch);
    sigprocmask(SIG_SETMASK, old, NULL);
    task_child(fds, nfds);
  }
  int err = pid < 0 ? errno : 0;
  int pidfd = pid > 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
  uint32_t w[4] = {CONC__FS_SPAWNED, cookie, pid > 0 ? (uint32_t)pid : 0,
                   (uint32_t)err};
  int rc = send_msg(ctl, w, pidfd >= 0 ? &pidfd : NULL, pidfd >= 0);
  if (pidfd >= 0)
    close(pidfd);
  for (int i = 0; i < nfds; i++)
    close(fds[i]);
  if (rc != 0)
    _exit(0);
}

_Noreturn static void server_main(int ctl, int watch) {
  prctl(PR_SET_NAME, "conc-forksrv", 0, 0, 0);
  if (conc__watch_parent(watch) != 0)
    _exit(1);
  sigset_t chld, old;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, &old);
  int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0)
    _exit(1);
  unsigned char hello[CONC__WIRE_HDR + CONC__HELLO_LEN];
  conc__hello_msg h = {conc_task_registry_hash(), (uint32_t)conc_task_count(),
                       (uint32_t)getpid()};
  conc__frame_header(hello, CONC__FT_HELLO, 0, CONC__HELLO_LEN, 0);
  conc__hello_encode(hello + CONC__WIRE_HDR, &h);
  if (send(ctl, hello, sizeof hello, MSG_NOSIGNAL) != (ssize_t)sizeof hello)
    _exit(0);
  for (;;) {
    struct pollfd pf[2] = {{ctl, POLLIN, 0}, {sfd, POLLIN, 0}};
    if (poll(pf, 2, -1) < 0)
      continue;
    if (pf[1].revents) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) > 0) {
      }
      send_exited(ctl);
    }
    if (!pf[0].revents)
      continue;
    unsigned char buf[16];
    int fds[4], nfds;
    ssize_t r = recv_msg(ctl, buf, sizeof buf, fds, &nfds, 0);
    if (r == 0 || (r < 0 && r != -EAGAIN))
      _exit(0); /* the pool closed its end: done */
    uint32_t kind = conc__get32(buf), slot = conc__get32(buf + 4);
    if (r == 16 && kind == CONC__FS_TASK && (nfds == 1 || nfds == 2)) {
      spawn_task(ctl, sfd, watch, &old, slot, fds, nfds);
      continue;
    }
    if (r != 16 || kind != CONC__FS_SPAWN || nfds != 4) {
      for (int i = 0; i < nfds; i++)
        close(fds[i]);
      continue; /* not from a conc pool: ignore */
    }
    pid_t pid = fork();
    if (pid == 0) {
      close(ctl);
      close(sfd);
      close(watch);
      sigprocmask(SIG_SETMASK, &old, NULL);
      conc__worker_main(fds);
    }
    int err = pid < 0 ? errno : 0;
    int pidfd = pid > 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
    uint32_t w[4] = {CONC__FS_SPAWNED, slot, pid > 0 ? (uint32_t)pid : 0,
                     (uint32_t)err};
    int rc = send_msg(ctl, w, pidfd >= 0 ? &pidfd : NULL, pidfd >= 0);
    if (pidfd >= 0)
      close(pidfd);
    for (int i = 0; i < 4; i++)
      close(fds[i]);
    if (rc != 0)
      _exit(0);
  }
}

int conc_init(int *argc, char ***argv) {
  if (argv && *argv && (*argv)[0] && !argv0[0])
    snprintf(argv0, sizeof argv0, "%s", (*argv)[0]);
  (void)argc;
  const char *env = getenv(ENV_NAME);
  if (env) {
    int ctl = -1, watch = -1;
    if (sscanf(env, "%d,%d", &ctl, &watch) == 2 && ctl >= 0 && watch >= 0) {
      unsetenv(ENV_NAME);
      server_main(ctl, watch);
    }
    conc_log(CONC_LOG_ERROR, "conc_init: bad %s=\"%s\"", ENV_NAME, env);
    unsetenv(ENV_NAME);
  }
  atomic_store(&init_done, 1);
  return 0;
}

/* ---- the pool's side ---- */

/* The environment for the server: ours plus CONC__FORKSERVER. */
static char **server_env(char *var) {
  size_t n = 0;
  for (char **e = environ; e && *e; e++)
    n++;
  char **env = conc__malloc((n + 2) * sizeof *env);
  if (!env)
    return NULL;
  size_t k = 0;
  for (char **e = environ; e && *e; e++)
    if (strncmp(*e, ENV_NAME "=", sizeof ENV_NAME) != 0)
      env[k++] = *e;
  env[k++] = var;
  env[k] = NULL;
  return env;
}

/* Reap the server; it ends on its own once its sockets close, unless it
 * never reached conc_init (code before it blocks): then kill it. */
static int reap(int pid, int pidfd) {
  siginfo_t si;
  if (pidfd >= 0) {
    struct pollfd pf = {pidfd, POLLIN, 0};
    int r;
    do
      r = poll(&pf, 1, 2000);
    while (r < 0 && errno == EINTR);
    if (r == 0)
      syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
  } else if (pid > 0) {
    kill(pid, SIGKILL); /* no pidfd: cannot wait safely, end it */
  }
  if (pidfd >= 0) {
    while (waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si, WEXITED) < 0 &&
           errno == EINTR) {
    }
    close(pidfd);
  } else if (pid > 0) {
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
  }
  return 0;
}

int conc__fsrv_start(conc__fsrv *s, double timeout) {
  s->ctl = s->death_w = s->pid = -1;
  s->pidfd = -1;
  int sv[2], dp[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    return -errno;
  if (pipe2(dp, O_CLOEXEC) != 0) {
    int e = errno;
    close(sv[0]);
    close(sv[1]);
    return -e;
  }
  /* fds 3 and 4 in the server: first move ours out of the way */
  int a = fcntl(sv[1], F_DUPFD_CLOEXEC, 10);
  int b = fcntl(dp[0], F_DUPFD_CLOEXEC, 10);
  close(sv[1]);
  close(dp[0]);
  int rc = 0;
  char var[] = ENV_NAME "=3,4";
  char **env = NULL;
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  bool fa_ok = false, at_ok = false;
  if (a < 0 || b < 0) {
    rc = -EMFILE;
    goto out;
  }
  env = server_env(var);
  if (!env) {
    rc = CONC_ENOMEM;
    goto out;
  }
  if (posix_spawn_file_actions_init(&fa) != 0 ||
      (fa_ok = true, posix_spawn_file_actions_adddup2(&fa, a, 3)) != 0 ||
      posix_spawn_file_actions_adddup2(&fa, b, 4) != 0 ||
      /* nothing else of ours reaches the server (as close_fds=True) */
      posix_spawn_file_actions_addclosefrom_np(&fa, 5) != 0 ||
      posix_spawnattr_init(&at) != 0) {
    rc = CONC_ENOMEM;
    goto out;
  }
  at_ok = true;
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  sigdelset(&all, SIGKILL);
  sigdelset(&all, SIGSTOP);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setsigdefault(&at, &all);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  char *args[] = {argv0[0] ? argv0 : (char *)"conc-forkserver", NULL};
  pid_t pid;
  int e = posix_spawn(&pid, "/proc/self/exe", &fa, &at, args, env);
  if (e != 0) {
    rc = e == ENOMEM ? CONC_ENOMEM : -e;
    goto out;
  }
  s->pid = pid;
  s->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (s->pidfd >= 0)
    fcntl(s->pidfd, F_SETFD, FD_CLOEXEC);
  s->ctl = sv[0];
  s->death_w = dp[1];
  sv[0] = dp[1] = -1;
  if (conc__daemon_fd_add(s->death_w) != 0) {
    rc = CONC_ENOMEM;
    goto fail_started;
  }
  /* HELLO */
  struct pollfd pf = {s->ctl, POLLIN, 0};
  int ms = timeout < 0 ? -1 : (int)(timeout * 1e3);
  int pr;
  do
    pr = poll(&pf, 1, ms);
  while (pr < 0 && errno == EINTR);
  unsigned char buf[64];
  int fds[4], nfds = 0;
  ssize_t r = pr > 0 ? recv_msg(s->ctl, buf, sizeof buf, fds, &nfds, 0) : 0;
  for (int i = 0; i < nfds; i++)
    close(fds[i]);
  conc__frame f;
  conc__hello_msg h;
  if (r <= 0) {
    conc_log(CONC_LOG_ERROR,
             "process pool: the fork server (%s run again) did not answer;"
             " does main call conc_init(&argc, &argv) first?",
             args[0]);
    rc = CONC_EBROKEN;
    goto fail_started;
  }
  if (conc__frame_decode(buf, (size_t)r, &f) != 0 ||
      conc__hello_decode(&f, &h) != 0) {
    rc = CONC_EPROTO;
    goto fail_started;
  }
  uint64_t mine = conc_task_registry_hash();
  size_t count = conc_task_count();
  if (h.hash != mine || h.count != count) {
    conc_log(CONC_LOG_ERROR,
             "process pool: task registries differ: this process has %zu "
             "tasks (hash %016llx), its fork server %u (hash %016llx); "
             "register tasks with CONC_TASK (at load time), not at run time",
             count, (unsigned long long)mine, h.count,
             (unsigned long long)h.hash);
    rc = CONC_EREGISTRY;
    goto fail_started;
  }
  goto out;
fail_started:
  conc__fsrv_close(s);
out:
  if (fa_ok)
    posix_spawn_file_actions_destroy(&fa);
  if (at_ok)
    posix_spawnattr_destroy(&at);
  conc__free(env);
  if (a >= 0)
    close(a);
  if (b >= 0)
    close(b);
  if (rc && s->pid < 0) {
    if (sv[0] >= 0)
      close(sv[0]);
    if (dp[1] >= 0)
      close(dp[1]);
  }
  return rc;
}

int conc__fsrv_spawn(conc__fsrv *s, uint32_t slot, const int fds[4]) {
  uint32_t w[4] = {CONC__FS_SPAWN, slot, 0, 0};
  return send_msg(s->ctl, w, fds, 4);
}

int conc__fsrv_send(conc__fsrv *s, uint32_t kind, uint32_t a, uint32_t b,
                    const int *fds, int nfds) {
  uint32_t w[4] = {kind, a, b, 0};
  return send_msg(s->ctl, w, fds, nfds);
}

int conc__fsrv_recv(conc__fsrv *s, conc__fsrv_msg *m) {
  unsigned char buf[16];
  int fds[4], nfds;
  ssize_t r = recv_msg(s->ctl, buf, sizeof buf, fds, &nfds, MSG_DONTWAIT);
  if (r == -EAGAIN)
    return 0;
  if (r == 0 || r == -ECONNRESET)
    return CONC_ECLOSED;
  if (r < 0)
    return (int)r; /* recv_msg closed what it received */
  m->fd = -1;
  for (int i = 0; i < nfds; i++) {
    if (i == 0)
      m->fd = fds[0];
    else
      close(fds[i]);
  }
  if (r != 16) {
    if (m->fd >= 0)
      close(m->fd);
    return CONC_EPROTO;
  }
  m->kind = conc__get32(buf);
  m->a = conc__get32(buf + 4);
  m->b = conc__get32(buf + 8);
  m->c = conc__get32(buf + 12);
  return 1;
}

void conc__fsrv_close(conc__fsrv *s) {
  if (s->ctl >= 0)
    close(s->ctl);
  s->ctl = -1;
  if (s->death_w >= 0) {
    conc__daemon_fd_remove(s->death_w);
    close(s->death_w);
  }
  s->death_w = -1;
  if (s->pid > 0)
    reap(s->pid, s->pidfd);
  s->pid = -1;
  s->pidfd = -1;
}
