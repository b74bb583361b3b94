/* test-crawl-engines.c - conc-crawl end to end against a local nginx site.
 *
 * ctest runs this file under tools/crawl-site.sh, which generates the
 * site (conc-crawl-sitegen: 40 pages, 400 images, the /fault/ addresses)
 * and serves it with nginx on a free loopback port (CRAWL_SITE_URL).
 * Each case runs the conc-crawl binary and reads its JSON summary:
 *   - the three engines give the same files (named by the sha256 of their
 *     bytes, checked here), the same counters and the same per-URL errors,
 *     failures included (404, 503 after retries, dropped connection,
 *     redirect loop, oversized body, slow body timeout, gzip bomb);
 *   - the processes engine really ran a scanner and a downloader process;
 *   - Ctrl-C (SIGINT) stops a crawl cleanly (exit 130, "interrupted") and
 *     a re-run resumes it without fetching stored images again;
 *   - robots.txt is honoured, and ignored with --no-robots.
 * No sleep orders anything: the interrupt waits for the journal to grow.
 */
#include "harness.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "../crawl/sha256.h"

/* Faults: a timeout that slow.png (32 s at 8 KiB/s) always passes and
 * that other transfers never reach, even on a loaded machine under TSan;
 * 1 MiB caps (big.png is 3 MiB, the bomb decodes to 20 MiB); fast
 * retries. */
#define OPTS "--progress off --timeout 5 --max-body 1M --max-decoded 1M " \
             "--backoff 0.01 -c 8"

static const char *site(void) {
  const char *u = getenv("CRAWL_SITE_URL");
  ck_assert_msg(u != NULL, "run under tools/crawl-site.sh (ctest does)");
  return u;
}

static char *tmpdir(void) {
  char *d = strdup("/tmp/crawl-test.XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(d));
  return d;
}

static void rmrf(const char *d) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
  ck_assert_int_eq(system(cmd), 0);
}

/* Run conc-crawl with args into out; its stdout (the summary) in *json. */
static int crawl_run(const char *args, const char *out, char **json) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "'%s' %s -o '%s/out' '%s'", CRAWL_BIN, args, out,
           site());
  int st = conc_test_capture(cmd, json);
  ck_assert_ptr_nonnull(*json);
  return st;
}

/* The number after "key": in the summary. */
static long long field(const char *json, const char *key) {
  char k[64];
  snprintf(k, sizeof k, "\"%s\": ", key);
  const char *p = strstr(json, k);
  ck_assert_msg(p != NULL, "no %s in %s", key, json);
  return atoll(p + strlen(k));
}

/* The part of the summary that must not depend on the engine: from
 * "pages" to "pid", and the errors. */
static char *comparable(const char *json) {
  const char *a = strstr(json, "\"pages\""), *b = strstr(json, "\"pid\"");
  const char *e = strstr(json, "\"errors\"");
  ck_assert(a && b && e && a < b);
  size_t n1 = (size_t)(b - a), n2 = strlen(e);
  char *s = malloc(n1 + n2 + 1);
  memcpy(s, a, n1);
  memcpy(s + n1, e, n2 + 1);
  return s;
}

/* The sorted file names in dir/out (no hidden files), each checked to be
 * the sha256 of its bytes; one per line. */
static char *files(const char *dir) {
  char path[1024], list_cmd[1100];
  snprintf(path, sizeof path, "%s/out", dir);
  snprintf(list_cmd, sizeof list_cmd, "ls '%s'", path);
  char *list;
  ck_assert_int_eq(conc_test_capture(list_cmd, &list), 0);
  char *save = NULL, *copy = strdup(list);
  for (char *n = strtok_r(copy, "\n", &save); n; n = strtok_r(NULL, "\n", &save)) {
    char fp[2048];
    snprintf(fp, sizeof fp, "%s/%s", path, n);
    FILE *f = fopen(fp, "rb");
    ck_assert_ptr_nonnull(f);
    sha256_ctx c;
    sha256_init(&c);
    char buf[8192];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, f)) > 0)
      sha256_update(&c, buf, k);
    fclose(f);
    unsigned char d[32];
    sha256_final(&c, d);
    char hex[65];
    for (int i = 0; i < 32; i++)
      snprintf(hex + 2 * i, 3, "%02x", d[i]);
    ck_assert_msg(strncmp(n, hex, 64) == 0 && n[64] == '.',
                  "%s is not named by its sha256 %s", n, hex);
    ck_assert_msg(strstr(n, ".part") == NULL, "leftover %s", n);
  }
  free(copy);
  return list;
}

static bool has_error(const char *json, const char *what, const char *path,
                      const char *kind) {
  char k[512];
  snprintf(k, sizeof k, "{\"what\": \"%s\", \"url\": \"%s%s\", \"kind\": \"%s\"",
           what, site(), path, kind);
  return strstr(json, k) != NULL;
}

START_TEST(engines_same_results) {
  char *d1 = tmpdir(), *d2 = tmpdir(), *d3 = tmpdir(), *j1, *j2, *j3;
  ck_assert_int_eq(crawl_run("-e threads " OPTS, d1, &j1), 0);
  ck_assert_int_eq(crawl_run("-e processes " OPTS, d2, &j2), 0);
  ck_assert_int_eq(crawl_run("-e coroutines " OPTS, d3, &j3), 0);
  /* the site: 40 pages and /index.html (the start is /); the 4 /r/
   * redirects lead to pages already known, so they are not fetched again
   * (crawl.h); 400 images (2 of them through /ri/ redirects) and 20
   * shared ones; one link into /private/ */
  ck_assert_int_eq(field(j1, "pages"), 41);
  ck_assert_int_eq(field(j1, "images"), 420);
  ck_assert_int_eq(field(j1, "robots_denied"), 1);
  ck_assert_int_eq(field(j1, "failed"), 10);
  ck_assert_int_eq(field(j1, "http_404"), 3);
  ck_assert_int_eq(field(j1, "http_5xx"), 2);
  ck_assert_int_eq(field(j1, "reset"), 1);
  ck_assert_int_eq(field(j1, "too_many_redirects"), 1);
  ck_assert_int_eq(field(j1, "too_large"), 2);
  ck_assert_int_eq(field(j1, "timeout"), 1);
  ck_assert(has_error(j1, "image", "fault/503.png", "http_5xx"));
  ck_assert(has_error(j1, "image", "fault/reset.png", "reset"));
  ck_assert(has_error(j1, "image", "fault/loop/a", "too_many_redirects"));
  ck_assert(has_error(j1, "image", "fault/big.png", "too_large"));
  ck_assert(has_error(j1, "image", "fault/bomb.png", "too_large"));
  ck_assert(has_error(j1, "image", "fault/slow.png", "timeout"));
  ck_assert(has_error(j1, "page", "fault/503.html", "http_5xx"));
  ck_assert(has_error(j1, "page", "p/missing-5.html", "http_404"));
  ck_assert(strstr(j1, "HTTP 503 (after 3 attempts)"));
  /* identical counters, errors and files, whatever the engine */
  char *c1 = comparable(j1), *c2 = comparable(j2), *c3 = comparable(j3);
  ck_assert_str_eq(c1, c2);
  ck_assert_str_eq(c1, c3);
  char *f1 = files(d1), *f2 = files(d2), *f3 = files(d3);
  ck_assert_str_eq(f1, f2);
  ck_assert_str_eq(f1, f3);
  long nfiles = 0;
  for (char *p = f1; *p; p++)
    nfiles += *p == '\n';
  ck_assert_int_eq(nfiles, field(j1, "files"));
  ck_assert_int_lt(nfiles, field(j1, "images")); /* same bytes, one file */
  free(c1), free(c2), free(c3), free(f1), free(f2), free(f3);
  free(j1), free(j2), free(j3);
  rmrf(d1), rmrf(d2), rmrf(d3);
  free(d1), free(d2), free(d3);
}
END_TEST

START_TEST(engines_processes_run_two_processes) {
  char *d = tmpdir(), *j;
  ck_assert_int_eq(crawl_run("-e processes --depth 1 " OPTS, d, &j), 0);
  const char *p = strstr(j, "\"processes\": [");
  ck_assert_ptr_nonnull(p);
  int a = 0, b = 0;
  ck_assert_int_eq(sscanf(p, "\"processes\": [%d, %d]", &a, &b), 2);
  long long parent = field(j, "pid");
  ck_assert_int_gt(a, 0);
  ck_assert_int_gt(b, 0);
  ck_assert_int_ne(a, b);
  ck_assert_int_ne(a, parent);
  ck_assert_int_ne(b, parent);
  ck_assert_int_gt(field(j, "images"), 0);
  free(j);
  rmrf(d);
  free(d);
}
END_TEST

static long journal_lines(const char *dir) {
  char p[1024];
  snprintf(p, sizeof p, "%s/out/.conc-crawl.journal", dir);
  FILE *f = fopen(p, "r");
  if (!f)
    return 0;
  long n = 0;
  int ch;
  while ((ch = fgetc(f)) != EOF)
    n += ch == '\n';
  fclose(f);
  return n;
}

/* Start a slow crawl (rate limited), SIGINT it once it has stored some
 * images, check it stopped cleanly, then resume it to the end. */
static void interrupt_and_resume(const char *engine) {
  char *d = tmpdir(), *jfull, *j;
  char *ref = tmpdir();
  char args[512];
  snprintf(args, sizeof args, "-e %s " OPTS, engine);
  ck_assert_int_eq(crawl_run(args, ref, &jfull), 0);

  char out[1024], json[1100], rate[600];
  snprintf(out, sizeof out, "%s/out", d);
  snprintf(json, sizeof json, "%s/summary.json", d);
  snprintf(rate, sizeof rate, "%s --rate 100", args);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    char *argv[64];
    int n = 0;
    argv[n++] = (char *)CRAWL_BIN;
    char *save = NULL;
    for (char *t = strtok_r(rate, " ", &save); t; t = strtok_r(NULL, " ", &save))
      argv[n++] = t;
    argv[n++] = (char *)"-o";
    argv[n++] = out;
    argv[n++] = (char *)"--json";
    argv[n++] = json;
    argv[n++] = (char *)site();
    argv[n] = NULL;
    execv(CRAWL_BIN, argv);
    _exit(127);
  }
  /* wait (by polling the journal, not by sleeping a fixed time) until 20
   * images are stored */
  while (journal_lines(d) < 20) {
    int st;
    ck_assert_int_eq(waitpid(pid, &st, WNOHANG), 0);
    usleep(10000);
  }
  ck_assert_int_eq(kill(pid, SIGINT), 0);
  int st;
  ck_assert_int_eq(waitpid(pid, &st, 0), pid);
  ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 130, "status %d", st);
  char *cat;
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "cat '%s'", json);
  ck_assert_int_eq(conc_test_capture(cmd, &cat), 0);
  ck_assert_ptr_nonnull(strstr(cat, "\"interrupted\": true"));
  long stored = journal_lines(d);
  ck_assert_int_lt(stored, field(jfull, "images"));
  free(cat);

  /* resume */
  ck_assert_int_eq(crawl_run(args, d, &j), 0);
  ck_assert_ptr_nonnull(strstr(j, "\"interrupted\": false"));
  ck_assert_int_eq(field(j, "images_resumed"), stored);
  ck_assert_int_eq(field(j, "images") + stored, field(jfull, "images"));
  ck_assert_int_eq(field(j, "requests") + stored, field(jfull, "requests"));
  char *f1 = files(ref), *f2 = files(d);
  ck_assert_str_eq(f1, f2);
  free(f1), free(f2), free(j), free(jfull);
  rmrf(d), rmrf(ref);
  free(d), free(ref);
}

START_TEST(engines_threads_interrupt_and_resume) {
  interrupt_and_resume("threads");
}
END_TEST

START_TEST(engines_processes_interrupt_and_resume) {
  interrupt_and_resume("processes");
}
END_TEST

START_TEST(engines_coroutines_interrupt_and_resume) {
  interrupt_and_resume("coroutines");
}
END_TEST

/* The coroutines engine's per-host limit without blocking: with
 * --per-host 1 every URL of the one host waits on the host's slot list
 * in turn, and the results are those of 16 at a time. */
START_TEST(engines_coroutines_per_host) {
  char *d = tmpdir(), *j, *d2 = tmpdir(), *j2;
  ck_assert_int_eq(crawl_run("-e coroutines --depth 1 " OPTS, d, &j), 0);
  ck_assert_int_eq(
      crawl_run("-e coroutines --depth 1 --per-host 1 " OPTS, d2, &j2), 0);
  ck_assert_int_gt(field(j, "images"), 0);
  char *c1 = comparable(j), *c2 = comparable(j2);
  ck_assert_str_eq(c1, c2);
  free(c1), free(c2), free(j), free(j2);
  rmrf(d), rmrf(d2);
  free(d), free(d2);
}
END_TEST

START_TEST(engines_robots) {
  char *d = tmpdir(), *j;
  /* robots.txt disallows /private/ for everyone and / for otherbot */
  ck_assert_int_eq(crawl_run("--depth 1 " OPTS, d, &j), 0);
  ck_assert_int_eq(field(j, "robots_denied"), 0); /* depth 1: no private */
  free(j);
  ck_assert_int_eq(crawl_run("--user-agent otherbot/2.0 " OPTS, d, &j), 0);
  ck_assert_int_eq(field(j, "pages"), 0);
  ck_assert_int_eq(field(j, "robots_denied"), 1);
  ck_assert_int_eq(field(j, "requests"), 1); /* robots.txt only */
  free(j);
  rmrf(d);
  ck_assert_int_eq(mkdir(d, 0700), 0);
  ck_assert_int_eq(crawl_run("--no-robots " OPTS, d, &j), 0);
  ck_assert_int_eq(field(j, "robots_denied"), 0);
  ck_assert(has_error(j, "page", "private/secret-6.html", "http_404"));
  free(j);
  rmrf(d);
  free(d);
}
END_TEST

/* Plain progress lines when stderr is not a terminal, and the rate limit
 * (a lower bound on the time only). */
START_TEST(engines_progress_and_rate) {
  char *d = tmpdir(), *err, *j;
  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "'%s' --depth 0 --progress plain --rate 20 -o '%s/out' --json "
           "'%s/s.json' '%s' 2>&1 >/dev/null",
           CRAWL_BIN, d, d, site());
  ck_assert_int_eq(conc_test_capture(cmd, &err), 0);
  ck_assert_msg(strstr(err, "crawl (pages+images): ") && strstr(err, "(done)"),
                "%s", err);
  snprintf(cmd, sizeof cmd, "cat '%s/s.json'", d);
  ck_assert_int_eq(conc_test_capture(cmd, &j), 0);
  long long requests = field(j, "requests");
  ck_assert_int_eq(field(j, "pages"), 1);
  ck_assert_int_gt(requests, 10);
  /* requests start 1/20 s apart: the crawl takes at least
   * (requests - 1) / 20 s (checked with one request to spare) */
  const char *sec = strstr(j, "\"seconds\": ");
  ck_assert_ptr_nonnull(sec);
  double seconds = atof(sec + strlen("\"seconds\": "));
  ck_assert_msg(seconds >= (double)(requests - 2) / 20,
                "%lld requests in %.3f s at 20/s", requests, seconds);
  free(err);
  free(j);
  rmrf(d);
  free(d);
}
END_TEST

START_TEST(engines_usage_errors) {
  char *out;
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "'%s' ftp://x/ 2>&1", CRAWL_BIN);
  ck_assert_int_eq(WEXITSTATUS(conc_test_capture(cmd, &out)), 1);
  ck_assert_ptr_nonnull(strstr(out, "only http and https"));
  free(out);
  snprintf(cmd, sizeof cmd, "'%s' -e fibers http://x/ 2>&1", CRAWL_BIN);
  ck_assert_int_eq(WEXITSTATUS(conc_test_capture(cmd, &out)), 2);
  ck_assert_ptr_nonnull(strstr(out, "unknown engine fibers"));
  free(out);
  snprintf(cmd, sizeof cmd, "'%s' -c 0 http://x/ 2>&1", CRAWL_BIN);
  ck_assert_int_eq(WEXITSTATUS(conc_test_capture(cmd, &out)), 2);
  free(out);
  /* a dead loopback port: the start page fails to connect, no crash */
  char *d = tmpdir();
  snprintf(cmd, sizeof cmd,
           "'%s' --progress off -o '%s/out' --retries 0 http://127.0.0.1:1/",
           CRAWL_BIN, d);
  ck_assert_int_eq(conc_test_capture(cmd, &out), 0);
  ck_assert_ptr_nonnull(strstr(out, "\"kind\": \"connect\""));
  free(out);
  rmrf(d);
  free(d);
}
END_TEST

CONC_TEST_MAIN("crawl-engines", engines_same_results,
               engines_processes_run_two_processes,
               engines_threads_interrupt_and_resume,
               engines_processes_interrupt_and_resume,
               engines_coroutines_interrupt_and_resume,
               engines_coroutines_per_host, engines_robots,
               engines_progress_and_rate, engines_usage_errors)
