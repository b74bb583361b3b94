/* sitegen.c - the deterministic local site of `make demo` and the tests.
 *
 *   conc-crawl-sitegen DIR [PAGES [IMAGES [faults] [quoted]]]
 *
 * Writes DIR/index.html (page 0), DIR/p/<i>.html (pages 1..PAGES-1),
 * DIR/img/<k>.png (IMAGES images, 256 B to 12 KiB, pseudo-random bytes
 * from a fixed seed; every 97th has the same bytes as image 0), twenty
 * images shared by many pages (DIR/img/s<j>.png) and DIR/robots.txt
 * (disallowing /private/).  Every page links to its children in a binary
 * tree (so the depth is about log2 PAGES), the next page and a
 * pseudo-random one; some pages add broken links and images (404), links
 * and images through redirects (/r/, /ri/, served by the nginx config of
 * tools/crawl-site.sh), links into /private/, links to another host,
 * srcset candidates, a <base href>, data: and mailto: addresses.  With
 * "faults", page 1 also points at /fault/ addresses that the nginx config
 * answers with 503, a dropped connection, a redirect loop, an oversized
 * body, a slow body and a gzip bomb (the bomb file itself is written by
 * tools/crawl-site.sh with gzip).  With "quoted", every attribute value
 * is quoted (same pages otherwise): wget2 1.99's HTML parser stops at the
 * first unquoted value, so make bench's site is quoted for its wget2
 * anchor.  Same arguments, same bytes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *dir;

static uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

static FILE *create(const char *name) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  if (!f) {
    fprintf(stderr, "sitegen: %s: %s\n", path, strerror(errno));
    exit(1);
  }
  return f;
}

static void done(FILE *f) {
  if (fclose(f) != 0) {
    fprintf(stderr, "sitegen: write failed\n");
    exit(1);
  }
}

static void image(const char *name, uint64_t seed, size_t size) {
  FILE *f = create(name);
  static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', 13, 10, 26, 10};
  fwrite(sig, 1, 8, f);
  uint64_t s = seed;
  for (size_t i = 8; i < size; i++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    fputc((int)(s >> 56), f);
  }
  done(f);
}

static size_t image_size(long k) { return 256 + mix((uint64_t)k) % 12032; }

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: conc-crawl-sitegen DIR [PAGES [IMAGES [faults] [quoted]]]\n");
    return 2;
  }
  dir = argv[1];
  long pages = argc > 2 ? atol(argv[2]) : 500;
  long images = argc > 3 ? atol(argv[3]) : 5000;
  int faults = 0, quoted = 0;
  for (int i = 4; i < argc; i++) {
    if (strcmp(argv[i], "faults") == 0)
      faults = 1;
    else if (strcmp(argv[i], "quoted") == 0)
      quoted = 1;
  }
  const char *q = quoted ? "\"" : "";
  if (pages < 1 || images < 0) {
    fprintf(stderr, "sitegen: bad counts\n");
    return 2;
  }
  char path[4096];
  const char *sub[] = {"", "/p", "/img", "/fault"};
  for (int i = 0; i < 4; i++) {
    snprintf(path, sizeof path, "%s%s", dir, sub[i]);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
      fprintf(stderr, "sitegen: %s: %s\n", path, strerror(errno));
      return 1;
    }
  }
  FILE *f = create("robots.txt");
  fputs("# conc-crawl demo site\nUser-agent: *\nDisallow: /private/\n"
        "\nUser-agent: otherbot\nDisallow: /\n",
        f);
  done(f);

  for (long k = 0; k < images; k++) {
    char name[64];
    snprintf(name, sizeof name, "img/%ld.png", k);
    image(name, k % 97 == 0 ? 0 : (uint64_t)k, k % 97 == 0 ? image_size(0)
                                                         : image_size(k));
  }
  for (int j = 0; j < 20; j++) {
    char name[64];
    snprintf(name, sizeof name, "img/s%d.png", j);
    image(name, 1000000u + (uint64_t)j, image_size(1000000 + j));
  }

  for (long i = 0; i < pages; i++) {
    char name[64];
    if (i == 0)
      snprintf(name, sizeof name, "index.html");
    else
      snprintf(name, sizeof name, "p/%ld.html", i);
    /* links are written relative to /p/ (index.html gets a base) */
    f = create(name);
    fprintf(f, "<!DOCTYPE html>\n<html><head><title>page %ld</title>", i);
    if (i == 0 || i % 7 == 3)
      fputs("<base href=\"/p/\">", f);
    fputs("</head><body>\n", f);
    fprintf(f, "<h1>Page %ld</h1>\n<ul>\n", i);
    long kids[2] = {2 * i + 1, 2 * i + 2};
    for (int k = 0; k < 2; k++)
      if (kids[k] < pages)
        fprintf(f, "<li><a href=\"%ld.html\">child %ld</a>\n", kids[k],
                kids[k]);
    if (i + 1 < pages)
      fprintf(f, "<li><a href='./%ld.html#top'>next</a>\n", i + 1);
    long r = (long)(mix((uint64_t)i + 77) % (uint64_t)pages);
    fprintf(f, "<li><a href=\"/p/../p/%ld.html\">random</a>\n", r);
    fprintf(f, "<li><A HREF=%s/index.html%s>home</A>\n", q, q);
    if (i % 25 == 5)
      fprintf(f, "<li><a href=\"missing-%ld.html\">broken</a>\n", i);
    if (i % 10 == 4 && i + 3 < pages)
      fprintf(f, "<li><a href=\"/r/%ld.html\">moved</a>\n", i + 3);
    if (i % 50 == 6)
      fprintf(f, "<li><a href=\"/private/secret-%ld.html\">secret</a>\n", i);
    if (i % 20 == 7)
      fputs("<li><a href=\"http://other.invalid/x.html\">elsewhere</a>"
            "<a href=\"mailto:site@example.invalid\">mail</a>"
            "<a href=\"javascript:void(0)\">js</a>\n",
            f);
    fprintf(f, "</ul>\n<div class=%sgallery%s>\n", q, q);
    long a = i * images / pages, b = (i + 1) * images / pages;
    for (long k = a; k < b; k++) {
      if (k == a + 1 && k + 1 < b) {
        fprintf(f, "<img srcset=\"/img/%ld.png 1x, /img/%ld.png 2x\" "
                   "alt=%spair%s>\n",
                k, k + 1, q, q);
        k++;
      } else if (i % 30 == 8 && k == a) {
        fprintf(f, "<img src=\"/ri/%ld.png\" alt=%smoved%s>\n", k, q, q);
      } else {
        fprintf(f, "<img src=\"../img/%ld.png\" alt=\"image %ld\">\n", k, k);
      }
    }
    fprintf(f, "<img src=\"/img/s%ld.png\"><img src=\"/img/s%ld.png\">\n",
            i % 20, (i * 7 + 3) % 20);
    if (i % 40 == 9)
      fprintf(f, "<img src=\"/img/missing-%ld.png\">\n", i);
    fputs("<img src=\"data:image/gif;base64,R0lGODlhAQABAAAAACw=\">\n", f);
    if (faults && i == 1)
      fputs("<img src=\"/fault/503.png\"><img src=\"/fault/reset.png\">"
            "<img src=\"/fault/loop/a\"><img src=\"/fault/big.png\">"
            "<img src=\"/fault/slow.png\"><img src=\"/fault/bomb.png\">"
            "<a href=\"/fault/503.html\">down</a>\n",
            f);
    fputs("</div>\n<p>Unclosed <b>markup <i>on purpose</p>\n</body></html>\n",
          f);
    done(f);
  }
  if (faults) {
    image("fault/big.png", 42, 3 << 20);
    image("fault/slow.png", 43, 256 << 10);
  }
  return 0;
}
