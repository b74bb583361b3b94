/* bench/echo-epoll.c - workload E's ceiling: a hand-written single-threaded
 * epoll echo server (level-triggered; per request one read and one write,
 * plus the epoll_wait that reports a batch of ready connections).
 *
 *   echo-epoll      listens on 127.0.0.1, an ephemeral port; prints
 *                   "PORT <n>" and serves until killed
 *
 * A write that cannot take everything (never with these 64-byte echoes)
 * keeps the rest and waits for EPOLLOUT, so the server stays correct.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct conn {
  int fd;
  int pending;      /* bytes of buf still to write */
  int off;
  char buf[4096];
} conn;

static void die(const char *what) {
  fprintf(stderr, "echo-epoll: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void drop(int ep, conn *c) {
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  free(c);
}

int main(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (lfd < 0)
    die("socket");
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sa = {.sin_family = AF_INET};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t sl = sizeof sa;
  if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lfd, 4096) != 0 ||
      getsockname(lfd, (struct sockaddr *)&sa, &sl) != 0)
    die("bind/listen");
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0)
    die("epoll_create1");
  struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) != 0)
    die("epoll_ctl");
  printf("PORT %d\n", ntohs(sa.sin_port));
  fflush(stdout);
  struct epoll_event evs[256];
  for (;;) {
    int k = epoll_wait(ep, evs, 256, -1);
    if (k < 0) {
      if (errno == EINTR)
        continue;
      die("epoll_wait");
    }
    for (int e = 0; e < k; e++) {
      conn *c = evs[e].data.ptr;
      if (!c) { /* the listener */
        for (;;) {
          int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0) {
            if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
              break;
            die("accept4");
          }
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          conn *n = calloc(1, sizeof *n);
          if (!n)
            die("calloc");
          n->fd = fd;
          struct epoll_event ev = {.events = EPOLLIN, .data.ptr = n};
          if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
            die("epoll_ctl");
        }
        continue;
      }
      if (c->pending) { /* EPOLLOUT: finish the write */
        ssize_t w = write(c->fd, c->buf + c->off, (size_t)c->pending);
        if (w < 0 && errno == EAGAIN)
          continue;
        if (w <= 0) {
          drop(ep, c);
          continue;
        }
        c->off += (int)w;
        c->pending -= (int)w;
        if (!c->pending) {
          struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
          epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        }
        continue;
      }
      ssize_t r = read(c->fd, c->buf, sizeof c->buf);
      if (r < 0 && (errno == EAGAIN || errno == EINTR))
        continue;
      if (r <= 0) {
        drop(ep, c);
        continue;
      }
      ssize_t w = write(c->fd, c->buf, (size_t)r);
      if (w < 0 && errno != EAGAIN) {
        drop(ep, c);
        continue;
      }
      if (w < 0)
        w = 0;
      if (w < r) {
        c->off = (int)w;
        c->pending = (int)(r - w);
        struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
      }
    }
  }
}
