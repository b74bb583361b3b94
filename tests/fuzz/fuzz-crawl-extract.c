/* fuzz-crawl-extract.c - libFuzzer target for conc-crawl's extraction.
 *
 * Feeds arbitrary bytes to extract_html as a page, and the same bytes (up
 * to a NUL) to url_resolve as a reference.  Beyond the sanitizers'
 * checks it asserts the contract of both: every address reported is an
 * http(s) URL already in normal form (normalising it again changes
 * nothing).  A short run is part of `make test` (ctest crawl-fuzz-extract);
 * longer campaigns: build/clang/tests/fuzz-crawl-extract CORPUS_DIR.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../crawl/extract.h"
#include "../../crawl/url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_url(const char *url) {
  if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
    fprintf(stderr, "not http(s): %s\n", url);
    abort();
  }
  char *again = NULL;
  if (url_normalize(url, &again) != 0 || strcmp(again, url) != 0) {
    fprintf(stderr, "not normal: %s -> %s\n", url, again ? again : "(error)");
    abort();
  }
  free(again);
}

static int found(void *ctx, extract_kind kind, const char *url) {
  (void)ctx;
  (void)kind;
  check_url(url);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  unsigned refused;
  extract_html((const char *)data, size, "http://f.test/a/b.html?q", found,
               NULL, &refused);
  char *ref = strndup((const char *)data, size < 4096 ? size : 4096);
  if (ref) {
    char *out = NULL;
    if (url_resolve("http://f.test/a/b.html?q", ref, &out) == 0) {
      check_url(out);
      free(out);
    }
    free(ref);
  }
  return 0;
}
