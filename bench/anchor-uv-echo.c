/* bench/anchor-uv-echo.c - workload E's libuv anchor: an echo server on
 * one uv loop (uv_listen, uv_accept, uv_read_start; each read echoed with
 * uv_try_write, and whatever it could not take with uv_write from a copy,
 * as libuv's documentation describes both calls).  The read buffer is one
 * static 4 KiB block (alloc_cb may return the same buffer each time: data
 * is consumed inside read_cb).
 *
 *   anchor-uv-echo   listens on 127.0.0.1 at an ephemeral port, prints
 *                    "PORT <n>" and serves until killed
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

static uv_loop_t *loop;
static char rbuf[4096];

typedef struct wreq {
  uv_write_t req;
  uv_buf_t buf;
} wreq;

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
  (void)h;
  (void)suggested;
  *b = uv_buf_init(rbuf, sizeof rbuf);
}

static void close_cb(uv_handle_t *h) { free(h); }

static void write_cb(uv_write_t *req, int status) {
  wreq *w = (wreq *)req;
  if (status < 0 && !uv_is_closing((uv_handle_t *)req->handle))
    uv_close((uv_handle_t *)req->handle, close_cb);
  free(w->buf.base);
  free(w);
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  if (n < 0) {
    if (!uv_is_closing((uv_handle_t *)s))
      uv_close((uv_handle_t *)s, close_cb);
    return;
  }
  if (n == 0)
    return;
  uv_buf_t out = uv_buf_init(b->base, (unsigned)n);
  int w = uv_try_write(s, &out, 1);
  if (w == n)
    return;
  if (w < 0 && w != UV_EAGAIN) {
    if (!uv_is_closing((uv_handle_t *)s))
      uv_close((uv_handle_t *)s, close_cb);
    return;
  }
  if (w < 0)
    w = 0;
  wreq *r = malloc(sizeof *r);
  if (!r)
    abort();
  r->buf = uv_buf_init(malloc((size_t)(n - w)), (unsigned)(n - w));
  if (!r->buf.base)
    abort();
  memcpy(r->buf.base, b->base + w, (size_t)(n - w));
  uv_write(&r->req, s, &r->buf, 1, write_cb);
}

static void on_conn(uv_stream_t *server, int status) {
  if (status < 0)
    return;
  uv_tcp_t *c = malloc(sizeof *c);
  if (!c)
    abort();
  uv_tcp_init(loop, c);
  if (uv_accept(server, (uv_stream_t *)c) == 0) {
    uv_tcp_nodelay(c, 1);
    uv_read_start((uv_stream_t *)c, alloc_cb, read_cb);
  } else {
    uv_close((uv_handle_t *)c, close_cb);
  }
}

int main(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  loop = uv_default_loop();
  uv_tcp_t server;
  uv_tcp_init(loop, &server);
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", 0, &addr);
  int r = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0);
  if (!r)
    r = uv_listen((uv_stream_t *)&server, 4096, on_conn);
  if (r) {
    fprintf(stderr, "anchor-uv-echo: %s\n", uv_strerror(r));
    return 1;
  }
  struct sockaddr_in got;
  int len = sizeof got;
  uv_tcp_getsockname(&server, (struct sockaddr *)&got, &len);
  printf("PORT %d\n", ntohs(got.sin_port));
  fflush(stdout);
  return uv_run(loop, UV_RUN_DEFAULT);
}
