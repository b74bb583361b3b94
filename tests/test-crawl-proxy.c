/* test-crawl-proxy.c - conc-proxy-pool (crawl/proxy-pool.c), the seed's
 * proxy pool: a fetcher process and a validator process.
 *
 * ctest runs it under tools/crawl-site.sh (nginx serves the test URL).
 * Candidates: a real proxy (Debian's tinyproxy, started here on a free
 * loopback port), dead loopback addresses (nothing listening), a
 * black hole (a socket that listens but never answers: the check must
 * time out), and malformed lines.  Only the tinyproxy address may come
 * out as valid, and each other candidate must be rejected for its own
 * reason.  Readiness is waited for by polling connect(), never by a fixed
 * sleep.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define PROXY_BIN CRAWL_BIN_DIR "/conc-proxy-pool"

/* A listening loopback socket on a free port; *port receives it. */
static int listener(int *port) {
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ck_assert_int_ge(s, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_eq(bind(s, (struct sockaddr *)&a, sizeof a), 0);
  ck_assert_int_eq(listen(s, 16), 0);
  socklen_t n = sizeof a;
  ck_assert_int_eq(getsockname(s, (struct sockaddr *)&a, &n), 0);
  *port = ntohs(a.sin_port);
  return s;
}

static bool accepts(int port) {
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = connect(s, (struct sockaddr *)&a, sizeof a) == 0;
  close(s);
  return ok;
}

/* Start tinyproxy on a free port (a port seen free, then given to it;
 * retried if another process took it meanwhile). */
static pid_t tinyproxy(const char *dir, int *port) {
  for (int attempt = 0; attempt < 10; attempt++) {
    int s = listener(port);
    close(s);
    char conf[512];
    snprintf(conf, sizeof conf, "%s/tinyproxy.conf", dir);
    FILE *f = fopen(conf, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "Port %d\nListen 127.0.0.1\nTimeout 30\nAllow 127.0.0.1\n"
               "MaxClients 32\nLogLevel Critical\n",
            *port);
    fclose(f);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      int null = open("/dev/null", O_WRONLY);
      dup2(null, 1);
      dup2(null, 2);
      execlp("tinyproxy", "tinyproxy", "-d", "-c", conf, (char *)NULL);
      _exit(127);
    }
    for (int i = 0; i < 1000; i++) {
      if (accepts(*port))
        return pid;
      int st;
      if (waitpid(pid, &st, WNOHANG) == pid)
        break; /* could not bind: try another port */
      usleep(5000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
  }
  ck_abort_msg("tinyproxy did not start");
  return -1;
}

static int run_pool(const char *candidates, double timeout, char **out,
                    char **err) {
  char dir[] = "/tmp/crawl-proxy.XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char in[600], errf[600], cmd[2400];
  snprintf(in, sizeof in, "%s/candidates", dir);
  snprintf(errf, sizeof errf, "%s/stderr", dir);
  FILE *f = fopen(in, "w");
  fputs(candidates, f);
  fclose(f);
  snprintf(cmd, sizeof cmd, "'%s' -t %g -u '%srobots.txt' '%s' 2>'%s'",
           PROXY_BIN, timeout, getenv("CRAWL_SITE_URL"), in, errf);
  int st = conc_test_capture(cmd, out);
  snprintf(cmd, sizeof cmd, "cat '%s'; rm -rf '%s'", errf, dir);
  ck_assert_int_eq(conc_test_capture(cmd, err), 0);
  return WEXITSTATUS(st);
}

START_TEST(proxy_pool_tinyproxy_and_dead_addresses) {
  ck_assert_ptr_nonnull(getenv("CRAWL_SITE_URL"));
  char dir[] = "/tmp/crawl-tinyproxy.XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  int tp_port, hole_port, dead_port;
  pid_t tp = tinyproxy(dir, &tp_port);
  int hole = listener(&hole_port); /* listens, never accepts or answers */
  int dead = listener(&dead_port);
  close(dead); /* nothing listens there now */
  char cand[1024];
  snprintf(cand, sizeof cand,
           "# candidates, as a proxy list site gives them\n"
           "127.0.0.1:%d\n"
           "127.0.0.1:%d\n"
           "http://127.0.0.1:%d/\n"
           "127.0.0.1:1\n"
           "not-a-proxy\n"
           "127.0.0.1:99999\n"
           "127.0.0.1:\n",
           tp_port, dead_port, hole_port);
  char *out, *err;
  int rc = run_pool(cand, 1.0, &out, &err);
  char want[64];
  snprintf(want, sizeof want, "127.0.0.1:%d\n", tp_port);
  ck_assert_msg(rc == 0, "status %d, stderr:\n%s", rc, err);
  ck_assert_str_eq(out, want);
  char line[128];
  snprintf(line, sizeof line, "127.0.0.1:%d: ok\n", tp_port);
  ck_assert_msg(strstr(err, line), "%s", err);
  snprintf(line, sizeof line, "127.0.0.1:%d: connect:", dead_port);
  ck_assert_msg(strstr(err, line), "%s", err);
  snprintf(line, sizeof line, "http://127.0.0.1:%d/: timeout:", hole_port);
  ck_assert_msg(strstr(err, line), "%s", err);
  ck_assert(strstr(err, "127.0.0.1:1: connect:"));
  ck_assert(strstr(err, "not-a-proxy: syntax:"));
  ck_assert(strstr(err, "127.0.0.1:99999: syntax:"));
  ck_assert(strstr(err, "127.0.0.1:: syntax:"));
  ck_assert(strstr(err, "7 candidates, 1 valid"));
  /* two processes did the work */
  int fp = 0, vp = 0;
  const char *p = strstr(err, "(fetcher pid ");
  ck_assert_ptr_nonnull(p);
  ck_assert_int_eq(sscanf(p, "(fetcher pid %d, validator pid %d)", &fp, &vp),
                   2);
  ck_assert_int_gt(fp, 0);
  ck_assert_int_gt(vp, 0);
  ck_assert_int_ne(fp, vp);
  free(out);
  free(err);

  /* only dead ones: nothing valid, status 1 */
  snprintf(cand, sizeof cand, "127.0.0.1:%d\n127.0.0.1:1\n", dead_port);
  ck_assert_int_eq(run_pool(cand, 1.0, &out, &err), 1);
  ck_assert_str_eq(out, "");
  ck_assert(strstr(err, "2 candidates, 0 valid"));
  free(out);
  free(err);

  close(hole);
  kill(tp, SIGTERM);
  waitpid(tp, NULL, 0);
  char rm[128];
  snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
  ck_assert_int_eq(system(rm), 0);
}
END_TEST

START_TEST(proxy_pool_usage) {
  char *out;
  char cmd[512];
  snprintf(cmd, sizeof cmd, "'%s' 2>&1", PROXY_BIN);
  ck_assert_int_eq(WEXITSTATUS(conc_test_capture(cmd, &out)), 2);
  ck_assert(strstr(out, "usage"));
  free(out);
  snprintf(cmd, sizeof cmd, "'%s' -u http://x/ /no/such/file 2>&1", PROXY_BIN);
  ck_assert_int_eq(WEXITSTATUS(conc_test_capture(cmd, &out)), 1);
  ck_assert(strstr(out, "/no/such/file"));
  free(out);
}
END_TEST

CONC_TEST_MAIN("crawl-proxy", proxy_pool_tinyproxy_and_dead_addresses,
               proxy_pool_usage)
