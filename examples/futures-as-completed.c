/* futures-as-completed.c - the "load several URLs" example of Python's
 * concurrent.futures documentation, with local work instead of a network.
 *
 *     URLS = ['http://www.foxnews.com/', 'http://www.cnn.com/',
 *             'http://europe.wsj.com/', 'http://www.bbc.co.uk/',
 *             'http://nonexistent-subdomain.python.org/']
 *
 *     def load_url(url, timeout):
 *         with urllib.request.urlopen(url, timeout=timeout) as conn:
 *             return conn.read()
 *
 *     with concurrent.futures.ThreadPoolExecutor(max_workers=5) as executor:
 *         future_to_url = {executor.submit(load_url, url, 60): url
 *                          for url in URLS}
 *         for future in concurrent.futures.as_completed(future_to_url):
 *             url = future_to_url[future]
 *             try:
 *                 data = future.result()
 *             except Exception as exc:
 *                 print('%r generated an exception: %s' % (url, exc))
 *             else:
 *                 print('%r page is %d bytes' % (url, len(data)))
 *
 * Nothing here touches the network: each "URL" names a page that load_url
 * generates in memory after a simulated delay, different per source, and the
 * last source fails as the unknown host does in Python.  The pages are
 * printed as they complete, fastest first.
 *
 * Environment: CONC_EXAMPLE_SLEEP_SCALE=<x> multiplies the delays
 * (default 1.0).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <conc.h>

typedef struct source {
  const char *url;
  double delay;   /* simulated network time, seconds */
  int paragraphs; /* size of the page; 0: the host does not exist */
} source;

static const source URLS[] = {
    {"http://www.foxnews.com/", 0.40, 300},
    {"http://www.cnn.com/", 0.10, 120},
    {"http://europe.wsj.com/", 0.30, 250},
    {"http://www.bbc.co.uk/", 0.20, 80},
    {"http://nonexistent-subdomain.python.org/", 0.05, 0},
};
enum { N = sizeof URLS / sizeof URLS[0] };

static double scale = 1.0;

static void check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "%s: %s\n", what, conc_strerror(rc));
    exit(1);
  }
}

/* The task: "download" the page.  Its result is a heap conc_bytes that the
 * caller frees; a failure is reported with conc_task_fail, the C version
 * of raising an exception in the task. */
static void *load_url(void *arg) {
  const source *src = arg;
  conc_sleep(src->delay * scale);
  if (src->paragraphs == 0) {
    conc_task_fail(-2, "<urlopen error [Errno -2] Name or service not known>");
    return NULL;
  }
  conc_bytes *page = calloc(1, sizeof *page);
  if (!page) {
    conc_task_fail(CONC_ENOMEM, "out of memory");
    return NULL;
  }
  char line[160];
  int n = snprintf(line, sizeof line, "<html><head><title>%s</title></head>"
                   "<body>\n", src->url);
  int rc = conc_bytes_append(page, line, (size_t)n);
  for (int i = 0; rc == 0 && i < src->paragraphs; i++) {
    n = snprintf(line, sizeof line, "<p>Paragraph %d of %s.</p>\n", i,
                 src->url);
    rc = conc_bytes_append(page, line, (size_t)n);
  }
  if (rc == 0)
    rc = conc_bytes_append(page, "</body></html>\n", 15);
  if (rc < 0) {
    conc_bytes_free(page);
    free(page);
    conc_task_fail(rc, "%s", conc_strerror(rc));
    return NULL;
  }
  return page;
}

int main(void) {
  const char *s = getenv("CONC_EXAMPLE_SLEEP_SCALE");
  if (s)
    scale = atof(s);

  conc_thread_pool_options opts;
  conc_thread_pool_options_init(&opts);
  opts.max_workers = 5;
  conc_executor *executor;
  check(conc_thread_pool_create(&opts, &executor), "conc_thread_pool_create");

  /* future_to_url: futures[i] belongs to URLS[i]. */
  conc_future *futures[N];
  for (size_t i = 0; i < N; i++)
    check(conc_executor_submit(executor, load_url, (void *)&URLS[i],
                               &futures[i]),
          "conc_executor_submit");

  /* as_completed(future_to_url, timeout=60) */
  conc_as_completed *it;
  check(conc_as_completed_create(futures, N, 60, &it),
        "conc_as_completed_create");
  conc_future *future;
  int rc;
  while ((rc = conc_as_completed_next(it, &future)) == 1) {
    size_t i = 0;
    while (futures[i] != future)
      i++;
    const char *url = URLS[i].url;
    void *data;
    if (conc_future_result(future, 0, &data) == 0) {
      conc_bytes *page = data;
      printf("'%s' page is %zu bytes\n", url, page->len);
      conc_bytes_free(page);
      free(page);
    } else {
      /* The task's own message (and code) from conc_task_fail. */
      const char *msg;
      int code;
      conc_future_error(future, &code, &msg);
      printf("'%s' generated an exception: %s\n", url, msg ? msg : "?");
    }
  }
  check(rc, "conc_as_completed_next");
  conc_as_completed_destroy(it);

  for (size_t i = 0; i < N; i++)
    conc_future_release(futures[i]);
  check(conc_executor_destroy(executor), "conc_executor_destroy");
  return 0;
}
