/* tcp.c - TCP sockets and stream I/O for coroutines (conc/net.h).
 *
 * DESIGN
 * Every fd is non-blocking.  An operation first makes its syscall (one
 * syscall when the socket is ready) and only on EAGAIN parks the coroutine
 * on the loop's poller (conc__io_wait_fd) until the fd is ready or the
 * call's deadline passes, then tries again.  Exception: a read after a
 * short read waits first (io.c's read hint), since the socket is then
 * most likely empty.  The _exactly / _all variants
 * share one deadline across their partial reads and writes.  Writes to
 * sockets use send(MSG_NOSIGNAL): a closed peer gives EPIPE, never SIGPIPE.
 *
 * Name resolution: numeric hosts are parsed inline (AI_NUMERICHOST); a
 * name is resolved by getaddrinfo on the default executor, awaited through
 * the future bridge (bridge.c) with the connect's deadline.  The request
 * record is shared by the task and the coroutine (refcounted), so a
 * coroutine that times out or is cancelled leaves it to the task to free.
 *
 * Threads: the coroutine calls run on their loop's thread; the worker
 * thread touches only the resolver record.
 */
#include "internal.h"
#include "io-int.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

static conc_coro *self(int *err) {
  conc_coro *c = conc__coro_current();
  *err = c ? 0 : CONC_EPERM;
  return c;
}

static void set_nodelay(int fd) {
  int one = 1;
  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* ---- name resolution ------------------------------------------------ */

static int gai_err(int rc, int sys_errno) {
  switch (rc) {
  case EAI_NONAME:
#ifdef EAI_NODATA
  case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
  case EAI_ADDRFAMILY:
#endif
    return CONC_ENOENT;
  case EAI_AGAIN:
    return CONC_EAGAIN;
  case EAI_MEMORY:
    return CONC_ENOMEM;
  case EAI_SYSTEM:
    return sys_errno ? -sys_errno : CONC_EINVAL;
  default:
    return CONC_EINVAL;
  }
}

typedef struct gai_req {
  _Atomic int refs; /* the task's and the coroutine's */
  char *host;
  char port[8];
  struct addrinfo *res;
  int rc, sys_errno;
} gai_req;

static void gai_unref(gai_req *g) {
  /* acq_rel: the last holder sees the other's writes before freeing. */
  if (atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) != 1)
    return;
  if (g->res)
    freeaddrinfo(g->res);
  conc__free(g->host);
  conc__free(g);
}

static void *gai_task(void *p) {
  gai_req *g = p;
  struct addrinfo hints = {.ai_family = AF_UNSPEC,
                           .ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV};
  g->rc = getaddrinfo(g->host, g->port, &hints, &g->res);
  g->sys_errno = errno;
  gai_unref(g);
  return NULL;
}

/* Resolve host:port into *res (freeaddrinfo), within the deadline. */
static int resolve(conc_coro *c, const char *host, int port, double deadline,
                   struct addrinfo **res) {
  char ps[8];
  snprintf(ps, sizeof ps, "%d", port);
  struct addrinfo hints = {.ai_family = AF_UNSPEC,
                           .ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
  int rc = getaddrinfo(host, ps, &hints, res);
  if (rc == 0)
    return 0;
  if (rc != EAI_NONAME)
    return gai_err(rc, errno);
  conc_executor *ex;
  int err = conc_executor_default(&ex);
  if (err)
    return err;
  gai_req *g = conc__calloc(1, sizeof *g);
  if (!g)
    return CONC_ENOMEM;
  g->host = conc__strdup(host);
  if (!g->host) {
    conc__free(g);
    return CONC_ENOMEM;
  }
  memcpy(g->port, ps, sizeof ps);
  atomic_init(&g->refs, 2);
  conc_future *f;
  err = conc_executor_submit(ex, gai_task, g, &f);
  if (err) {
    conc__free(g->host);
    conc__free(g);
    return err;
  }
  err = conc__await_future(c, f, deadline, false, NULL);
  if (err == 0) {
    err = g->rc ? gai_err(g->rc, g->sys_errno) : 0;
    *res = g->res;
    g->res = NULL;
    gai_unref(g);
  } else if (!conc_future_done(f) && conc_future_cancel(f)) {
    gai_unref(g); /* the task never runs: drop its reference too */
    gai_unref(g);
  } else {
    gai_unref(g); /* the task drops its own */
  }
  conc_future_release(f);
  return err;
}

/* ---- listen, accept, connect ---------------------------------------- */

int conc_tcp_listen(const char *host, int port, int backlog, int *fd) {
  if (!fd || port < 0 || port > 65535)
    return CONC_EINVAL;
  char ps[8];
  snprintf(ps, sizeof ps, "%d", port);
  struct addrinfo hints = {.ai_family = AF_UNSPEC,
                           .ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_PASSIVE | AI_NUMERICHOST |
                                       AI_NUMERICSERV};
  struct addrinfo *res = NULL;
  int rc = getaddrinfo(host, ps, &hints, &res);
  if (rc != 0)
    return rc == EAI_NONAME ? CONC_EINVAL : gai_err(rc, errno);
  int err = CONC_EINVAL;
  for (struct addrinfo *a = res; a; a = a->ai_next) {
    int s = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                   a->ai_protocol);
    if (s < 0) {
      err = -errno;
      continue;
    }
    conc__io_fd_new(s);
    int one = 1;
    (void)setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(s, a->ai_addr, a->ai_addrlen) == 0 &&
        listen(s, backlog > 0 ? backlog : SOMAXCONN) == 0) {
      freeaddrinfo(res);
      *fd = s;
      return 0;
    }
    err = -errno;
    close(s);
  }
  freeaddrinfo(res);
  return err;
}

int conc_tcp_accept_until(int lfd, double deadline, int *fd) {
  int err;
  conc_coro *c = self(&err);
  if (!c)
    return err;
  if (lfd < 0 || !fd || isnan(deadline))
    return CONC_EINVAL;
  for (;;) {
    int s = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (s >= 0) {
      conc__io_fd_new(s);
      set_nodelay(s);
      *fd = s;
      return 0;
    }
    if (errno == EINTR || errno == ECONNABORTED)
      continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      return -errno;
    err = conc__io_wait_fd(c, lfd, CONC_POLL_IN, deadline);
    if (err < 0)
      return err;
  }
}

int conc_tcp_accept(int lfd, double timeout, int *fd) {
  return conc_tcp_accept_until(lfd, conc__timeout_deadline(timeout), fd);
}

/* Connect one address; 0 with *fd, or an error. */
static int connect_one(conc_coro *c, const struct addrinfo *a, double deadline,
                       int *fd) {
  int s = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                 a->ai_protocol);
  if (s < 0)
    return -errno;
  conc__io_fd_new(s);
  int err = 0;
  if (connect(s, a->ai_addr, a->ai_addrlen) != 0) {
    if (errno != EINPROGRESS) {
      err = -errno;
    } else {
      err = conc__io_wait_fd(c, s, CONC_POLL_OUT, deadline);
      if (err > 0) {
        int soerr = 0;
        socklen_t len = sizeof soerr;
        if (getsockopt(s, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
          soerr = errno;
        err = -soerr;
      }
    }
  }
  if (err) {
    conc_sock_close(s);
    return err;
  }
  set_nodelay(s);
  *fd = s;
  return 0;
}

int conc_tcp_connect_until(const char *host, int port, double deadline,
                           int *fd) {
  int err;
  conc_coro *c = self(&err);
  if (!c)
    return err;
  if (!host || !fd || port <= 0 || port > 65535 || isnan(deadline))
    return CONC_EINVAL;
  err = conc__coro_take_cancel(c);
  if (err)
    return err;
  struct addrinfo *res = NULL;
  err = resolve(c, host, port, deadline, &res);
  if (err)
    return err;
  err = CONC_ENOENT;
  for (struct addrinfo *a = res; a; a = a->ai_next) {
    err = connect_one(c, a, deadline, fd);
    if (err == 0 || err == CONC_ETIMEDOUT || err == CONC_ECANCELED)
      break;
  }
  freeaddrinfo(res);
  return err;
}

int conc_tcp_connect(const char *host, int port, double timeout, int *fd) {
  return conc_tcp_connect_until(host, port, conc__timeout_deadline(timeout),
                                fd);
}

int conc_sock_local_port(int fd, int *port) {
  if (fd < 0 || !port)
    return CONC_EINVAL;
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
    return -errno;
  if (ss.ss_family == AF_INET)
    *port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  else if (ss.ss_family == AF_INET6)
    *port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  else
    return CONC_EINVAL;
  return 0;
}

/* ---- reading and writing -------------------------------------------- */

static int read_until(conc_coro *c, int fd, void *buf, size_t len,
                      double deadline, size_t *n) {
  if (len > 0 && conc__io_drained(c, fd)) {
    /* Most likely empty: wait first (see io.c's read hint). */
    int err = conc__io_wait_fd(c, fd, CONC_POLL_IN, deadline);
    if (err < 0 && err != CONC_ENOTSUP)
      return err;
  }
  for (;;) {
    ssize_t r = read(fd, buf, len);
    if (r >= 0) {
      if (r > 0 && (size_t)r < len)
        conc__io_set_drained(c, fd);
      *n = (size_t)r;
      return 0;
    }
    if (errno == EINTR)
      continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      return -errno;
    int err = conc__io_wait_fd(c, fd, CONC_POLL_IN, deadline);
    if (err < 0)
      return err;
  }
}

static int write_until(conc_coro *c, int fd, const void *buf, size_t len,
                       double deadline, size_t *n) {
  for (;;) {
    ssize_t w = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0 && errno == ENOTSOCK)
      w = write(fd, buf, len);
    if (w >= 0) {
      *n = (size_t)w;
      return 0;
    }
    if (errno == EINTR)
      continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      return -errno;
    int err = conc__io_wait_fd(c, fd, CONC_POLL_OUT, deadline);
    if (err < 0)
      return err;
  }
}

int conc_sock_read_until(int fd, void *buf, size_t len, double deadline,
                         size_t *n) {
  int err;
  conc_coro *c = self(&err);
  if (!c)
    return err;
  if (fd < 0 || (!buf && len > 0) || !n || isnan(deadline))
    return CONC_EINVAL;
  *n = 0;
  return read_until(c, fd, buf, len, deadline, n);
}

int conc_sock_read(int fd, void *buf, size_t len, double timeout, size_t *n) {
  return conc_sock_read_until(fd, buf, len, conc__timeout_deadline(timeout), n);
}

int conc_sock_read_exactly_until(int fd, void *buf, size_t len, double deadline,
                           size_t *n) {
  int err;
  conc_coro *c = self(&err);
  if (!c)
    return err;
  if (fd < 0 || (!buf && len > 0) || isnan(deadline))
    return CONC_EINVAL;
  size_t done = 0;
  err = 0;
  while (done < len) {
    size_t got = 0;
    err = read_until(c, fd, (char *)buf + done, len - done, deadline, &got);
    if (err)
      break;
    if (got == 0) {
      err = CONC_ECLOSED;
      break;
    }
    done += got;
  }
  if (n)
    *n = done;
  return err;
}

int conc_sock_read_exactly(int fd, void *buf, size_t len, double timeout,
                           size_t *n) {
  return conc_sock_read_exactly_until(fd, buf, len,
                                      conc__timeout_deadline(timeout), n);
}

int conc_sock_write_until(int fd, const void *buf, size_t len, double deadline,
                    size_t *n) {
  int err;
  conc_coro *c = self(&err);
  if (!c)
    return err;
  if (fd < 0 || (!buf && len > 0) || !n || isnan(deadline))
    return CONC_EINVAL;
  *n = 0;
  if (len == 0)
    return 0;
  return write_until(c, fd, buf, len, deadline, n);
}

int conc_sock_write(int fd, const void *buf, size_t len, double timeout,
                    size_t *n) {
  return conc_sock_write_until(fd, buf, len, conc__timeout_deadline(timeout),
                               n);
}

int conc_sock_write_all_until(int fd, const void *buf, size_t len,
                              double deadline, size_t *n) {
  int err;
  conc_coro *c = self(&err);
  if (!c)
    return err;
  if (fd < 0 || (!buf && len > 0) || isnan(deadline))
    return CONC_EINVAL;
  size_t done = 0;
  err = 0;
  while (done < len) {
    size_t put = 0;
    err = write_until(c, fd, (const char *)buf + done, len - done, deadline,
                      &put);
    if (err)
      break;
    done += put;
  }
  if (n)
    *n = done;
  return err;
}

int conc_sock_write_all(int fd, const void *buf, size_t len, double timeout,
                        size_t *n) {
  return conc_sock_write_all_until(fd, buf, len,
                                   conc__timeout_deadline(timeout), n);
}

int conc_sock_shutdown(int fd, int how) {
  if (fd < 0 || (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR))
    return CONC_EINVAL;
  return shutdown(fd, how) == 0 ? 0 : -errno;
}
