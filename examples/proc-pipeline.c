/* proc-pipeline.c - two processes joined by a conc queue: scan -> download.
 *
 * The seed tutorial's image crawler shape ("one process scans image
 * addresses while another downloads them"):
 *
 *     def scan(q):                      # process 1
 *         for page in pages:
 *             for img in find_images(page):
 *                 q.put(img)
 *         q.put(None)
 *     def download(q):                  # process 2
 *         while (img := q.get()) is not None:
 *             save(img)
 *     q = Queue()
 *     Process(target=scan, args=(q,)).start()
 *     Process(target=download, args=(q,)).start()
 *
 * On local data, no network: the "pages" are generated text holding
 * <img src="..."> tags; "downloading" an address computes the image bytes
 * from its name (a deterministic generator) and their FNV-1a checksum.
 * The end of the stream is conc_queue_close instead of a None sentinel;
 * the scanner's counts come back to main in a shared-memory block.
 * The output is the same on every run: the downloader is the only reader
 * and the queue is FIFO.
 *
 * Environment: CONC_EXAMPLE_N=<pages> (default 20).
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

static int pages = 20;

/* The scanner's report, in a shared-memory block (written by the scanner,
 * read by main after joining it): only the downloader prints while both
 * run, so the output is deterministic. */
struct report {
  long pages, found;
};
static struct report *report;

/* Page p: some text with 1..4 image tags. */
static void make_page(int p, char *buf, size_t cap) {
  int n = 1 + (p * 7) % 4, off = 0;
  off += snprintf(buf + off, cap - (size_t)off, "<h1>page %d</h1>", p);
  for (int i = 0; i < n; i++)
    off += snprintf(buf + off, cap - (size_t)off,
                    "<p>text</p><img src=\"https://img.example/%d/%d.jpg\">",
                    p, i);
}

/* Process 1: scan every page, queue each image address. */
static int scanner(void *arg) {
  conc_queue *q = arg;
  char page[1024];
  int found = 0;
  for (int p = 0; p < pages; p++) {
    make_page(p, page, sizeof page);
    for (char *s = strstr(page, "<img src=\""); s;
         s = strstr(s, "<img src=\"")) {
      s += strlen("<img src=\"");
      char *e = strchr(s, '"');
      check(conc_queue_put(q, s, (size_t)(e - s), -1), "put");
      found++;
      s = e;
    }
  }
  report->pages = pages;
  report->found = found;
  check(conc_queue_close(q), "close"); /* no more addresses */
  return 0;
}

static uint64_t fnv(const unsigned char *b, size_t n, uint64_t h) {
  for (size_t i = 0; i < n; i++)
    h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

/* Process 2: "download" each address: generate its bytes, checksum them. */
static int downloader(void *arg) {
  conc_queue *q = arg;
  int n = 0;
  size_t total = 0;
  for (;;) {
    void *m;
    size_t len;
    int rc = conc_queue_get(q, &m, &len, -1);
    if (rc == CONC_ECLOSED)
      break;
    check(rc, "get");
    uint64_t seed = fnv(m, len, 14695981039346656037ull);
    size_t size = 1000 + seed % 9000;
    unsigned char *img = malloc(size);
    for (size_t i = 0; i < size; i++) {
      seed = seed * 6364136223846793005ull + 1442695040888963407ull;
      img[i] = (unsigned char)(seed >> 56);
    }
    printf("downloaded %.*s: %zu bytes, checksum %016llx\n", (int)len,
           (char *)m, size,
           (unsigned long long)fnv(img, size, 14695981039346656037ull));
    total += size;
    n++;
    free(img);
    conc_queue_msg_free(m);
  }
  printf("downloader: %d images, %zu bytes\n", n, total);
  return 0;
}

int main(void) {
  const char *e = getenv("CONC_EXAMPLE_N");
  if (e && atoi(e) > 0)
    pages = atoi(e);
  conc_queue *q;
  check(conc_queue_create(&q, NULL), "queue");
  conc_shm shm;
  memset(&shm, 0, sizeof shm);
  check(conc_shm_create_anon(&shm, sizeof *report), "shm");
  report = conc_shm_addr(&shm);
  conc_process scan, down;
  memset(&scan, 0, sizeof scan);
  memset(&down, 0, sizeof down);
  /* The downloader starts first and waits; its output is all ours. */
  check(conc_process_start(&down, downloader, q, NULL), "start downloader");
  check(conc_process_start(&scan, scanner, q, NULL), "start scanner");
  check(conc_process_join(&scan, -1), "join scanner");
  check(conc_process_join(&down, -1), "join downloader");
  int cs, cd;
  check(conc_process_exitcode(&scan, &cs), "exitcode");
  check(conc_process_exitcode(&down, &cd), "exitcode");
  printf("scanner: %ld pages, %ld image addresses queued\n", report->pages,
         report->found);
  printf("main: scanner exited %d, downloader exited %d\n", cs, cd);
  check(conc_shm_close(&shm), "shm close");
  check(conc_queue_destroy(q), "destroy");
  return cs || cd;
}
