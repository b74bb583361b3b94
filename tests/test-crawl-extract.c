/* test-crawl-extract.c - conc-crawl's extraction (crawl/extract.c) on
 * tricky HTML: <base>, relative URLs, srcset, refused schemes, malformed
 * and truncated markup, entities, case, nesting. */
#include "harness.h"

#include "../crawl/extract.h"

typedef struct got {
  char buf[4096];
  size_t n;
  int stop_after; /* 0: never stop */
  int calls;
} got;

static int collect(void *ctx, extract_kind kind, const char *url) {
  got *g = ctx;
  g->n += (size_t)snprintf(g->buf + g->n, sizeof g->buf - g->n, "%c %s\n",
                           kind == EXTRACT_LINK ? 'L' : 'I', url);
  g->calls++;
  return g->stop_after && g->calls >= g->stop_after;
}

#define PAGE "http://h.test/dir/page.html"

static const struct {
  const char *html, *want;
  unsigned refused;
} cases[] = {
    {"", "", 0},
    {"<a href=x.html>x</a>", "L http://h.test/dir/x.html\n", 0},
    {"<img src=/i/a.png>", "I http://h.test/i/a.png\n", 0},
    {"<A HREF='../up.html'>u</A><IMG SRC=\"b.PNG\">",
     "L http://h.test/up.html\nI http://h.test/dir/b.PNG\n", 0},
    /* base: the first with an href wins, and applies to earlier elements */
    {"<a href=a.html></a><base target=_top><base href=\"http://o.test/b/\">"
     "<base href=\"http://x.test/\"><img src=c.png>",
     "L http://o.test/b/a.html\nI http://o.test/b/c.png\n", 0},
    /* a relative base resolves against the page */
    {"<head><base href=\"sub/\"></head><img src=c.png>",
     "I http://h.test/dir/sub/c.png\n", 0},
    /* a data: base is ignored */
    {"<base href=\"data:text/html,x\"><img src=c.png>",
     "I http://h.test/dir/c.png\n", 0},
    /* srcset: several candidates, descriptors, commas in URLs, blanks */
    {"<img srcset=\"a.png 1x, b.png 2x,c.png   3x\">",
     "I http://h.test/dir/a.png\nI http://h.test/dir/b.png\n"
     "I http://h.test/dir/c.png\n",
     0},
    {"<img src=s.png srcset=\" \n w1.png 100w ,\tw2.png 200w \">",
     "I http://h.test/dir/s.png\nI http://h.test/dir/w1.png\n"
     "I http://h.test/dir/w2.png\n",
     0},
    {"<img srcset=\"a,b.png 1x, c.png\">",
     "I http://h.test/dir/a,b.png\nI http://h.test/dir/c.png\n", 0},
    {"<img srcset=\"a.png,b.png\">", "I http://h.test/dir/a.png,b.png\n", 0},
    {"<img srcset=\"a.png (x, y) 1x, b.png\">",
     "I http://h.test/dir/a.png\nI http://h.test/dir/b.png\n", 0},
    {"<picture><source srcset=\"p.webp\"><img src=p.jpg></picture>",
     "I http://h.test/dir/p.webp\nI http://h.test/dir/p.jpg\n", 0},
    /* refused schemes */
    {"<img src=\"data:image/png;base64,iVBORw0KGgo=\"><a href=\"javascript:"
     "void(0)\">j</a><a href=\"mailto:a@b\">m</a><a href=\"ftp://f/x\">f</a>"
     "<a href=tel:123>t</a><a href=\"//ok.test/\">ok</a>",
     "L http://ok.test/\n", 5},
    {"<img srcset=\"data:image/png;base64,AAA= 1x, ok.png 2x\">",
     "I http://h.test/dir/ok.png\n", 1},
    /* entities and whitespace in attributes */
    {"<a href=\"a.html?x=1&amp;y=2\">e</a>",
     "L http://h.test/dir/a.html?x=1&y=2\n", 0},
    {"<a href=\"  spaced.html\n\">s</a>", "L http://h.test/dir/spaced.html\n",
     0},
    {"<a href=\"sp ace.html\">s</a>", "L http://h.test/dir/sp%20ace.html\n",
     0},
    /* fragments dropped, empty href is the page itself */
    {"<a href=\"#top\">t</a><a href=\"\">e</a>",
     "L http://h.test/dir/page.html\nL http://h.test/dir/page.html\n", 0},
    /* malformed: unclosed tags, unquoted, junk, stray quotes */
    {"<div><p><a href=one.html>1<a href=two.html>2</div></span><img src=3.png",
     "L http://h.test/dir/one.html\nL http://h.test/dir/two.html\n"
     "I http://h.test/dir/3.png\n",
     0},
    {"<<<>>><a href='q.html\"'>x</a>", "L http://h.test/dir/q.html%22\n", 0},
    {"<a>no href</a><img alt=x><img src>", "I http://h.test/dir/page.html\n",
     0},
    /* inside comments, scripts and styles nothing counts */
    {"<!-- <a href=c.html> --><script>var s='<img src=s.png>';</script>"
     "<style>a{background:url(b.png)}</style><a href=real.html>r</a>",
     "L http://h.test/dir/real.html\n", 0},
    /* other elements with src/href are not images or links */
    {"<link href=s.css rel=stylesheet><script src=j.js></script>"
     "<iframe src=f.html></iframe>",
     "", 0},
    /* area links, nested tables */
    {"<map><area href=m.html></map><table><tr><td><img src=t.gif></td>",
     "L http://h.test/dir/m.html\nI http://h.test/dir/t.gif\n", 0},
    /* absolute other host, https, port normalised */
    {"<img src=\"HTTPS://CDN.test:443/x.png\">", "I https://cdn.test/x.png\n",
     0},
    /* non-ASCII href percent-encoded */
    {"<meta charset=utf-8><a href=\"caf\xc3\xa9.html\">c</a>",
     "L http://h.test/dir/caf%C3%A9.html\n", 0},
    /* NUL bytes inside the document */
    {"<a href=a.html>x</a>\0<img src=b.png>", "L http://h.test/dir/a.html\n",
     0},
};

START_TEST(extract_tricky_html) {
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    got g = {0};
    unsigned refused = 99;
    int rc = extract_html(cases[i].html, strlen(cases[i].html), PAGE, collect,
                          &g, &refused);
    ck_assert_msg(rc == 0, "case %zu: rc %d", i, rc);
    ck_assert_msg(strcmp(g.buf, cases[i].want) == 0,
                  "case %zu:\n got: %s\nwant: %s", i, g.buf, cases[i].want);
    ck_assert_msg(refused == cases[i].refused, "case %zu: refused %u, want %u",
                  i, refused, cases[i].refused);
  }
}
END_TEST

START_TEST(extract_callback_stops) {
  const char *h = "<a href=1></a><a href=2></a><a href=3></a>";
  got g = {0};
  g.stop_after = 2;
  ck_assert_int_eq(extract_html(h, strlen(h), PAGE, collect, &g, NULL), 1);
  ck_assert_int_eq(g.calls, 2);
}
END_TEST

START_TEST(extract_deep_nesting) {
  /* 100000 nested elements: no stack exhaustion */
  size_t n = 100000;
  char *h = malloc(n * 5 + 64);
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    memcpy(h + k, "<div>", 5);
    k += 5;
  }
  strcpy(h + k, "<img src=deep.png>");
  got g = {0};
  ck_assert_int_eq(extract_html(h, strlen(h), PAGE, collect, &g, NULL), 0);
  free(h);
}
END_TEST

START_TEST(extract_binary_garbage) {
  unsigned char b[4096];
  unsigned x = 12345;
  for (size_t i = 0; i < sizeof b; i++) {
    x = x * 1103515245u + 12345u;
    b[i] = (unsigned char)(x >> 16);
  }
  got g = {0};
  ck_assert_int_ge(extract_html((const char *)b, sizeof b, PAGE, collect, &g,
                                NULL),
                   0);
}
END_TEST

CONC_TEST_MAIN("crawl-extract", extract_tricky_html, extract_callback_stops,
               extract_deep_nesting, extract_binary_garbage)
