/* bench-echo.c - echo requests per second over loopback, one thread.
 *
 *   bench-echo [connections] [requests-per-connection] [message-bytes]
 *
 * One conc loop on one thread runs an echo server (a coroutine per
 * connection) and `connections` client coroutines; each client sends a
 * message, reads the echo back (read_exactly), `requests` times, checking
 * every byte.  Prints one line:
 *
 *   echo conns=1000 requests=1000000 bytes=64 seconds=... req_per_s=...
 *
 * Syscalls per request: run it under `strace -c -f` (both ends run in this
 * process, so halve the counts for the server's share).  Exits 1 if
 * any echo was wrong or any call failed.  The defaults (1000 x 1000 x 64)
 * match issue 6's echo target; CI passes tiny counts.
 *
 *   bench-echo serve
 *
 * The server alone, for workload E (bench/rows_echo.py): one loop on one
 * thread, a coroutine per connection (read, write_all), listening on
 * 127.0.0.1 at an ephemeral port; prints "PORT <n>" and serves until
 * killed.  The load comes from bench/echo-client.c in another process.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <conc.h>

static int listen_fd, port;
static int nconn = 1000, nreq = 1000, msglen = 64;
static int failures;
static double io_timeout = 60; /* serve: none, as the other servers of E */

static int handle(void *arg, void **result) {
  (void)result;
  int fd = (int)(intptr_t)arg;
  char buf[4096];
  size_t n;
  int err;
  while ((err = conc_sock_read(fd, buf, sizeof buf, io_timeout, &n)) == 0 &&
         n > 0)
    if ((err = conc_sock_write_all(fd, buf, n, io_timeout, NULL)) != 0)
      break;
  conc_sock_close(fd);
  return err;
}

static int server(void *arg, void **result) {
  (void)result;
  int forever = arg != NULL;
  for (int i = 0; forever || i < nconn; i++) {
    int fd;
    int err = conc_tcp_accept(listen_fd, 60, &fd);
    if (err)
      return err;
    if (conc_coro_spawn(NULL, handle, (void *)(intptr_t)fd, NULL, NULL))
      return CONC_ENOMEM;
  }
  return 0;
}

static int client(void *arg, void **result) {
  (void)result;
  int id = (int)(intptr_t)arg;
  int fd;
  int err = conc_tcp_connect("127.0.0.1", port, 60, &fd);
  if (err) {
    fprintf(stderr, "connect: %s\n", conc_strerror(err));
    failures++;
    return err;
  }
  char *out = malloc((size_t)msglen), *in = malloc((size_t)msglen);
  for (int r = 0; r < nreq && !err; r++) {
    for (int i = 0; i < msglen; i++)
      out[i] = (char)(id + r + i);
    err = conc_sock_write_all(fd, out, (size_t)msglen, 60, NULL);
    if (!err)
      err = conc_sock_read_exactly(fd, in, (size_t)msglen, 60, NULL);
    if (!err && memcmp(in, out, (size_t)msglen) != 0)
      err = CONC_ETASK;
  }
  if (err) {
    fprintf(stderr, "client %d: %s\n", id, conc_strerror(err));
    failures++;
  }
  free(out);
  free(in);
  conc_sock_close(fd);
  return err;
}

static int bench_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  int err = conc_tcp_listen("127.0.0.1", 0, 4096, &listen_fd);
  if (!err)
    err = conc_sock_local_port(listen_fd, &port);
  if (err)
    return err;
  conc_coro *srv;
  conc_coro **cl = calloc((size_t)nconn, sizeof *cl);
  if (!cl || conc_coro_spawn(NULL, server, NULL, NULL, &srv))
    return CONC_ENOMEM;
  double t0 = conc_now();
  for (int i = 0; i < nconn; i++)
    if (conc_coro_spawn(NULL, client, (void *)(intptr_t)i, NULL, &cl[i]))
      return CONC_ENOMEM;
  for (int i = 0; i < nconn; i++) {
    conc_coro_await(cl[i], -1, NULL);
    conc_coro_release(cl[i]);
  }
  double dt = conc_now() - t0;
  conc_coro_await(srv, -1, NULL);
  conc_coro_release(srv);
  free(cl);
  conc_sock_close(listen_fd);
  double total = (double)nconn * nreq;
  printf("echo conns=%d requests=%.0f bytes=%d seconds=%.3f req_per_s=%.0f\n",
         nconn, total, msglen, dt, total / dt);
  return 0;
}

static int serve_main(void *arg, void **result) {
  (void)arg;
  (void)result;
  int err = conc_tcp_listen("127.0.0.1", 0, 4096, &listen_fd);
  if (!err)
    err = conc_sock_local_port(listen_fd, &port);
  if (err)
    return err;
  io_timeout = -1;
  printf("PORT %d\n", port);
  fflush(stdout);
  return server((void *)1, NULL);
}

int main(int argc, char **argv) {
  int serve = argc > 1 && !strcmp(argv[1], "serve");
  if (argc > 1 && !serve)
    nconn = atoi(argv[1]);
  if (argc > 2 && !serve)
    nreq = atoi(argv[2]);
  if (argc > 3 && !serve)
    msglen = atoi(argv[3]);
  if (nconn < 1 || nreq < 1 || msglen < 1 || msglen > 4096) {
    fprintf(stderr, "usage: bench-echo [conns] [requests] [bytes<=4096]\n");
    return 2;
  }
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max; /* two fds per connection */
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  conc_loop_options o;
  conc_loop_options_init(&o);
  o.stack_size = 32 * 1024;
  conc_loop *l;
  if (conc_loop_create(&o, &l))
    return 1;
  int err = conc_coro_spawn(l, serve ? serve_main : bench_main, NULL, NULL, NULL);
  if (!err)
    err = conc_loop_run(l);
  conc_loop_destroy(l);
  if (err || failures) {
    fprintf(stderr, "bench-echo: FAILED (%s, %d failures)\n",
            conc_strerror(err), failures);
    return 1;
  }
  return 0;
}
