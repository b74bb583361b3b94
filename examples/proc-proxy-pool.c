/* proc-proxy-pool.c - fetch and validate proxies in two processes.
 *
 * The seed tutorial's proxy-pool shape ("one process fetches proxy IPs
 * while another validates them"):
 *
 *     def fetch(q):                     # process 1
 *         for ip in read_candidates():
 *             q.put(ip)
 *     def validate(q, pool):            # process 2
 *         while (ip := q.get()) is not None:
 *             if check(ip):
 *                 pool.append(ip)       # a Manager().list() in Python
 *
 * On local data, no network: the candidates are lines of a built-in text
 * (as a proxy list site would give them, with junk mixed in).  The
 * validator checks the form (a.b.c.d:port, each part in range), refuses
 * private and reserved ranges, and "probes" the proxy with a deterministic
 * rule standing in for a connection test.  Valid proxies go into a pool in
 * shared memory (conc_shm), guarded by a process-shared conc_lock, where
 * the main process reads them after both children have ended.  Output is
 * the same on every run.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <conc.h>

static void check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "%s: %s\n", what, conc_strerror(rc));
    exit(1);
  }
}

static const char *const candidates =
    "45.77.12.9:8080\n"
    "103.152.112.162:80\n"
    "10.0.0.7:3128\n"          /* private */
    "198.51.100.23:8000\n"
    "256.1.1.1:8080\n"         /* bad octet */
    "172.67.181.40:443\n"
    "192.168.1.20:8080\n"      /* private */
    "8.210.83.33:1080\n"
    "not-a-proxy\n"
    "47.243.95.155:65536\n"    /* bad port */
    "20.111.54.16:8123\n"
    "127.0.0.1:9050\n"         /* loopback */
    "185.199.229.156:7492\n"
    "51.159.115.233:3128\n"
    "64.225.8.82:9990\n"
    "139.59.1.14:8080\n"
    "1.2.3:80\n"               /* three parts */
    "159.203.61.169:3128\n"
    "178.128.113.118:23128\n"
    "34.87.84.105:80\n";

#define POOL_MAX 64
struct pool {
  conc_lock lock;
  int n;
  char entries[POOL_MAX][64];
};
static struct pool *pool;

/* Process 1: read the candidates and queue each line. */
static int fetcher(void *arg) {
  conc_queue *q = arg;
  const char *s = candidates;
  while (*s) {
    const char *e = strchr(s, '\n');
    check(conc_queue_put(q, s, (size_t)(e - s), -1), "put");
    s = e + 1;
  }
  check(conc_queue_close(q), "close");
  return 0;
}

/* "a.b.c.d:port" with every part in range; the parts go to oct and *port. */
static bool parse(const char *s, int oct[4], int *port) {
  char tail;
  if (sscanf(s, "%d.%d.%d.%d:%d%c", &oct[0], &oct[1], &oct[2], &oct[3], port,
             &tail) != 5)
    return false;
  for (int i = 0; i < 4; i++)
    if (oct[i] < 0 || oct[i] > 255)
      return false;
  return *port > 0 && *port < 65536;
}

static const char *verdict(const char *s) {
  int o[4], port;
  if (!parse(s, o, &port))
    return "malformed";
  if (o[0] == 10 || o[0] == 127 || (o[0] == 192 && o[1] == 168) ||
      (o[0] == 172 && o[1] >= 16 && o[1] < 32))
    return "private address";
  /* stand-in for a connection test: deterministic, some fail */
  unsigned h = 2166136261u;
  for (const char *c = s; *c; c++)
    h = (h ^ (unsigned char)*c) * 16777619u;
  if (h % 3 == 0)
    return "no answer";
  return NULL;
}

/* Process 2: validate each candidate; keep the good ones in the pool. */
static int validator(void *arg) {
  conc_queue *q = arg;
  for (;;) {
    void *m;
    size_t len;
    int rc = conc_queue_get(q, &m, &len, -1);
    if (rc == CONC_ECLOSED)
      break;
    check(rc, "get");
    char ip[64];
    snprintf(ip, sizeof ip, "%.*s", (int)(len < 63 ? len : 63), (char *)m);
    conc_queue_msg_free(m);
    const char *why = verdict(ip);
    if (why) {
      printf("validator: reject %-22s (%s)\n", ip, why);
      continue;
    }
    int r = conc_lock_acquire(&pool->lock, -1);
    if (r != 0 && r != CONC_EOWNERDEAD)
      check(r, "lock");
    if (pool->n < POOL_MAX)
      snprintf(pool->entries[pool->n++], sizeof pool->entries[0], "%s", ip);
    check(conc_lock_release(&pool->lock), "unlock");
    printf("validator: keep   %s\n", ip);
  }
  return 0;
}

int main(void) {
  conc_shm shm;
  memset(&shm, 0, sizeof shm);
  check(conc_shm_create_anon(&shm, sizeof *pool), "shm");
  pool = conc_shm_addr(&shm);
  check(conc_lock_init(&pool->lock, CONC_SYNC_SHARED), "lock init");
  conc_queue *q;
  check(conc_queue_create(&q, NULL), "queue");

  conc_process fetch, validate;
  memset(&fetch, 0, sizeof fetch);
  memset(&validate, 0, sizeof validate);
  conc_process_options o;
  conc_process_options_init(&o);
  o.daemon = true; /* neither outlives main, however main ends */
  check(conc_process_start(&validate, validator, q, &o), "start validator");
  check(conc_process_start(&fetch, fetcher, q, &o), "start fetcher");
  check(conc_process_join(&fetch, -1), "join fetcher");
  check(conc_process_join(&validate, -1), "join validator");

  printf("pool: %d valid proxies\n", pool->n);
  for (int i = 0; i < pool->n; i++)
    printf("  %s\n", pool->entries[i]);
  check(conc_queue_destroy(q), "queue destroy");
  check(conc_shm_close(&shm), "shm close");
  return 0;
}
