/* coro-echo.c - a TCP echo server and its clients, as asyncio streams.
 *
 * The Python it mirrors:
 *
 *     import asyncio
 *
 *     async def handle(reader, writer):
 *         while data := await reader.read(1024):
 *             writer.write(data)
 *             await writer.drain()
 *         writer.close()
 *
 *     async def client(i, port, rounds):
 *         reader, writer = await asyncio.open_connection("localhost", port)
 *         for k in range(rounds):
 *             msg = f"client {i} message {k}\n".encode()
 *             writer.write(msg)
 *             assert await reader.readexactly(len(msg)) == msg
 *         writer.close()
 *         return rounds
 *
 *     async def main():
 *         server = await asyncio.start_server(handle, "127.0.0.1", 0)
 *         port = server.sockets[0].getsockname()[1]
 *         counts = await asyncio.gather(*(client(i, port, 5)
 *                                         for i in range(10)))
 *         for i, n in enumerate(counts):
 *             print(f"client {i}: {n} echoes ok")
 *         server.close()
 *         print("server: closed")
 *
 *     asyncio.run(main())
 *
 * One thread runs the server, a coroutine per connection and every client:
 * each coroutine waits for its socket on the loop's epoll.  The clients
 * connect to "localhost", so the name is resolved on the default thread
 * pool while the loop keeps running.  CONC_EXAMPLE_N sets the number of
 * clients (default 10).  The program checks every echo and exits 1 on a
 * mismatch.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <conc.h>

#define ROUNDS 5

static int listen_fd;
static int port;

/* One connection: echo until the client closes. */
static int handle(void *arg, void **result) {
  (void)result;
  int fd = (int)(intptr_t)arg;
  char buf[1024];
  size_t n;
  int err;
  while ((err = conc_sock_read(fd, buf, sizeof buf, 10.0, &n)) == 0 && n > 0) {
    err = conc_sock_write_all(fd, buf, n, 10.0, NULL);
    if (err)
      break;
  }
  conc_sock_close(fd);
  return err;
}

/* Accept connections until cancelled. */
static int server(void *arg, void **result) {
  (void)arg;
  (void)result;
  for (;;) {
    int fd;
    int err = conc_tcp_accept(listen_fd, -1, &fd);
    if (err == CONC_ECANCELED)
      return 0;
    if (err)
      return err;
    if (conc_coro_spawn(NULL, handle, (void *)(intptr_t)fd, NULL, NULL) != 0)
      conc_sock_close(fd);
  }
}

static int client(void *arg, void **result) {
  int i = (int)(intptr_t)arg;
  int fd;
  int err = conc_tcp_connect("localhost", port, 10.0, &fd);
  if (err)
    return err;
  int ok = 0;
  for (int k = 0; k < ROUNDS && !err; k++) {
    char msg[64], back[64];
    int len = snprintf(msg, sizeof msg, "client %d message %d\n", i, k);
    err = conc_sock_write_all(fd, msg, (size_t)len, 10.0, NULL);
    if (!err)
      err = conc_sock_read_exactly(fd, back, (size_t)len, 10.0, NULL);
    if (!err && memcmp(msg, back, (size_t)len) == 0)
      ok++;
  }
  conc_sock_close(fd);
  *result = (void *)(intptr_t)ok;
  return err;
}

static int main_coro(void *arg, void **result) {
  (void)result;
  int nclients = (int)(intptr_t)arg;
  int err = conc_tcp_listen("127.0.0.1", 0, 128, &listen_fd);
  if (!err)
    err = conc_sock_local_port(listen_fd, &port);
  if (err) {
    fprintf(stderr, "listen: %s\n", conc_strerror(err));
    return err;
  }
  conc_coro *srv;
  conc_coro **cl = calloc((size_t)nclients, sizeof *cl);
  if (!cl || conc_coro_spawn(NULL, server, NULL, NULL, &srv) != 0) {
    fprintf(stderr, "out of memory\n");
    free(cl);
    conc_sock_close(listen_fd);
    return CONC_ENOMEM;
  }
  int bad = 0;
  for (int i = 0; i < nclients; i++) {
    int e = conc_coro_spawn(NULL, client, (void *)(intptr_t)i, NULL, &cl[i]);
    if (e) {
      fprintf(stderr, "client %d: %s\n", i, conc_strerror(e));
      cl[i] = NULL;
      bad = 1;
    }
  }
  for (int i = 0; i < nclients; i++) { /* asyncio.gather */
    void *n = NULL;
    int e = cl[i] ? conc_coro_await(cl[i], -1, &n) : CONC_ENOMEM;
    if (e)
      fprintf(stderr, "client %d: %s\n", i, conc_strerror(e));
    if (e || (intptr_t)n != ROUNDS)
      bad = 1;
    printf("client %d: %d echoes ok\n", i, (int)(intptr_t)n);
    conc_coro_release(cl[i]);
  }
  free(cl);
  conc_coro_cancel(srv); /* server.close() */
  conc_coro_await(srv, -1, NULL);
  conc_coro_release(srv);
  conc_sock_close(listen_fd);
  printf("server: closed\n");
  return bad ? CONC_ETASK : 0;
}

int main(void) {
  const char *env = getenv("CONC_EXAMPLE_N");
  int n = env ? atoi(env) : 10;
  if (n < 1)
    n = 1;
  int err = conc_coro_run(main_coro, (void *)(intptr_t)n, NULL);
  conc_library_shutdown(); /* the resolver's thread pool */
  return err ? 1 : 0;
}
