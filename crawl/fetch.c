/* fetch.c - libcurl transfers with timeouts, caps, retries and limits.
 *
 * DESIGN: fetch_setup sets every option of a transfer on an easy handle
 * (reset first, so a reused handle keeps only its connection cache);
 * fetch_finish turns libcurl's result into a fetch_kind and a message.
 * fetch_url wraps both around curl_easy_perform with the host slot, the
 * rate limiter and the retry loop.  The write callback enforces the
 * decoded-size cap, the progress callback the on-the-wire cap and the
 * stop flag.  Nothing here is global: the limits live where the caller
 * put them (heap or shared memory).
 */
#include "fetch.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <conc/base.h>
#include <conc/error.h>

#include "url.h"

const char *fetch_kind_name(int kind) {
  static const char *const names[] = {
#define X(name, str) str,
      CRAWL_KINDS(X)
#undef X
  };
  return kind >= 0 && kind < FETCH_KINDS ? names[kind] : "other";
}

/* ---- limits ---- */

int limits_init(limits *l, unsigned per_host, double rate, bool shared) {
  memset(l, 0, sizeof *l);
  for (unsigned i = 0; i < LIMITS_SLOTS; i++) {
    int rc = conc_semaphore_init(&l->host[i], per_host ? per_host : 1, 0,
                                 shared ? CONC_SYNC_SHARED : 0);
    if (rc < 0)
      return rc;
  }
  l->interval_ns = rate > 0 ? (long long)(1e9 / rate) : 0;
  atomic_init(&l->next_ns, 0);
  return 0;
}

void limits_destroy(limits *l) {
  for (unsigned i = 0; i < LIMITS_SLOTS; i++)
    conc_semaphore_destroy(&l->host[i]);
}

static unsigned host_slot(const char *url) {
  char host[256];
  if (url_host(url, host, sizeof host) != 0)
    host[0] = 0;
  uint32_t h = 2166136261u;
  for (const char *p = host; *p; p++)
    h = (h ^ (unsigned char)*p) * 16777619u;
  return h % LIMITS_SLOTS;
}

int limits_acquire(limits *l, const char *url, double timeout,
                   unsigned *slot) {
  *slot = host_slot(url);
  return conc_semaphore_acquire(&l->host[*slot], timeout);
}

void limits_release(limits *l, unsigned slot) {
  conc_semaphore_release(&l->host[slot], 1);
}

double limits_rate_reserve(limits *l) {
  if (l->interval_ns <= 0)
    return 0;
  long long now = (long long)(conc_now() * 1e9);
  long long next = atomic_load_explicit(&l->next_ns, memory_order_relaxed);
  long long mine;
  do {
    mine = next > now ? next : now;
  } while (!atomic_compare_exchange_weak_explicit(
      &l->next_ns, &next, mine + l->interval_ns, memory_order_relaxed,
      memory_order_relaxed));
  return (double)(mine - now) / 1e9;
}

/* ---- one transfer ---- */

static size_t on_write(char *p, size_t size, size_t n, void *ud) {
  fetch_xfer *x = ud;
  size_t k = size * n;
  if (x->len + k > x->o->max_decoded) {
    x->too_large = true;
    return 0; /* CURLE_WRITE_ERROR */
  }
  if (x->len + k + 1 > x->cap) {
    size_t cap = x->cap ? x->cap : 16384;
    while (cap < x->len + k + 1)
      cap *= 2;
    char *b = realloc(x->buf, cap);
    if (!b)
      return 0;
    x->buf = b;
    x->cap = cap;
  }
  memcpy(x->buf + x->len, p, k);
  x->len += k;
  x->buf[x->len] = 0;
  return k;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow,
                       curl_off_t ultotal, curl_off_t ulnow) {
  (void)dltotal;
  (void)ultotal;
  (void)ulnow;
  fetch_xfer *x = ud;
  if (x->o->stop && atomic_load_explicit(x->o->stop, memory_order_relaxed))
    return 1;
  if ((unsigned long long)dlnow > x->o->max_body) {
    x->too_large = true;
    return 1;
  }
  return 0;
}

void fetch_setup(CURL *h, const fetch_opts *o, const char *url,
                 fetch_xfer *x) {
  memset(x, 0, sizeof *x);
  x->o = o;
  curl_easy_reset(h);
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, o->no_follow ? 0L : 1L);
  curl_easy_setopt(h, CURLOPT_MAXREDIRS, o->max_redirects);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                   (long)(o->connect_timeout * 1000));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(o->timeout * 1000));
  curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)o->max_body);
  curl_easy_setopt(h, CURLOPT_USERAGENT, o->user_agent);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->errbuf);
}

static int kind_of(CURLcode rc, const fetch_xfer *x) {
  if (x->too_large)
    return FETCH_TOO_LARGE;
  switch (rc) {
  case CURLE_OPERATION_TIMEDOUT:
    return FETCH_TIMEOUT;
  case CURLE_COULDNT_CONNECT:
    return FETCH_CONNECT;
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
    return FETCH_DNS;
  case CURLE_RECV_ERROR:
  case CURLE_SEND_ERROR:
  case CURLE_GOT_NOTHING:
  case CURLE_PARTIAL_FILE:
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM:
    return FETCH_RESET;
  case CURLE_TOO_MANY_REDIRECTS:
    return FETCH_REDIRECTS;
  case CURLE_FILESIZE_EXCEEDED:
    return FETCH_TOO_LARGE;
  case CURLE_UNSUPPORTED_PROTOCOL:
    return FETCH_SCHEME;
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE:
    return FETCH_TLS;
  case CURLE_ABORTED_BY_CALLBACK:
    return x->o->stop && atomic_load(x->o->stop) ? FETCH_INTERRUPTED
                                                  : FETCH_OTHER;
  case CURLE_WRITE_ERROR:
  case CURLE_OUT_OF_MEMORY:
    return FETCH_IO;
  default:
    return FETCH_OTHER;
  }
}

void fetch_finish(CURL *h, CURLcode rc, fetch_xfer *x, fetch_result *r) {
  long redirects = 0;
  curl_easy_getinfo(h, CURLINFO_REDIRECT_COUNT, &redirects);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
  r->requests += 1 + (unsigned)redirects;
  r->attempts++;
  free(r->final_url);
  r->final_url = NULL;
  char *eff = NULL;
  if (curl_easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &eff) == CURLE_OK && eff)
    r->final_url = strdup(eff);
  char *ct = NULL;
  r->content_type[0] = 0;
  if (curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
    snprintf(r->content_type, sizeof r->content_type, "%s", ct);
  free(r->body);
  r->body = NULL;
  r->len = 0;
  free(r->location);
  r->location = NULL;
  char *loc = NULL;
  if (rc == CURLE_OK && x->o->no_follow && r->status >= 300 &&
      r->status < 400 &&
      curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &loc) == CURLE_OK && loc)
    r->location = strdup(loc);
  if (rc == CURLE_OK) {
    if (r->location) { /* a redirect, not followed: its target is the result */
      r->kind = FETCH_OK;
      r->body = strdup("");
      r->error[0] = 0;
    } else if (r->status >= 200 && r->status < 300) {
      r->kind = FETCH_OK;
      r->body = x->buf ? x->buf : strdup("");
      r->len = x->len;
      x->buf = NULL;
      r->error[0] = 0;
    } else {
      r->kind = r->status == 404 || r->status == 410 ? FETCH_HTTP_404
                : r->status >= 500                   ? FETCH_HTTP_5XX
                : r->status >= 400                   ? FETCH_HTTP_4XX
                                                     : FETCH_OTHER;
      snprintf(r->error, sizeof r->error, "HTTP %ld", r->status);
    }
  } else {
    r->kind = kind_of(rc, x);
    if (r->kind == FETCH_TOO_LARGE)
      snprintf(r->error, sizeof r->error,
               "body over the limit (%llu bytes on the wire, %llu decoded)",
               x->o->max_body, x->o->max_decoded);
    else if (r->kind == FETCH_TIMEOUT)
      snprintf(r->error, sizeof r->error,
               "timed out (connect timeout %g s, total %g s)",
               x->o->connect_timeout, x->o->timeout);
    else if (r->kind == FETCH_RESET) /* which libcurl code a reset gives
                                         (send or receive side) is a race */
      snprintf(r->error, sizeof r->error,
               "connection closed or reset by the server");
    else /* libcurl's fixed text: errbuf has timings, which vary */
      snprintf(r->error, sizeof r->error, "%s", curl_easy_strerror(rc));
  }
  free(x->buf);
  x->buf = NULL;
}

bool fetch_retryable(const fetch_result *r) {
  return r->kind == FETCH_HTTP_5XX || r->kind == FETCH_RESET;
}

double fetch_backoff(const fetch_opts *o, unsigned attempt) {
  double d = o->backoff * pow(2, attempt > 0 ? attempt - 1 : 0);
  return d > 30 ? 30 : d;
}

static bool stopped(const fetch_opts *o) {
  return o->stop && atomic_load_explicit(o->stop, memory_order_relaxed);
}

/* Sleep seconds in short steps, waking early on stop. */
static void nap(const fetch_opts *o, double seconds) {
  double end = conc_now() + seconds;
  for (double left = seconds; left > 0 && !stopped(o);
       left = end - conc_now())
    conc_sleep(left < 0.05 ? left : 0.05);
}

int fetch_url(CURL *h, const fetch_opts *o, const char *url,
              fetch_result *r) {
  memset(r, 0, sizeof *r);
  for (;;) {
    if (stopped(o)) {
      r->kind = FETCH_INTERRUPTED;
      snprintf(r->error, sizeof r->error, "interrupted");
      return r->kind;
    }
    unsigned slot = 0;
    bool held = false;
    if (o->limits) {
      int rc;
      while ((rc = limits_acquire(o->limits, url, 0.1, &slot)) ==
                 CONC_ETIMEDOUT &&
             !stopped(o))
        ;
      if (rc != 0 && stopped(o))
        continue; /* reported at the top */
      held = rc == 0; /* any other error: go on without a slot */
      nap(o, limits_rate_reserve(o->limits));
    }
    fetch_xfer x;
    fetch_setup(h, o, url, &x);
    CURLcode rc = curl_easy_perform(h);
    if (held)
      limits_release(o->limits, slot);
    fetch_finish(h, rc, &x, r);
    if (!fetch_retryable(r) || r->attempts > (unsigned)o->retries ||
        stopped(o))
      break;
    nap(o, fetch_backoff(o, r->attempts));
  }
  if (r->kind != FETCH_OK && r->attempts > 1) {
    size_t n = strlen(r->error);
    snprintf(r->error + n, sizeof r->error - n, " (after %u attempts)",
             r->attempts);
  }
  return r->kind;
}

void fetch_result_free(fetch_result *r) {
  free(r->body);
  free(r->final_url);
  free(r->location);
  r->body = r->final_url = r->location = NULL;
}
