/* main.c - conc-crawl: crawl a site for its images (issue 8).
 *
 *   conc-crawl [options] URL
 *
 * Pages are crawled within URL's host, images downloaded into a folder
 * under content-addressed names; a re-run on the same folder resumes.
 * The summary (JSON) goes to stdout or --json FILE; progress to stderr.
 * Exit status: 0 done (per-URL failures are in the summary), 1 error,
 * 2 usage, 130 interrupted (Ctrl-C / SIGTERM; the summary is still
 * written).
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <conc/base.h>
#include <conc/error.h>
#include <conc/shm.h>

#include "engine.h"
#include "extract.h"
#include "report.h"

static void usage(FILE *f) {
  fputs(
      "usage: conc-crawl [options] URL\n"
      "  -e, --engine NAME       processes (default), threads or\n"
      "                          coroutines\n"
      "  -o, --out DIR           image folder (default crawl-out)\n"
      "  -c, --connections N     concurrent transfers (default 16)\n"
      "      --per-host N        concurrent requests per host (default 16)\n"
      "  -d, --depth N           link depth from URL (default unlimited)\n"
      "  -n, --max-pages N       pages at most (default 100000)\n"
      "      --rate R            requests per second at most (default none)\n"
      "      --no-robots         ignore robots.txt\n"
      "      --user-agent S      (default conc-crawl/0.1)\n"
      "      --connect-timeout S seconds (default 10)\n"
      "      --timeout S         seconds per transfer (default 30)\n"
      "      --retries N         on 5xx and resets (default 2)\n"
      "      --backoff S         first retry delay, doubled each time\n"
      "                          (default 0.25)\n"
      "      --max-redirects N   (default 5)\n"
      "      --max-body SIZE     bytes on the wire (default 32M)\n"
      "      --max-decoded SIZE  bytes after decoding (default 64M)\n"
      "      --progress MODE     auto, bar, plain or off (default auto)\n"
      "      --json FILE         write the summary there, not to stdout\n"
      "  -h, --help\n",
      f);
}

static atomic_int *g_stop;

static void on_signal(int sig) {
  (void)sig;
  if (atomic_exchange(g_stop, 1))
    _exit(130); /* a second Ctrl-C: stop now */
}

static bool num(const char *s, double lo, double hi, double *out) {
  char *end;
  double v = strtod(s, &end);
  double m = 1;
  if (end != s && *end) {
    if (strchr("kK", *end))
      m = 1024;
    else if (strchr("mM", *end))
      m = 1024.0 * 1024;
    else if (strchr("gG", *end))
      m = 1024.0 * 1024 * 1024;
    else
      return false;
    if (end[1])
      return false;
  }
  if (end == s || v * m < lo || v * m > hi)
    return false;
  *out = v * m;
  return true;
}

typedef struct shared {
  crawl_counters ctr;
  limits lim;
  atomic_int stop;
} shared;

int main(int argc, char **argv) {
  crawl_opts o;
  crawl_opts_init(&o);
  enum {
    O_PER_HOST = 256, O_RATE, O_NO_ROBOTS, O_UA, O_CTIMEOUT, O_TIMEOUT,
    O_RETRIES, O_BACKOFF, O_REDIRS, O_MAXBODY, O_MAXDEC, O_PROGRESS, O_JSON
  };
  static const struct option longs[] = {
      {"engine", 1, 0, 'e'},         {"out", 1, 0, 'o'},
      {"connections", 1, 0, 'c'},    {"per-host", 1, 0, O_PER_HOST},
      {"depth", 1, 0, 'd'},          {"max-pages", 1, 0, 'n'},
      {"rate", 1, 0, O_RATE},        {"no-robots", 0, 0, O_NO_ROBOTS},
      {"user-agent", 1, 0, O_UA},    {"connect-timeout", 1, 0, O_CTIMEOUT},
      {"timeout", 1, 0, O_TIMEOUT},  {"retries", 1, 0, O_RETRIES},
      {"backoff", 1, 0, O_BACKOFF},  {"max-redirects", 1, 0, O_REDIRS},
      {"max-body", 1, 0, O_MAXBODY}, {"max-decoded", 1, 0, O_MAXDEC},
      {"progress", 1, 0, O_PROGRESS}, {"json", 1, 0, O_JSON},
      {"help", 0, 0, 'h'},           {0, 0, 0, 0}};
  int ch;
  double v;
  while ((ch = getopt_long(argc, argv, "e:o:c:d:n:h", longs, NULL)) != -1) {
    bool ok = true;
    switch (ch) {
    case 'e': o.engine = optarg; break;
    case 'o': o.out_dir = optarg; break;
    case 'c': ok = num(optarg, 1, 4096, &v); o.connections = (unsigned)v; break;
    case O_PER_HOST: ok = num(optarg, 1, 4096, &v); o.per_host = (unsigned)v; break;
    case 'd': ok = num(optarg, -1, 1e6, &v); o.max_depth = (int)v; break;
    case 'n': ok = num(optarg, 1, 1e12, &v); o.max_pages = (long)v; break;
    case O_RATE: ok = num(optarg, 0, 1e9, &o.rate); break;
    case O_NO_ROBOTS: o.robots = false; break;
    case O_UA: o.user_agent = optarg; break;
    case O_CTIMEOUT: ok = num(optarg, 0.001, 1e6, &o.fetch.connect_timeout); break;
    case O_TIMEOUT: ok = num(optarg, 0.001, 1e6, &o.fetch.timeout); break;
    case O_RETRIES: ok = num(optarg, 0, 100, &v); o.fetch.retries = (int)v; break;
    case O_BACKOFF: ok = num(optarg, 0, 3600, &o.fetch.backoff); break;
    case O_REDIRS: ok = num(optarg, 0, 100, &v); o.fetch.max_redirects = (long)v; break;
    case O_MAXBODY: ok = num(optarg, 1, 1e15, &v); o.fetch.max_body = (unsigned long long)v; break;
    case O_MAXDEC: ok = num(optarg, 1, 1e15, &v); o.fetch.max_decoded = (unsigned long long)v; break;
    case O_PROGRESS:
      o.progress = optarg;
      ok = !strcmp(optarg, "auto") || !strcmp(optarg, "bar") ||
           !strcmp(optarg, "plain") || !strcmp(optarg, "off");
      break;
    case O_JSON: o.json = optarg; break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
    if (!ok) {
      fprintf(stderr, "conc-crawl: bad value for an option: %s\n", optarg);
      return 2;
    }
  }
  if (optind != argc - 1) {
    usage(stderr);
    return 2;
  }
  o.start = argv[optind];
  const crawl_engine *engine = crawl_engine_find(o.engine);
  if (!engine) {
    fprintf(stderr, "conc-crawl: unknown engine %s\n", o.engine);
    return 2;
  }

  /* Counters, limits and the stop flag in shared memory: the processes
   * engine's children update them too. */
  conc_shm shm;
  memset(&shm, 0, sizeof shm);
  int rc = conc_shm_create_anon(&shm, sizeof(shared));
  if (rc < 0) {
    fprintf(stderr, "conc-crawl: shared memory: %s\n", conc_strerror(rc));
    return 1;
  }
  shared *sh = conc_shm_addr(&shm);
  if (limits_init(&sh->lim, o.per_host, o.rate, true) < 0) {
    fprintf(stderr, "conc-crawl: limits\n");
    return 1;
  }
  g_stop = &sh->stop;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);

  curl_global_init(CURL_GLOBAL_DEFAULT);
  extract_init();
  crawl c;
  int status = 1;
  if (crawl_init(&c, &o, &sh->ctr, &sh->lim, &sh->stop) == 0) {
    double t0 = conc_now();
    crawl_robots_prefetch(&c, c.start);
    int erc = engine->run(&c);
    double secs = conc_now() - t0;
    struct rusage self, kids;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &kids);
    double cpu = (double)(self.ru_utime.tv_sec + self.ru_stime.tv_sec +
                          kids.ru_utime.tv_sec + kids.ru_stime.tv_sec) +
                 (double)(self.ru_utime.tv_usec + self.ru_stime.tv_usec +
                          kids.ru_utime.tv_usec + kids.ru_stime.tv_usec) /
                     1e6;
    bool stopped = atomic_load(&sh->stop) != 0;
    FILE *f = o.json ? fopen(o.json, "w") : stdout;
    if (!f) {
      perror(o.json);
    } else {
      int wrc = crawl_report_json(f, &c, engine->name, secs, cpu, stopped);
      if ((o.json && fclose(f) != 0) || wrc < 0)
        fprintf(stderr, "conc-crawl: writing the summary failed\n");
      else
        status = erc < 0 ? 1 : stopped ? 130 : 0;
    }
    crawl_destroy(&c);
  }
  curl_global_cleanup();
  limits_destroy(&sh->lim);
  conc_shm_close(&shm);
  return status;
}
