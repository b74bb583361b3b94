/* test-crawl-faults.c - conc-crawl's fetch error paths against a small
 * fault-injecting HTTP server built on conc's coroutine sockets.
 *
 * The server runs a conc loop on its own thread: an accept coroutine and
 * one coroutine per connection (conc_tcp_accept, conc_sock_read_until,
 * conc_sock_write_all, conc_coro_sleep).  Every answer closes the
 * connection.  Addresses:
 *   /ok          200 with a short body
 *   /404         404
 *   /503         503, always (counted)
 *   /flaky       503 the first time, then 200
 *   /reset       the connection is reset (SO_LINGER 0) after the request
 *   /slow        200 with a 1 MB Content-Length, then a byte every 50 ms
 *   /timeout     reads the request and never answers
 *   /loop        302 to itself
 *   /ftp         302 to an ftp:// address
 *   /big         200 with a 2 MiB Content-Length (over the 1 MiB cap)
 *   /big-stream  200 without a length, streaming 4 MiB
 *   /bomb        gzip-encoded zeros: 16 KiB on the wire, 16 MiB decoded
 *   /            an HTML page linking every fault as an image
 *   /robots.txt  404 (everything allowed)
 * The fetch cases call fetch_url (crawl/fetch.c, the blocking form of the
 * threads and processes engines); the last case crawls / with conc-crawl's
 * three engines and checks that they report the same failures.  The
 * server is stopped by a coroutine spawned from the test thread
 * (conc_loop_spawn_threadsafe) that closes the listening socket; no sleep
 * orders anything (timeouts are asserted as lower bounds only).
 */
#include "harness.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include <conc/net.h>

#include "../crawl/fetch.h"

typedef struct fsrv {
  pthread_t th;
  conc_loop *loop;
  int lfd, port, destroyed;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool ready;
  atomic_int hits_503, hits_flaky, hits_reset;
  char *bomb;
  size_t bomb_len;
} fsrv;

typedef struct conn {
  fsrv *s;
  int fd;
} conn;

static int say(int fd, const char *head, const void *body, size_t n) {
  if (conc_sock_write_all(fd, head, strlen(head), 10, NULL) != 0)
    return -1;
  return n ? conc_sock_write_all(fd, body, n, 10, NULL) : 0;
}

static void simple(int fd, int status, const char *reason, const char *body) {
  char h[512];
  snprintf(h, sizeof h,
           "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n"
           "Content-Length: %zu\r\nConnection: close\r\n\r\n",
           status, reason, strlen(body));
  say(fd, h, body, strlen(body));
}

static const char index_html[] =
    "<html><body><a href=\"/404\">gone</a>\n"
    "<img src=\"/ok\"><img src=\"/404\"><img src=\"/503\">"
    "<img src=\"/flaky\"><img src=\"/reset\"><img src=\"/slow\">"
    "<img src=\"/timeout\"><img src=\"/loop\"><img src=\"/ftp\">"
    "<img src=\"/big\"><img src=\"/big-stream\"><img src=\"/bomb\">"
    "</body></html>\n";

static int handle(void *arg, void **result) {
  (void)result;
  conn *c = arg;
  fsrv *s = c->s;
  int fd = c->fd;
  free(c);
  char req[4096];
  size_t len = 0;
  double deadline = conc_now() + 20;
  req[0] = 0;
  while (!strstr(req, "\r\n\r\n")) {
    size_t n = 0;
    if (len + 1 >= sizeof req ||
        conc_sock_read_until(fd, req + len, sizeof req - 1 - len, deadline,
                             &n) != 0 ||
        n == 0) {
      conc_sock_close(fd);
      return 0;
    }
    len += n;
    req[len] = 0;
  }
  char path[256] = "";
  sscanf(req, "GET %255s", path);
  if (strcmp(path, "/ok") == 0) {
    simple(fd, 200, "OK", "hello from the fault server\n");
  } else if (strcmp(path, "/") == 0) {
    char h[256];
    snprintf(h, sizeof h,
             "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
             "Content-Length: %zu\r\nConnection: close\r\n\r\n",
             strlen(index_html));
    say(fd, h, index_html, strlen(index_html));
  } else if (strcmp(path, "/503") == 0) {
    atomic_fetch_add(&s->hits_503, 1);
    simple(fd, 503, "Service Unavailable", "busy\n");
  } else if (strcmp(path, "/flaky") == 0) {
    if (atomic_fetch_add(&s->hits_flaky, 1) == 0)
      simple(fd, 503, "Service Unavailable", "busy\n");
    else
      simple(fd, 200, "OK", "recovered\n");
  } else if (strcmp(path, "/reset") == 0) {
    atomic_fetch_add(&s->hits_reset, 1);
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  } else if (strcmp(path, "/slow") == 0) {
    if (say(fd,
            "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\n"
            "Content-Length: 1000000\r\nConnection: close\r\n\r\n",
            NULL, 0) == 0)
      while (conc_now() < deadline && conc_coro_sleep(0.05) == 0 &&
             conc_sock_write_all(fd, "x", 1, 10, NULL) == 0)
        ;
  } else if (strcmp(path, "/timeout") == 0) {
    size_t n;
    while (conc_sock_read_until(fd, req, sizeof req, deadline, &n) == 0 &&
           n > 0)
      ; /* until the client gives up */
  } else if (strcmp(path, "/loop") == 0) {
    say(fd,
        "HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\n"
        "Connection: close\r\n\r\n",
        NULL, 0);
  } else if (strcmp(path, "/ftp") == 0) {
    say(fd,
        "HTTP/1.1 302 Found\r\nLocation: ftp://127.0.0.1/x.png\r\n"
        "Content-Length: 0\r\nConnection: close\r\n\r\n",
        NULL, 0);
  } else if (strcmp(path, "/big") == 0 || strcmp(path, "/big-stream") == 0) {
    bool sized = strcmp(path, "/big") == 0;
    char h[256], chunk[65536];
    memset(chunk, 'b', sizeof chunk);
    snprintf(h, sizeof h,
             "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\n%s"
             "Connection: close\r\n\r\n",
             sized ? "Content-Length: 2097152\r\n" : "");
    if (say(fd, h, NULL, 0) == 0)
      for (int i = 0; i < (sized ? 32 : 64); i++)
        if (conc_sock_write_all(fd, chunk, sizeof chunk, 10, NULL) != 0)
          break;
  } else if (strcmp(path, "/bomb") == 0) {
    char h[256];
    snprintf(h, sizeof h,
             "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\n"
             "Content-Encoding: gzip\r\nContent-Length: %zu\r\n"
             "Connection: close\r\n\r\n",
             s->bomb_len);
    say(fd, h, s->bomb, s->bomb_len);
  } else {
    simple(fd, 404, "Not Found", "no such thing\n");
  }
  conc_sock_close(fd);
  return 0;
}

static int acceptor(void *arg, void **result) {
  (void)result;
  fsrv *s = arg;
  int fd;
  while (conc_tcp_accept(s->lfd, -1, &fd) == 0) {
    conn *c = malloc(sizeof *c);
    if (!c) {
      conc_sock_close(fd);
      continue;
    }
    c->s = s;
    c->fd = fd;
    if (conc_coro_spawn(NULL, handle, c, NULL, NULL) != 0) {
      conc_sock_close(fd);
      free(c);
    }
  }
  return 0;
}

static int stopper(void *arg, void **result) {
  (void)result;
  fsrv *s = arg;
  conc_sock_close(s->lfd);
  return 0;
}

static void *server_main(void *arg) {
  fsrv *s = arg;
  int rc = conc_loop_create(NULL, &s->loop);
  if (rc == 0)
    rc = conc_tcp_listen("127.0.0.1", 0, 64, &s->lfd);
  if (rc == 0)
    rc = conc_sock_local_port(s->lfd, &s->port);
  if (rc == 0)
    rc = conc_coro_spawn(s->loop, acceptor, s, NULL, NULL);
  pthread_mutex_lock(&s->mu);
  s->ready = true;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
  if (rc == 0)
    conc_loop_run(s->loop);
  if (s->loop)
    s->destroyed = conc_loop_destroy(s->loop);
  return NULL;
}

/* 16 MiB of zeros, gzip-compressed (by gzip(1)). */
static void make_bomb(fsrv *s) {
  FILE *p = popen("head -c 16777216 /dev/zero | gzip -9c", "r");
  ck_assert_ptr_nonnull(p);
  size_t cap = 1 << 20;
  s->bomb = malloc(cap);
  size_t n;
  while ((n = fread(s->bomb + s->bomb_len, 1, cap - s->bomb_len, p)) > 0)
    s->bomb_len += n;
  ck_assert_int_eq(pclose(p), 0);
  ck_assert(s->bomb_len > 1000 && s->bomb_len < cap);
}

static fsrv *server_start(bool bomb) {
  fsrv *s = calloc(1, sizeof *s);
  if (bomb)
    make_bomb(s);
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  ck_assert_int_eq(pthread_create(&s->th, NULL, server_main, s), 0);
  pthread_mutex_lock(&s->mu);
  while (!s->ready)
    pthread_cond_wait(&s->cv, &s->mu);
  pthread_mutex_unlock(&s->mu);
  ck_assert_int_gt(s->port, 0);
  return s;
}

static void server_stop(fsrv *s) {
  conc_future *f = NULL;
  ck_assert_int_eq(conc_loop_spawn_threadsafe(s->loop, stopper, s, &f), 0);
  ck_assert_int_eq(pthread_join(s->th, NULL), 0);
  conc_future_release(f);
  ck_assert_int_eq(s->destroyed, 0);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  free(s->bomb);
  free(s);
}

static fetch_opts opts(double timeout) {
  fetch_opts o = {.connect_timeout = 5,
                  .timeout = timeout,
                  .retries = 2,
                  .backoff = 0.01,
                  .max_redirects = 5,
                  .max_body = 1 << 20,
                  .max_decoded = 1 << 20,
                  .user_agent = "conc-crawl-test"};
  return o;
}

static int get(fsrv *s, const fetch_opts *o, const char *path,
               fetch_result *r) {
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", s->port, path);
  CURL *h = curl_easy_init();
  ck_assert_ptr_nonnull(h);
  int kind = fetch_url(h, o, url, r);
  curl_easy_cleanup(h);
  return kind;
}

START_TEST(faults_ok_and_404) {
  fsrv *s = server_start(false);
  fetch_opts o = opts(10);
  fetch_result r;
  ck_assert_int_eq(get(s, &o, "/ok", &r), FETCH_OK);
  ck_assert_str_eq(r.body, "hello from the fault server\n");
  ck_assert_str_eq(r.content_type, "text/plain");
  ck_assert_uint_eq(r.requests, 1);
  fetch_result_free(&r);
  ck_assert_int_eq(get(s, &o, "/404", &r), FETCH_HTTP_404);
  ck_assert_int_eq(r.status, 404);
  ck_assert_uint_eq(r.attempts, 1); /* not retried */
  ck_assert_str_eq(r.error, "HTTP 404");
  fetch_result_free(&r);
  server_stop(s);
}
END_TEST

START_TEST(faults_5xx_retried_with_backoff) {
  fsrv *s = server_start(false);
  fetch_opts o = opts(10);
  o.backoff = 0.05;
  fetch_result r;
  double t0 = conc_now();
  ck_assert_int_eq(get(s, &o, "/503", &r), FETCH_HTTP_5XX);
  /* backoff 0.05 then 0.1 before the two retries */
  ck_assert(conc_now() - t0 >= 0.15);
  ck_assert_uint_eq(r.attempts, 3);
  ck_assert_uint_eq(r.requests, 3);
  ck_assert_str_eq(r.error, "HTTP 503 (after 3 attempts)");
  ck_assert_int_eq(atomic_load(&s->hits_503), 3);
  fetch_result_free(&r);
  ck_assert_int_eq(get(s, &o, "/flaky", &r), FETCH_OK);
  ck_assert_uint_eq(r.attempts, 2);
  ck_assert_str_eq(r.body, "recovered\n");
  fetch_result_free(&r);
  server_stop(s);
}
END_TEST

START_TEST(faults_reset_retried) {
  fsrv *s = server_start(false);
  fetch_opts o = opts(10);
  fetch_result r;
  ck_assert_int_eq(get(s, &o, "/reset", &r), FETCH_RESET);
  ck_assert_uint_eq(r.attempts, 3);
  ck_assert_int_eq(atomic_load(&s->hits_reset), 3);
  ck_assert_ptr_nonnull(strstr(r.error, "(after 3 attempts)"));
  fetch_result_free(&r);
  server_stop(s);
}
END_TEST

START_TEST(faults_slow_body_and_no_answer_time_out) {
  fsrv *s = server_start(false);
  fetch_opts o = opts(0.5);
  fetch_result r;
  double t0 = conc_now();
  ck_assert_int_eq(get(s, &o, "/slow", &r), FETCH_TIMEOUT);
  ck_assert(conc_now() - t0 >= 0.5);
  ck_assert_uint_eq(r.attempts, 1); /* timeouts are not retried */
  ck_assert_ptr_nonnull(strstr(r.error, "timed out"));
  fetch_result_free(&r);
  t0 = conc_now();
  ck_assert_int_eq(get(s, &o, "/timeout", &r), FETCH_TIMEOUT);
  ck_assert(conc_now() - t0 >= 0.5);
  fetch_result_free(&r);
  server_stop(s);
}
END_TEST

START_TEST(faults_redirect_loop_and_scheme) {
  fsrv *s = server_start(false);
  fetch_opts o = opts(10);
  fetch_result r;
  ck_assert_int_eq(get(s, &o, "/loop", &r), FETCH_REDIRECTS);
  ck_assert_uint_ge(r.requests, 6); /* the first and 5 redirects */
  fetch_result_free(&r);
  ck_assert_int_eq(get(s, &o, "/ftp", &r), FETCH_SCHEME);
  fetch_result_free(&r);
  /* pages: a redirect is not followed but returned (one request) */
  o.no_follow = true;
  ck_assert_int_eq(get(s, &o, "/loop", &r), FETCH_OK);
  ck_assert_uint_eq(r.requests, 1);
  ck_assert_int_eq(r.status, 302);
  ck_assert_ptr_nonnull(r.location);
  char want[64];
  snprintf(want, sizeof want, "http://127.0.0.1:%d/loop", s->port);
  ck_assert_str_eq(r.location, want);
  ck_assert_uint_eq(r.len, 0);
  fetch_result_free(&r);
  ck_assert_ptr_null(r.location);
  ck_assert_int_eq(get(s, &o, "/ok", &r), FETCH_OK); /* no redirect: body */
  ck_assert_ptr_null(r.location);
  ck_assert_str_eq(r.body, "hello from the fault server\n");
  fetch_result_free(&r);
  server_stop(s);
}
END_TEST

START_TEST(faults_oversize_and_gzip_bomb) {
  fsrv *s = server_start(true);
  fetch_opts o = opts(10);
  fetch_result r;
  ck_assert_int_eq(get(s, &o, "/big", &r), FETCH_TOO_LARGE); /* by length */
  ck_assert_ptr_null(r.body);
  fetch_result_free(&r);
  ck_assert_int_eq(get(s, &o, "/big-stream", &r), FETCH_TOO_LARGE);
  fetch_result_free(&r);
  /* the bomb is small on the wire: the decoded cap stops it */
  ck_assert_uint_lt(s->bomb_len, o.max_body);
  ck_assert_int_eq(get(s, &o, "/bomb", &r), FETCH_TOO_LARGE);
  ck_assert_ptr_nonnull(strstr(r.error, "over the limit"));
  fetch_result_free(&r);
  server_stop(s);
}
END_TEST

START_TEST(faults_stop_and_slots) {
  fsrv *s = server_start(false);
  limits l;
  ck_assert_int_eq(limits_init(&l, 2, 0, false), 0);
  atomic_int stop = 0;
  fetch_opts o = opts(10);
  o.limits = &l;
  o.stop = &stop;
  fetch_result r;
  ck_assert_int_eq(get(s, &o, "/503", &r), FETCH_HTTP_5XX);
  fetch_result_free(&r);
  ck_assert_int_eq(get(s, &o, "/reset", &r), FETCH_RESET);
  fetch_result_free(&r);
  /* failures gave their host slots back */
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/", s->port);
  unsigned a, b;
  ck_assert_int_eq(limits_acquire(&l, url, 0, &a), 0);
  ck_assert_int_eq(limits_acquire(&l, url, 0, &b), 0);
  limits_release(&l, a);
  limits_release(&l, b);
  atomic_store(&stop, 1);
  ck_assert_int_eq(get(s, &o, "/ok", &r), FETCH_INTERRUPTED);
  ck_assert_uint_eq(r.requests, 0);
  fetch_result_free(&r);
  limits_destroy(&l);
  server_stop(s);
}
END_TEST

/* The part of a summary that must not depend on the engine. */
static char *comparable(const char *json) {
  const char *a = strstr(json, "\"pages\""), *b = strstr(json, "\"pid\"");
  const char *e = strstr(json, "\"errors\"");
  ck_assert(a && b && e && a < b);
  size_t n1 = (size_t)(b - a), n2 = strlen(e);
  char *t = malloc(n1 + n2 + 1);
  memcpy(t, a, n1);
  memcpy(t + n1, e, n2 + 1);
  return t;
}

START_TEST(faults_every_engine_reports_the_same) {
  fsrv *s = server_start(true);
  static const char *const engines[] = {"threads", "processes",
                                        "coroutines"};
  char *ref = NULL;
  for (int i = 0; i < 3; i++) {
    char dir[] = "/tmp/crawl-faults.XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char cmd[1024], *json;
    atomic_store(&s->hits_flaky, 0); /* a 503 first for every engine */
    snprintf(cmd, sizeof cmd,
             "'%s' -e %s --progress off --timeout 1 --max-body 1M "
             "--max-decoded 1M --backoff 0.01 -c 8 -o '%s/out' "
             "http://127.0.0.1:%d/",
             CRAWL_BIN, engines[i], dir, s->port);
    ck_assert_int_eq(conc_test_capture(cmd, &json), 0);
    char *c = comparable(json);
    ck_assert_msg(strstr(c, "\"images\": 2,"), "%s", json); /* ok, flaky */
    for (const char *k = "http_404\0http_5xx\0reset\0timeout\0"
                         "too_many_redirects\0scheme\0too_large\0";
         *k; k += strlen(k) + 1) {
      char needle[64];
      snprintf(needle, sizeof needle, "\"kind\": \"%s\"", k);
      ck_assert_msg(strstr(c, needle), "%s: no %s in %s", engines[i], k,
                    json);
    }
    if (!ref)
      ref = c;
    else {
      ck_assert_str_eq(ref, c);
      free(c);
    }
    free(json);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
  }
  free(ref);
  server_stop(s);
}
END_TEST

CONC_TEST_MAIN("crawl-faults", faults_ok_and_404,
               faults_5xx_retried_with_backoff, faults_reset_retried,
               faults_slow_body_and_no_answer_time_out,
               faults_redirect_loop_and_scheme, faults_oversize_and_gzip_bomb,
               faults_stop_and_slots, faults_every_engine_reports_the_same)
