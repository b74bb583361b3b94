/* sigfile.c - signals and regular files for coroutines (conc/net.h).
 *
 * DESIGN
 * Signals: conc_coro_wait_signal blocks the set in the calling thread,
 * opens a non-blocking signalfd for it and waits for it on the loop's
 * poller like any fd; the signalfd is closed when the call returns.  A
 * signal pending before the call is read at once.
 *
 * Regular files cannot be polled (epoll refuses them), so each operation
 * runs on the default executor (thread pool) and is awaited through the
 * future bridge (bridge.c) in shielded mode: the task uses the caller's
 * buffer, so a cancelled coroutine still waits for it to finish, then
 * returns CONC_ECANCELED.  The operation record lives on the coroutine's
 * stack for that reason.
 */
#include "internal.h"
#include "io-int.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

int conc_coro_wait_signal_until(const int *signals, size_t n, double deadline,
                          int *signo) {
  conc_coro *c = conc__coro_current();
  if (!c)
    return CONC_EPERM;
  if (!signals || n == 0 || !signo || isnan(deadline))
    return CONC_EINVAL;
  sigset_t sset;
  sigset_t *set = &sset;
  sigemptyset(set);
  for (size_t i = 0; i < n; i++)
    if (signals[i] == SIGKILL || signals[i] == SIGSTOP ||
        sigaddset(set, signals[i]) != 0)
      return CONC_EINVAL;
  int err = conc__coro_take_cancel(c);
  if (err)
    return err;
  err = pthread_sigmask(SIG_BLOCK, set, NULL);
  if (err)
    return -err;
  int sfd = signalfd(-1, set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (sfd < 0)
    return -errno;
  conc__io_fd_new(sfd);
  for (;;) {
    struct signalfd_siginfo si;
    ssize_t r = read(sfd, &si, sizeof si);
    if (r == (ssize_t)sizeof si) {
      *signo = (int)si.ssi_signo;
      err = 0;
      break;
    }
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0 && errno != EAGAIN) {
      err = -errno;
      break;
    }
    err = conc__io_wait_fd(c, sfd, CONC_POLL_IN, deadline);
    if (err < 0)
      break;
  }
  conc_sock_close(sfd);
  return err;
}

int conc_coro_wait_signal(const int *signals, size_t n, double timeout,
                          int *signo) {
  return conc_coro_wait_signal_until(signals, n,
                                     conc__timeout_deadline(timeout), signo);
}

/* ---- files ---------------------------------------------------------- */

typedef struct file_op {
  int fd;
  void *buf;
  const void *cbuf;
  size_t len;
  off_t off;
  const char *path;
  conc_bytes *out;
  ssize_t n;
  int err;
} file_op;

static void *pread_task(void *p) {
  file_op *op = p;
  do
    op->n = pread(op->fd, op->buf, op->len, op->off);
  while (op->n < 0 && errno == EINTR);
  op->err = op->n < 0 ? -errno : 0;
  return NULL;
}

static void *pwrite_task(void *p) {
  file_op *op = p;
  do
    op->n = pwrite(op->fd, op->cbuf, op->len, op->off);
  while (op->n < 0 && errno == EINTR);
  op->err = op->n < 0 ? -errno : 0;
  return NULL;
}

static void *read_all_task(void *p) {
  file_op *op = p;
  int fd = open(op->path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    op->err = -errno;
    return NULL;
  }
  struct stat st;
  if (fstat(fd, &st) == 0 && st.st_size > 0)
    op->err = conc_bytes_reserve(op->out, op->out->len + (size_t)st.st_size);
  char buf[16384];
  while (op->err == 0) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      op->err = -errno;
    else if (r == 0)
      break;
    else
      op->err = conc_bytes_append(op->out, buf, (size_t)r);
  }
  close(fd);
  return NULL;
}

static int run_op(conc_fn task, file_op *op) {
  int err = conc_coro_run_in_executor(NULL, task, op, NULL);
  return err ? err : op->err;
}

int conc_file_read(int fd, void *buf, size_t len, off_t offset, size_t *n) {
  if (!conc__coro_current())
    return CONC_EPERM;
  if (fd < 0 || (!buf && len > 0) || offset < 0 || !n)
    return CONC_EINVAL;
  *n = 0;
  file_op op = {.fd = fd, .buf = buf, .len = len, .off = offset};
  int err = run_op(pread_task, &op);
  if (!err)
    *n = (size_t)op.n;
  return err;
}

int conc_file_write(int fd, const void *buf, size_t len, off_t offset,
                    size_t *n) {
  if (!conc__coro_current())
    return CONC_EPERM;
  if (fd < 0 || (!buf && len > 0) || offset < 0 || !n)
    return CONC_EINVAL;
  *n = 0;
  file_op op = {.fd = fd, .cbuf = buf, .len = len, .off = offset};
  int err = run_op(pwrite_task, &op);
  if (!err)
    *n = (size_t)op.n;
  return err;
}

int conc_file_read_all(const char *path, conc_bytes *out) {
  if (!conc__coro_current())
    return CONC_EPERM;
  if (!path || !out)
    return CONC_EINVAL;
  file_op op = {.path = path, .out = out};
  return run_op(read_all_task, &op);
}
