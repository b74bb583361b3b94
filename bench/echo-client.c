/* bench/echo-client.c - workload E's load generator, the same for every
 * echo server (bench/rows_echo.py runs it through bench/echo-run.py).
 *
 *   echo-client PORT CONNS SECONDS BYTES SERVER_PID [WARMUP_SECONDS]
 *
 * One thread, epoll (level-triggered), CONNS connections to 127.0.0.1:PORT,
 * one request in flight on each: it writes BYTES bytes, reads until BYTES
 * bytes came back, checks every byte, and sends the next request (the
 * content changes with the connection and the request number).  After
 * WARMUP_SECONDS (default 0.5) it measures for SECONDS: requests
 * completed, wall time, and the CPU time the server process used meanwhile
 * (utime + stime of all its threads, from /proc/SERVER_PID/stat).  Prints
 *
 *   ECHO requests=<in window> total=<all> seconds=<window> req_per_s=<..>
 *        server_cpu_s=<..> client_cpu_s=<..>
 *
 * and exits 0 (a line "START" marks the beginning of the window, for
 * echo-run.py's syscall count); any wrong byte, a closed connection or a failed call prints
 * CHECK FAILED and exits 2.  The client costs about what the hand-written
 * epoll server costs per request (a read and a write), so run it on its
 * own core (taskset) and read the server's CPU per request next to the
 * rate: where the server's CPU share stays below 1, the client was the
 * limit.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FAIL(...)                                                              \
  do {                                                                         \
    fprintf(stderr, "CHECK FAILED: " __VA_ARGS__);                            \
    fputc('\n', stderr);                                                       \
    exit(2);                                                                   \
  } while (0)

typedef struct conn {
  int fd;
  uint32_t id, seq;
  int got;          /* bytes of the current echo received */
  int connected;
} conn;

static int nbytes;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_self(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

/* utime + stime of process pid, seconds (all threads). */
static double cpu_of(int pid) {
  char path[64], buf[4096];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f)
    FAIL("cannot read %s", path);
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')'); /* the command may hold spaces */
  if (!p)
    FAIL("bad %s", path);
  unsigned long ut = 0, st = 0;
  /* after ')': state ppid pgrp session tty tpgid flags minflt cminflt
   * majflt cmajflt utime stime */
  if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
             &ut, &st) != 2)
    FAIL("bad %s", path);
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static void fill(unsigned char *b, uint32_t id, uint32_t seq) {
  for (int i = 0; i < nbytes; i++)
    b[i] = (unsigned char)(id * 7u + seq * 13u + (uint32_t)i);
}

static void send_req(conn *c, unsigned char *tmp) {
  fill(tmp, c->id, c->seq);
  ssize_t w = write(c->fd, tmp, (size_t)nbytes);
  /* a fresh connection's send buffer always takes 4 KiB at once */
  if (w != nbytes)
    FAIL("write on connection %u: %zd (%s)", c->id, w,
         w < 0 ? strerror(errno) : "short");
  c->got = 0;
}

int main(int argc, char **argv) {
  if (argc < 6)
    FAIL("usage: echo-client PORT CONNS SECONDS BYTES SERVER_PID [WARMUP]");
  int port = atoi(argv[1]), nconn = atoi(argv[2]);
  double secs = atof(argv[3]);
  nbytes = atoi(argv[4]);
  int spid = atoi(argv[5]);
  double warm = argc > 6 ? atof(argv[6]) : 0.5;
  if (port <= 0 || nconn <= 0 || secs <= 0 || nbytes <= 0 || nbytes > 4096)
    FAIL("bad arguments");
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0)
    FAIL("epoll_create1: %s", strerror(errno));
  conn *cs = calloc((size_t)nconn, sizeof *cs);
  if (!cs)
    FAIL("calloc");
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; i < nconn; i++) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
      FAIL("socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 &&
        errno != EINPROGRESS)
      FAIL("connect: %s", strerror(errno));
    cs[i].fd = fd;
    cs[i].id = (uint32_t)i;
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = &cs[i]};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
      FAIL("epoll_ctl: %s", strerror(errno));
  }
  unsigned char tmp[4096], in[4096];
  struct epoll_event evs[256];
  unsigned long long done = 0, done0 = 0;
  double t_start = now(), t0 = 0, c0 = 0, s0 = 0;
  int measuring = 0;
  for (;;) {
    double t = now();
    if (!measuring && t - t_start >= warm) {
      measuring = 1;
      t0 = t;
      done0 = done;
      c0 = cpu_self();
      s0 = cpu_of(spid);
      printf("START\n"); /* echo-run.py --syscalls starts counting here */
      fflush(stdout);
    } else if (measuring && t - t0 >= secs) {
      double dt = t - t0;
      double sc = cpu_of(spid) - s0, cc = cpu_self() - c0;
      unsigned long long n = done - done0;
      printf("ECHO requests=%llu total=%llu seconds=%.3f req_per_s=%.0f "
             "server_cpu_s=%.3f client_cpu_s=%.3f\n",
             n, done, dt, (double)n / dt, sc, cc);
      return 0;
    }
    if (t - t_start > warm + secs + 60)
      FAIL("no progress");
    int k = epoll_wait(ep, evs, 256, 100);
    if (k < 0) {
      if (errno == EINTR)
        continue;
      FAIL("epoll_wait: %s", strerror(errno));
    }
    for (int e = 0; e < k; e++) {
      conn *c = evs[e].data.ptr;
      if (!c->connected) {
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err)
          FAIL("connect %u: %s", c->id, strerror(err));
        c->connected = 1;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) != 0)
          FAIL("epoll_ctl: %s", strerror(errno));
        send_req(c, tmp);
        continue;
      }
      ssize_t r = read(c->fd, in + c->got, (size_t)(nbytes - c->got));
      if (r < 0 && (errno == EAGAIN || errno == EINTR))
        continue;
      if (r <= 0)
        FAIL("read on connection %u: %s", c->id,
             r < 0 ? strerror(errno) : "closed by the server");
      c->got += (int)r;
      if (c->got < nbytes)
        continue;
      fill(tmp, c->id, c->seq);
      if (memcmp(tmp, in, (size_t)nbytes) != 0)
        FAIL("wrong echo on connection %u, request %u", c->id, c->seq);
      done++;
      c->seq++;
      send_req(c, tmp);
    }
  }
}
