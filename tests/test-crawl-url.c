/* test-crawl-url.c - conc-crawl's URL module (crawl/url.c): RFC 3986 §5.4
 * resolution examples (normal and abnormal, fragments dropped as the
 * crawler does), §6 normalisation, refused schemes and bad hosts. */
#include "harness.h"

#include "../crawl/url.h"

typedef struct rcase {
  const char *ref, *want; /* want NULL: expect error err */
  int err;
} rcase;

#define BASE "http://a/b/c/d;p?q"

/* RFC 3986 §5.4.1 and §5.4.2, with the fragment dropped. */
static const rcase rfc_cases[] = {
    {"g:h", NULL, URL_ESCHEME},
    {"g", "http://a/b/c/g", 0},
    {"./g", "http://a/b/c/g", 0},
    {"g/", "http://a/b/c/g/", 0},
    {"/g", "http://a/g", 0},
    {"//g", "http://g/", 0},
    {"?y", "http://a/b/c/d;p?y", 0},
    {"g?y", "http://a/b/c/g?y", 0},
    {"#s", "http://a/b/c/d;p?q", 0},
    {"g#s", "http://a/b/c/g", 0},
    {"g?y#s", "http://a/b/c/g?y", 0},
    {";x", "http://a/b/c/;x", 0},
    {"g;x", "http://a/b/c/g;x", 0},
    {"g;x?y#s", "http://a/b/c/g;x?y", 0},
    {"", "http://a/b/c/d;p?q", 0},
    {".", "http://a/b/c/", 0},
    {"./", "http://a/b/c/", 0},
    {"..", "http://a/b/", 0},
    {"../", "http://a/b/", 0},
    {"../g", "http://a/b/g", 0},
    {"../..", "http://a/", 0},
    {"../../", "http://a/", 0},
    {"../../g", "http://a/g", 0},
    /* §5.4.2 abnormal */
    {"../../../g", "http://a/g", 0},
    {"../../../../g", "http://a/g", 0},
    {"/./g", "http://a/g", 0},
    {"/../g", "http://a/g", 0},
    {"g.", "http://a/b/c/g.", 0},
    {".g", "http://a/b/c/.g", 0},
    {"g..", "http://a/b/c/g..", 0},
    {"..g", "http://a/b/c/..g", 0},
    {"./../g", "http://a/b/g", 0},
    {"./g/.", "http://a/b/c/g/", 0},
    {"g/./h", "http://a/b/c/g/h", 0},
    {"g/../h", "http://a/b/c/h", 0},
    {"g;x=1/./y", "http://a/b/c/g;x=1/y", 0},
    {"g;x=1/../y", "http://a/b/c/y", 0},
    {"g?y/./x", "http://a/b/c/g?y/./x", 0},
    {"g?y/../x", "http://a/b/c/g?y/../x", 0},
    {"g#s/./x", "http://a/b/c/g", 0},
    {"g#s/../x", "http://a/b/c/g", 0},
    {"http:g", NULL, URL_EPARSE}, /* strict: absolute, and no host */
};

START_TEST(url_resolve_rfc3986_examples) {
  for (size_t i = 0; i < sizeof rfc_cases / sizeof *rfc_cases; i++) {
    const rcase *c = &rfc_cases[i];
    char *out = NULL;
    int rc = url_resolve(BASE, c->ref, &out);
    if (c->want) {
      ck_assert_msg(rc == 0, "'%s': error %d", c->ref, rc);
      ck_assert_msg(strcmp(out, c->want) == 0, "'%s' -> '%s', want '%s'",
                    c->ref, out, c->want);
      free(out);
    } else {
      ck_assert_msg(rc == c->err, "'%s': rc %d, want %d", c->ref, rc,
                    c->err);
    }
  }
}
END_TEST

/* Resolution beyond the RFC's table: HTML attribute habits, schemes. */
static const struct {
  const char *base, *ref, *want;
  int err;
} more_cases[] = {
    {"http://h/a/b.html", "  c.png \n", "http://h/a/c.png", 0},
    {"http://h/a/b.html", "c\td.png", "http://h/a/cd.png", 0},
    {"http://h/a/b.html", "img/a b.png", "http://h/a/img/a%20b.png", 0},
    {"http://h/a/", "\xc3\xa9t\xc3\xa9.jpg", "http://h/a/%C3%A9t%C3%A9.jpg", 0},
    {"http://h/a/", "data:image/png;base64,AAAA", NULL, URL_ESCHEME},
    {"http://h/a/", "javascript:alert(1)", NULL, URL_ESCHEME},
    {"http://h/a/", "mailto:x@y", NULL, URL_ESCHEME},
    {"http://h/a/", "ftp://h/x", NULL, URL_ESCHEME},
    {"http://h/a/", "HTTPS://H/x", "https://h/x", 0},
    {"https://h/a/", "//cdn.example/x.png", "https://cdn.example/x.png", 0},
    {"http://h/a/", "//", NULL, URL_EPARSE},
    {"http://h/a/", "http://bad host/", NULL, URL_EPARSE},
    {"http://h/a/", "x?q=1#frag", "http://h/a/x?q=1", 0},
    {"http://h/a/", "/%7Euser/%2fx", "http://h/~user/%2Fx", 0},
    {"http://h/a/b", "?", "http://h/a/b?", 0},
};

START_TEST(url_resolve_html_cases) {
  for (size_t i = 0; i < sizeof more_cases / sizeof *more_cases; i++) {
    char *out = NULL;
    int rc = url_resolve(more_cases[i].base, more_cases[i].ref, &out);
    if (more_cases[i].want) {
      ck_assert_msg(rc == 0, "case %zu: error %d", i, rc);
      ck_assert_msg(strcmp(out, more_cases[i].want) == 0,
                    "case %zu: '%s', want '%s'", i, out, more_cases[i].want);
      free(out);
    } else {
      ck_assert_msg(rc == more_cases[i].err, "case %zu: rc %d, want %d", i,
                    rc, more_cases[i].err);
    }
  }
}
END_TEST

/* RFC 3986 §6.2.2 and §6.2.3. */
static const struct {
  const char *in, *want;
  int err;
} norm_cases[] = {
    {"HTTP://Example.COM/", "http://example.com/", 0},
    {"http://example.com", "http://example.com/", 0},
    {"http://example.com:80/", "http://example.com/", 0},
    {"http://example.com:/", "http://example.com/", 0},
    {"https://example.com:443/x", "https://example.com/x", 0},
    {"https://example.com:80/x", "https://example.com:80/x", 0},
    {"http://example.com:8080/x", "http://example.com:8080/x", 0},
    {"http://example.com:0080/x", "http://example.com/x", 0},
    {"http://example.com:65536/", NULL, URL_EPARSE},
    {"http://example.com:8a/", NULL, URL_EPARSE},
    {"http://a/%7e", "http://a/~", 0},
    {"http://a/%7E%41%2d%5f%2E", "http://a/~A-_.", 0},
    {"http://a/%3a%2f%3F", "http://a/%3A%2F%3F", 0},
    {"http://a/%zz%4", "http://a/%25zz%254", 0},
    {"http://a/b/../c/./d", "http://a/c/d", 0},
    {"http://a/b/%2E%2E/c", "http://a/c", 0},
    {"http://a/./", "http://a/", 0},
    {"http://a/b?x=%7e&y=a b", "http://a/b?x=~&y=a%20b", 0},
    {"http://a/b#frag", "http://a/b", 0},
    {"http://User@A/b", "http://User@a/b", 0},
    {"http://[::1]:8080/x", "http://[::1]:8080/x", 0},
    {"http://[::1/", NULL, URL_EPARSE},
    {"http:///x", NULL, URL_EPARSE},
    {"http:/x", NULL, URL_EPARSE},
    {"/relative", NULL, URL_EPARSE},
    {"file:///etc/passwd", NULL, URL_ESCHEME},
    {"gopher://a/", NULL, URL_ESCHEME},
    {"http://exa mple.com/", NULL, URL_EPARSE},
    {"http://\xc3\xa9.com/", NULL, URL_EPARSE},
    {"http://a/\"<>\\^`{|}", "http://a/%22%3C%3E%5C%5E%60%7B%7C%7D", 0},
    {"http://a/b/..", "http://a/", 0},
    {"http://a/b/.", "http://a/b/", 0},
};

START_TEST(url_normalize_rfc3986_section6) {
  for (size_t i = 0; i < sizeof norm_cases / sizeof *norm_cases; i++) {
    char *out = NULL;
    int rc = url_normalize(norm_cases[i].in, &out);
    if (norm_cases[i].want) {
      ck_assert_msg(rc == 0, "'%s': error %d", norm_cases[i].in, rc);
      ck_assert_msg(strcmp(out, norm_cases[i].want) == 0,
                    "'%s' -> '%s', want '%s'", norm_cases[i].in, out,
                    norm_cases[i].want);
      /* idempotent */
      char *again = NULL;
      ck_assert_int_eq(url_normalize(out, &again), 0);
      ck_assert_str_eq(again, out);
      free(again);
      free(out);
    } else {
      ck_assert_msg(rc == norm_cases[i].err, "'%s': rc %d, want %d",
                    norm_cases[i].in, rc, norm_cases[i].err);
    }
  }
}
END_TEST

START_TEST(url_host_and_path) {
  char h[64];
  ck_assert_int_eq(url_host("http://u@a.b:81/x?y", h, sizeof h), 0);
  ck_assert_str_eq(h, "a.b:81");
  ck_assert_int_eq(url_host("http://a/", h, 1), URL_EPARSE);
  ck_assert_str_eq(url_path("http://a.b:81/x/y?z"), "/x/y?z");
  ck_assert_str_eq(url_path("https://a/"), "/");
}
END_TEST

CONC_TEST_MAIN("crawl-url", url_resolve_rfc3986_examples,
               url_resolve_html_cases, url_normalize_rfc3986_section6,
               url_host_and_path)
