/* unix.c - Unix-domain stream sockets for coroutines (conc/net.h).
 *
 * DESIGN
 * Listening and accepting work as for TCP (conc_tcp_accept accepts on any
 * stream listener; the conc_sock_* calls read and write any stream).  A
 * non-blocking connect to a Unix listener either completes at once or
 * fails with EAGAIN when the listener's backlog is full; the kernel gives
 * no readiness event for "room in the backlog", so connect retries after
 * short sleeps (1 ms doubling to 64 ms) until its deadline.  Loop thread
 * only for the coroutine call; no shared state.
 */
#include "internal.h"
#include "io-int.h"

#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int unix_addr(const char *path, struct sockaddr_un *a, socklen_t *len) {
  if (!path || !path[0])
    return CONC_EINVAL;
  size_t n = strlen(path);
  if (n >= sizeof a->sun_path)
    return CONC_EINVAL;
  memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  memcpy(a->sun_path, path, n + 1);
  *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
  return 0;
}

int conc_unix_listen(const char *path, int backlog, int *fd) {
  struct sockaddr_un a;
  socklen_t len;
  if (!fd)
    return CONC_EINVAL;
  int err = unix_addr(path, &a, &len);
  if (err)
    return err;
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s < 0)
    return -errno;
  conc__io_fd_new(s);
  if (bind(s, (struct sockaddr *)&a, len) != 0 ||
      listen(s, backlog > 0 ? backlog : SOMAXCONN) != 0) {
    err = -errno;
    close(s);
    return err;
  }
  *fd = s;
  return 0;
}

int conc_unix_connect_until(const char *path, double deadline, int *fd) {
  conc_coro *c = conc__coro_current();
  if (!c)
    return CONC_EPERM;
  struct sockaddr_un a;
  socklen_t len;
  if (!fd || isnan(deadline))
    return CONC_EINVAL;
  int err = unix_addr(path, &a, &len);
  if (err)
    return err;
  err = conc__coro_take_cancel(c);
  if (err)
    return err;
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s < 0)
    return -errno;
  conc__io_fd_new(s);
  double pause = 0.001;
  for (;;) {
    if (connect(s, (struct sockaddr *)&a, len) == 0) {
      *fd = s;
      return 0;
    }
    if (errno == EINTR)
      continue;
    if (errno != EAGAIN) {
      err = -errno;
      break;
    }
    /* Backlog full: no event announces room, so retry after a pause. */
    double now = conc_now();
    if (now >= deadline) {
      err = CONC_ETIMEDOUT;
      break;
    }
    err = conc_coro_sleep_until(fmin(now + pause, deadline));
    if (err)
      break;
    pause = fmin(pause * 2, 0.064);
  }
  close(s);
  return err;
}

int conc_unix_connect(const char *path, double timeout, int *fd) {
  return conc_unix_connect_until(path, conc__timeout_deadline(timeout), fd);
}
