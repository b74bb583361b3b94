/* proxy-pool.c - conc-proxy-pool: the seed's proxy pool (issue 8).
 *
 *   conc-proxy-pool [-u TEST_URL] [-t SECONDS] [-c N] [FILE]
 *
 * The seed tutorial's design: a fetcher process reads candidate proxies
 * (lines "host:port" or "http://host:port", '#' comments; FILE or stdin)
 * and puts each well-formed one on a conc_queue; a validator process
 * takes them and checks each through libcurl (GET TEST_URL through the
 * proxy, connect and total timeout SECONDS, N checks at once on a conc
 * thread pool); the proxies that answered 2xx go into a pool in shared
 * memory guarded by a process-shared conc_lock.  The parent waits for both
 * and prints the valid proxies on stdout, in input order, and one line
 * per candidate on stderr: "ok", or why it was rejected (syntax, connect,
 * timeout, http status, ...).  Exit status 0 if at least one proxy is
 * valid, 1 if none, 2 on a usage error.
 */
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <conc/error.h>
#include <conc/process.h>
#include <conc/queue.h>
#include <conc/shm.h>
#include <conc/sync.h>
#include <conc/thread_pool.h>
#include <curl/curl.h>

#define MAX_CANDIDATES 4096
#define ADDR_MAX 128
#define WHY_MAX 96

/* In shared memory: one slot per candidate line, filled by whichever
 * process decides about it; no pointers inside. */
typedef struct slot {
  char addr[ADDR_MAX];
  char why[WHY_MAX]; /* "" until decided, then "ok" or the reason */
  int valid;
} slot;

typedef struct shared {
  conc_lock lock; /* guards n and the slots' why/valid */
  int n;
  slot slots[MAX_CANDIDATES];
} shared;

static shared *sh;
static conc_queue *q;
static const char *input = "-", *test_url;
static double timeout_s = 5;
static unsigned checks = 16;

static void decide(int i, bool valid, const char *why) {
  conc_lock_acquire(&sh->lock, -1);
  snprintf(sh->slots[i].why, WHY_MAX, "%s", why);
  sh->slots[i].valid = valid;
  conc_lock_release(&sh->lock);
}

/* "host:port" with a DNS-ish host (or an IPv4 address) and a port in
 * 1..65535; an "http://" prefix and a trailing "/" are accepted. */
static bool well_formed(const char *s, char *out) {
  if (strncmp(s, "http://", 7) == 0)
    s += 7;
  size_t n = strlen(s);
  if (n && s[n - 1] == '/')
    n--;
  if (n == 0 || n >= ADDR_MAX)
    return false;
  const char *colon = memrchr(s, ':', n);
  if (!colon || colon == s || colon + 1 == s + n)
    return false;
  for (const char *p = s; p < colon; p++)
    if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-')
      return false;
  long port = 0;
  for (const char *p = colon + 1; p < s + n; p++) {
    if (!isdigit((unsigned char)*p))
      return false;
    port = port * 10 + (*p - '0');
    if (port > 65535)
      return false;
  }
  if (port < 1)
    return false;
  memcpy(out, s, n);
  out[n] = 0;
  return true;
}

/* Process 1: read the candidates, queue the well-formed ones. */
static int fetcher(void *arg) {
  (void)arg;
  FILE *f = strcmp(input, "-") == 0 ? stdin : fopen(input, "r");
  if (!f) {
    perror(input);
    conc_queue_close(q);
    return 1;
  }
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  while ((len = getline(&line, &cap, f)) >= 0) {
    char *s = line, *hash = strchr(line, '#');
    if (hash)
      *hash = 0;
    while (isspace((unsigned char)*s))
      s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
      s[--n] = 0;
    if (n == 0)
      continue;
    conc_lock_acquire(&sh->lock, -1);
    int i = sh->n < MAX_CANDIDATES ? sh->n++ : -1;
    conc_lock_release(&sh->lock);
    if (i < 0)
      break;
    snprintf(sh->slots[i].addr, ADDR_MAX, "%.*s", ADDR_MAX - 1, s);
    char addr[ADDR_MAX];
    if (!well_formed(s, addr)) {
      decide(i, false, "syntax: not host:port");
      continue;
    }
    char msg[ADDR_MAX + 16];
    int m = snprintf(msg, sizeof msg, "%d %s", i, addr);
    conc_queue_put(q, msg, (size_t)m, -1);
  }
  free(line);
  if (f != stdin)
    fclose(f);
  conc_queue_close(q);
  return 0;
}

static size_t discard(char *p, size_t size, size_t n, void *ud) {
  (void)p;
  (void)ud;
  return size * n;
}

typedef struct check_task {
  int i;
  char addr[ADDR_MAX];
} check_task;

/* Check one proxy: GET test_url through it. */
static void *check(void *arg) {
  check_task *t = arg;
  CURL *h = curl_easy_init();
  if (!h) {
    decide(t->i, false, "no memory");
    free(t);
    return NULL;
  }
  char proxy[ADDR_MAX + 8];
  snprintf(proxy, sizeof proxy, "http://%s", t->addr);
  curl_easy_setopt(h, CURLOPT_URL, test_url);
  curl_easy_setopt(h, CURLOPT_PROXY, proxy);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout_s * 1000));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(timeout_s * 1000));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
  curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)(1 << 20));
  CURLcode rc = curl_easy_perform(h);
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  char why[WHY_MAX];
  bool ok = false;
  if (rc == CURLE_OK && status >= 200 && status < 300) {
    ok = true;
    snprintf(why, sizeof why, "ok");
  } else if (rc == CURLE_OK) {
    snprintf(why, sizeof why, "http: status %ld through the proxy", status);
  } else if (rc == CURLE_OPERATION_TIMEDOUT) {
    snprintf(why, sizeof why, "timeout: no answer in %g s", timeout_s);
  } else if (rc == CURLE_COULDNT_CONNECT) {
    snprintf(why, sizeof why, "connect: %s", curl_easy_strerror(rc));
  } else if (rc == CURLE_COULDNT_RESOLVE_PROXY) {
    snprintf(why, sizeof why, "dns: %s", curl_easy_strerror(rc));
  } else {
    snprintf(why, sizeof why, "error: %s", curl_easy_strerror(rc));
  }
  curl_easy_cleanup(h);
  decide(t->i, ok, why);
  free(t);
  return NULL;
}

/* Process 2: check each queued proxy on a thread pool. */
static int validator(void *arg) {
  (void)arg;
  conc_thread_pool_options po;
  conc_thread_pool_options_init(&po);
  po.max_workers = checks;
  po.max_queued = 2 * (size_t)checks;
  po.flags = CONC_EXECUTOR_NO_EXIT_HOOK;
  conc_executor *ex;
  if (conc_thread_pool_create(&po, &ex) < 0)
    return 1;
  for (;;) {
    void *m;
    size_t len;
    if (conc_queue_get(q, &m, &len, -1) < 0)
      break; /* closed and empty */
    check_task *t = calloc(1, sizeof *t);
    if (t && len < ADDR_MAX + 16) {
      char msg[ADDR_MAX + 16];
      memcpy(msg, m, len);
      msg[len] = 0;
      if (sscanf(msg, "%d %127s", &t->i, t->addr) == 2 &&
          conc_executor_submit(ex, check, t, NULL) == 0)
        t = NULL;
    }
    free(t);
    conc_queue_msg_free(m);
  }
  conc_executor_destroy(ex);
  return 0;
}

static void usage(FILE *f) {
  fputs("usage: conc-proxy-pool -u TEST_URL [-t SECONDS] [-c N] [FILE]\n"
        "  -u URL      fetched through each proxy (required)\n"
        "  -t SECONDS  connect and total timeout per check (default 5)\n"
        "  -c N        checks at once (default 16)\n"
        "  FILE        candidates, one host:port per line (default stdin)\n",
        f);
}

int main(int argc, char **argv) {
  int ch;
  while ((ch = getopt(argc, argv, "u:t:c:h")) != -1) {
    switch (ch) {
    case 'u': test_url = optarg; break;
    case 't': timeout_s = atof(optarg); break;
    case 'c': checks = (unsigned)atoi(optarg); break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (!test_url || timeout_s <= 0 || checks < 1 || checks > 1024 ||
      argc - optind > 1) {
    usage(stderr);
    return 2;
  }
  if (optind < argc)
    input = argv[optind];
  curl_global_init(CURL_GLOBAL_DEFAULT);
  conc_shm shm;
  memset(&shm, 0, sizeof shm);
  int rc = conc_shm_create_anon(&shm, sizeof(shared));
  if (rc == 0) {
    sh = conc_shm_addr(&shm);
    rc = conc_lock_init(&sh->lock, CONC_SYNC_SHARED);
  }
  if (rc == 0)
    rc = conc_queue_create(&q, NULL);
  if (rc < 0) {
    fprintf(stderr, "conc-proxy-pool: %s\n", conc_strerror(rc));
    return 1;
  }
  conc_process fp, vp;
  memset(&fp, 0, sizeof fp);
  memset(&vp, 0, sizeof vp);
  conc_process_options po;
  conc_process_options_init(&po);
  po.daemon = true;
  rc = conc_process_start(&vp, validator, NULL, &po);
  if (rc == 0)
    rc = conc_process_start(&fp, fetcher, NULL, &po);
  if (rc < 0) {
    fprintf(stderr, "conc-proxy-pool: starting processes: %s\n",
            conc_strerror(rc));
    conc_queue_close(q);
    conc_process_join(&vp, -1);
    return 1;
  }
  conc_process_join(&fp, -1);
  conc_process_join(&vp, -1);
  int cf = 1, cv = 1, valid = 0;
  conc_process_exitcode(&fp, &cf);
  conc_process_exitcode(&vp, &cv);
  for (int i = 0; i < sh->n; i++) {
    const slot *s = &sh->slots[i];
    fprintf(stderr, "%s: %s\n", s->addr, s->why[0] ? s->why : "not checked");
    if (s->valid) {
      printf("%s\n", s->addr);
      valid++;
    }
  }
  fprintf(stderr, "conc-proxy-pool: %d candidates, %d valid (fetcher pid %d, "
                  "validator pid %d)\n",
          sh->n, valid, conc_process_pid(&fp), conc_process_pid(&vp));
  conc_queue_destroy(q);
  conc_lock_destroy(&sh->lock);
  conc_shm_close(&shm);
  curl_global_cleanup();
  if (cf != 0 || cv != 0)
    return 1;
  return valid > 0 ? 0 : 1;
}
