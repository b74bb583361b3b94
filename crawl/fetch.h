/* fetch.h - one URL over HTTP(S) with libcurl, politely and with limits.
 *
 * fetch_url() is the blocking form used by the threads and processes
 * engines: it waits for a per-host slot and the rate limiter, runs the
 * transfer on a libcurl easy handle, classifies the outcome and retries
 * with exponential backoff on 5xx answers and connection resets.
 *
 * An engine that drives transfers itself (the coroutine engine, on
 * libcurl's multi-socket interface) uses the same pieces without the
 * blocking calls: fetch_setup() before adding the handle, fetch_finish()
 * when the multi interface reports it done, fetch_retryable() and
 * fetch_backoff() to decide about another attempt, and limits_try_*()
 * for slots.
 *
 * Limits: connect and total timeouts; redirects followed up to
 * max_redirects, only to http/https (or, with no_follow, not followed:
 * the 3xx answer is FETCH_OK with its target in location); bodies capped at max_body bytes on
 * the wire (Content-Length checked up front, and counted while
 * receiving) and at max_decoded bytes after content decoding (gzip,
 * deflate, br: a compression bomb stops at the cap).
 */
#ifndef CRAWL_FETCH_H
#define CRAWL_FETCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include <conc/sync.h>
#include <curl/curl.h>

/* Outcome kinds, as counted in the summary ("failures by kind"). */
#define CRAWL_KINDS(X)                                                        \
  X(OK, "ok")                                                                 \
  X(HTTP_404, "http_404")                                                     \
  X(HTTP_4XX, "http_4xx")                                                     \
  X(HTTP_5XX, "http_5xx")                                                     \
  X(TIMEOUT, "timeout")                                                       \
  X(CONNECT, "connect")                                                       \
  X(DNS, "dns")                                                               \
  X(RESET, "reset")                                                           \
  X(REDIRECTS, "too_many_redirects")                                          \
  X(TOO_LARGE, "too_large")                                                   \
  X(SCHEME, "scheme")                                                         \
  X(TLS, "tls")                                                               \
  X(INTERRUPTED, "interrupted")                                               \
  X(IO, "io")                                                                 \
  X(OTHER, "other")

typedef enum fetch_kind {
#define X(name, str) FETCH_##name,
  CRAWL_KINDS(X)
#undef X
  FETCH_KINDS
} fetch_kind;

const char *fetch_kind_name(int kind);

/* Politeness limits shared by every worker, and by processes when placed
 * in shared memory (init with shared = true): a semaphore per host slot
 * (hosts hash to one of LIMITS_SLOTS slots; two hosts sharing a slot share
 * its limit, which only makes the crawl more polite) and a rate limiter
 * (one request every interval, reserved with an atomic add).  No pointers
 * inside. */
#define LIMITS_SLOTS 64
typedef struct limits {
  conc_semaphore host[LIMITS_SLOTS];
  long long interval_ns; /* 0: no rate limit */
  _Atomic long long next_ns;
} limits;

/* per_host >= 1; rate requests per second, 0 for none. */
int limits_init(limits *l, unsigned per_host, double rate, bool shared);
void limits_destroy(limits *l);

typedef struct fetch_opts {
  double connect_timeout, timeout; /* seconds */
  int retries;                     /* extra attempts after the first */
  double backoff;                  /* first retry after this, then x2 */
  long max_redirects;
  unsigned long long max_body, max_decoded;
  const char *user_agent;
  bool no_follow;           /* return redirects (location), see the top */
  limits *limits;           /* NULL: none */
  const atomic_int *stop;   /* non-zero: abort transfers (Ctrl-C) */
} fetch_opts;

typedef struct fetch_result {
  int kind;            /* FETCH_* */
  long status;         /* last HTTP status, 0 if none */
  char *body;          /* malloc'd (NUL-terminated), on FETCH_OK */
  size_t len;
  char *final_url;     /* after redirects (malloc'd), NULL if unknown */
  char *location;      /* no_follow: a 3xx's absolute target (malloc'd) */
  char content_type[96];
  char error[256];     /* what went wrong, for the report */
  unsigned requests;   /* HTTP requests made, redirects and retries included */
  unsigned attempts;
} fetch_result;

/* Per-transfer state of fetch_setup / fetch_finish. */
typedef struct fetch_xfer {
  const fetch_opts *o;
  char *buf;
  size_t len, cap;
  bool too_large;
  char errbuf[CURL_ERROR_SIZE];
} fetch_xfer;

/* Fetch url into r (fetch_result_free it afterwards).  Returns r->kind.
 * Blocks (transfer, slots, rate limit, backoff); any thread, one handle
 * per thread at a time. */
int fetch_url(CURL *h, const fetch_opts *o, const char *url,
              fetch_result *r);
void fetch_result_free(fetch_result *r);

/* Pieces for engines that run transfers themselves (see the top). */
void fetch_setup(CURL *h, const fetch_opts *o, const char *url,
                 fetch_xfer *x);
void fetch_finish(CURL *h, CURLcode rc, fetch_xfer *x, fetch_result *r);
bool fetch_retryable(const fetch_result *r);
double fetch_backoff(const fetch_opts *o, unsigned attempt);
/* Take a slot of url's host: 0 or CONC_ETIMEDOUT (timeout seconds). */
int limits_acquire(limits *l, const char *url, double timeout,
                   unsigned *slot);
void limits_release(limits *l, unsigned slot);
/* Seconds to wait before the next request may start (reserving it). */
double limits_rate_reserve(limits *l);

#endif
