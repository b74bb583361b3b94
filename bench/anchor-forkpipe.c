/* bench/anchor-forkpipe.c - anchor for workload 9: the plain C process pool
 * a C programmer writes by hand.  N workers forked from the caller, each
 * with a pipe pair (requests in, results out); messages are a 64-bit length
 * and the bytes.  Tasks go round-robin (task i to worker i mod N), so the
 * results of each worker come back in order and the parent reads them in
 * task order.  Reads are buffered (one read() takes every result that is
 * there), writes are batched, pipes keep their default size.
 *
 *   anchor-forkpipe one N          tiny tasks, one in flight per worker
 *   anchor-forkpipe pipe W N       tiny tasks, up to W in flight per worker
 *                                  (requests sent in batches of W / 2)
 *   anchor-forkpipe big N          1 MiB in, 1 MiB out, one in flight per
 *                                  worker
 *   anchor-forkpipe start N [MB]   N times: fork the workers and get a first
 *                                  result (after touching MB MiB first)
 *
 * Two workers.  The tasks and checks are procpool-common.h's, as in
 * bench-procpool.c; a wrong result exits 2.  Writes to a dead worker fail
 * with EPIPE (SIGPIPE ignored) and fail the row.
 */
#include "procpool-common.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#define WORKERS 2
#define RBUF (64 * 1024)

enum { T_TINY, T_BIG };

typedef struct rd {
  int fd;
  unsigned char buf[RBUF];
  size_t off, len;
} rd;

typedef struct wr {
  int fd;
  unsigned char *buf;
  size_t len, cap;
} wr;

static void write_all(int fd, const void *p, size_t n) {
  const unsigned char *c = p;
  while (n) {
    ssize_t k = write(fd, c, n);
    if (k < 0 && errno == EINTR) continue;
    BENCH_CHECK(k > 0, "write: %s", strerror(errno));
    c += k;
    n -= (size_t)k;
  }
}

static void wr_add(wr *w, const void *p, size_t n) {
  if (w->len + n > w->cap) {
    w->cap = (w->len + n) * 2;
    w->buf = realloc(w->buf, w->cap);
    BENCH_CHECK(w->buf, "out of memory");
  }
  memcpy(w->buf + w->len, p, n);
  w->len += n;
}

static void wr_flush(wr *w) {
  if (w->len) write_all(w->fd, w->buf, w->len);
  w->len = 0;
}

/* Read exactly n bytes; before blocking, flush(ctx) sends what is pending.
 * Returns 0, or -1 on end-of-file before the first byte. */
static int rd_exact(rd *r, void *dst, size_t n, void (*flush)(void *), void *ctx) {
  unsigned char *d = dst;
  size_t want = n;
  while (n) {
    if (r->off < r->len) {
      size_t k = r->len - r->off < n ? r->len - r->off : n;
      memcpy(d, r->buf + r->off, k);
      r->off += k;
      d += k;
      n -= k;
      continue;
    }
    if (flush) flush(ctx);
    ssize_t k;
    if (n >= RBUF) /* large: straight into the destination */
      k = read(r->fd, d, n);
    else
      k = read(r->fd, r->buf, RBUF);
    if (k < 0 && errno == EINTR) continue;
    if (k == 0 && n == want) return -1;
    BENCH_CHECK(k > 0, "read: %s", k < 0 ? strerror(errno) : "unexpected end of file");
    if (n >= RBUF) {
      d += k;
      n -= (size_t)k;
    } else {
      r->off = 0;
      r->len = (size_t)k;
    }
  }
  return 0;
}

/* ---- worker ---- */

static void wflush(void *ctx) { wr_flush(ctx); }

static void worker_main(int in, int out) {
  static rd r;
  wr w = {out, NULL, 0, 0};
  unsigned char *buf = NULL, *obuf = NULL;
  size_t cap = 0;
  r.fd = in;
  for (;;) {
    uint64_t len;
    if (rd_exact(&r, &len, sizeof len, wflush, &w) < 0) break;
    if (len > cap) {
      cap = len;
      buf = realloc(buf, cap);
      obuf = realloc(obuf, cap);
      BENCH_CHECK(buf && obuf, "out of memory");
    }
    rd_exact(&r, buf, len, wflush, &w);
    if (len == 8) {
      uint64_t x;
      memcpy(&x, buf, 8);
      x = pp_tiny(x);
      wr_add(&w, &len, sizeof len);
      wr_add(&w, &x, sizeof x);
    } else { /* payload */
      pp_big(buf, len, obuf);
      wr_flush(&w);
      write_all(out, &len, sizeof len);
      write_all(out, obuf, len);
    }
  }
  wr_flush(&w);
  _exit(0);
}

/* ---- pool ---- */

typedef struct fpool {
  int pid[WORKERS];
  wr w[WORKERS];
  rd *r[WORKERS];
} fpool;

static void pool_start(fpool *p) {
  for (int i = 0; i < WORKERS; i++) {
    int req[2], res[2];
    BENCH_CHECK(pipe2(req, O_CLOEXEC) == 0 && pipe2(res, O_CLOEXEC) == 0, "pipe");
    pid_t pid = fork();
    BENCH_CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      for (int j = 0; j < i; j++) { /* siblings' pipes */
        close(p->w[j].fd);
        close(p->r[j]->fd);
      }
      close(req[1]);
      close(res[0]);
      worker_main(req[0], res[1]);
    }
    close(req[0]);
    close(res[1]);
    p->pid[i] = pid;
    p->w[i] = (wr){req[1], NULL, 0, 0};
    p->r[i] = calloc(1, sizeof(rd));
    BENCH_CHECK(p->r[i], "out of memory");
    p->r[i]->fd = res[0];
  }
}

static void pool_stop(fpool *p) {
  for (int i = 0; i < WORKERS; i++) {
    close(p->w[i].fd);
    close(p->r[i]->fd);
    free(p->w[i].buf);
    free(p->r[i]);
  }
  for (int i = 0; i < WORKERS; i++) {
    int st;
    BENCH_CHECK(waitpid(p->pid[i], &st, 0) == p->pid[i] && WIFEXITED(st) &&
                    WEXITSTATUS(st) == 0,
                "worker %d did not exit cleanly", i);
  }
}

static void pflush(void *ctx) {
  fpool *p = ctx;
  for (int i = 0; i < WORKERS; i++) wr_flush(&p->w[i]);
}

static void send_tiny(fpool *p, uint64_t i, uint64_t x) {
  uint64_t len = 8;
  wr *w = &p->w[i % WORKERS];
  wr_add(w, &len, sizeof len);
  wr_add(w, &x, sizeof x);
}

static void recv_tiny(fpool *p, uint64_t i, uint64_t x) {
  uint64_t m[2];
  BENCH_CHECK(rd_exact(p->r[i % WORKERS], m, sizeof m, pflush, p) == 0, "worker gone");
  BENCH_CHECK(m[0] == 8 && m[1] == pp_tiny(x), "task %llu: wrong result",
              (unsigned long long)i);
}

/* n tiny tasks (inputs first+i), up to w in flight per worker; new
 * requests go out in batches once half the window has drained. */
static void run_tiny(fpool *p, uint64_t first, long n, long w) {
  long sent = 0, lim = w * WORKERS, low = w == 1 ? lim - 1 : lim / 2;
  for (long i = 0; i < n; i++) {
    if (sent - i <= low)
      for (; sent < n && sent - i < lim; sent++)
        send_tiny(p, (uint64_t)sent, first + (uint64_t)sent);
    recv_tiny(p, (uint64_t)i, first + (uint64_t)i);
  }
}

static void row_tiny(long n, long w) {
  fpool p;
  pool_start(&p);
  run_tiny(&p, 1u << 30, 200, w); /* warm-up */
  double c0 = pp_total_cpu(p.pid, WORKERS);
  int64_t t0 = bench_now_ns();
  run_tiny(&p, 1, n, w);
  int64_t el = bench_now_ns() - t0;
  double cpu = pp_total_cpu(p.pid, WORKERS) - c0;
  pool_stop(&p);
  char extra[96];
  snprintf(extra, sizeof extra, "cpu_task_us=%.3f", cpu / (double)n * 1e6);
  bench_result((double)el / (double)n, "ns/task", extra);
}

static void row_big(long n) {
  unsigned char *in[PP_NBUF], *expect[PP_NBUF];
  unsigned char *out = malloc(PP_BIG);
  BENCH_CHECK(out, "out of memory");
  pp_big_inputs(in, expect);
  fpool p;
  pool_start(&p);
  int64_t el = 0;
  for (int pass = 0; pass < 2; pass++) { /* pass 0: warm-up */
    long cnt = pass ? n : 2 * WORKERS, sent = 0;
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < cnt; i++) {
      for (; sent < cnt && sent - i < WORKERS; sent++) {
        uint64_t len = PP_BIG;
        int fd = p.w[sent % WORKERS].fd;
        write_all(fd, &len, sizeof len);
        write_all(fd, in[sent % PP_NBUF], PP_BIG);
      }
      uint64_t len;
      rd *r = p.r[i % WORKERS];
      BENCH_CHECK(rd_exact(r, &len, sizeof len, NULL, NULL) == 0, "worker gone");
      BENCH_CHECK(len == PP_BIG, "task %ld: %llu bytes out", i, (unsigned long long)len);
      rd_exact(r, out, PP_BIG, NULL, NULL);
      BENCH_CHECK(memcmp(out, expect[i % PP_NBUF], PP_BIG) == 0,
                  "payload task %ld: wrong output", i);
    }
    el = bench_now_ns() - t0;
  }
  pool_stop(&p);
  char extra[96];
  snprintf(extra, sizeof extra, "task_us=%.1f", (double)el / (double)n / 1e3);
  bench_result(2.0 * (double)PP_BIG * (double)n / (double)el, "GB/s", extra);
}

static void row_start(long n, long mb) {
  if (mb > 0) pp_ballast((size_t)mb << 20);
  int64_t *t = malloc((size_t)n * sizeof *t);
  BENCH_CHECK(t && n > 0, "bad args");
  for (long i = 0; i < n; i++) {
    fpool p;
    int64_t t0 = bench_now_ns();
    pool_start(&p);
    send_tiny(&p, 0, (uint64_t)i + 7);
    recv_tiny(&p, 0, (uint64_t)i + 7);
    t[i] = bench_now_ns() - t0;
    pool_stop(&p);
  }
  int64_t mn = bench_quantile(t, (size_t)n, 0);
  int64_t p50 = bench_quantile(t, (size_t)n, 0.5);
  char extra[96];
  snprintf(extra, sizeof extra, "min_ms=%.3f parent_mb=%.0f", (double)mn / 1e6,
           (double)bench_status_kb("VmRSS") / 1024.0);
  bench_result((double)p50 / 1e6, "ms", extra);
  free(t);
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  const char *mode = argc > 1 ? argv[1] : "";
  if (strcmp(mode, "one") == 0)
    row_tiny(bench_arg_long(argc, argv, 2, 100000), 1);
  else if (strcmp(mode, "pipe") == 0)
    row_tiny(bench_arg_long(argc, argv, 3, 100000), bench_arg_long(argc, argv, 2, 256));
  else if (strcmp(mode, "big") == 0)
    row_big(bench_arg_long(argc, argv, 2, 200));
  else if (strcmp(mode, "start") == 0)
    row_start(bench_arg_long(argc, argv, 2, 10), bench_arg_long(argc, argv, 3, 0));
  else
    BENCH_FAIL("usage: anchor-forkpipe one|pipe|big|start ...");
  return 0;
}
