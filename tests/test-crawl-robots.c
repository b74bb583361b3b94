/* test-crawl-robots.c - conc-crawl's robots.txt rules (crawl/robots.c)
 * against RFC 9309: groups, user-agent matching, longest match, "*" and
 * "$", Allow winning ties, comments, odd line endings. */
#include "harness.h"

#include "../crawl/robots.h"

typedef struct rcase {
  const char *txt, *agent, *path;
  bool allowed;
} rcase;

#define UA "conc-crawl"

static const rcase cases[] = {
    /* empty file, no rules */
    {"", UA, "/", true},
    {"# only a comment\n", UA, "/x", true},
    /* the "*" group */
    {"User-agent: *\nDisallow: /\n", UA, "/", false},
    {"User-agent: *\nDisallow: /\n", UA, "/robots.txt", true},
    {"User-agent: *\nDisallow: /private\n", UA, "/private/x", false},
    {"User-agent: *\nDisallow: /private\n", UA, "/privateer", false},
    {"User-agent: *\nDisallow: /private/\n", UA, "/private", true},
    {"User-agent: *\nDisallow:\n", UA, "/x", true},
    /* our own group beats "*" */
    {"User-agent: *\nDisallow: /\n\nUser-agent: conc-crawl\nAllow: /\n", UA,
     "/x", true},
    {"User-agent: conc-crawl\nDisallow: /a\n\nUser-agent: *\nDisallow: /\n",
     UA, "/b", true},
    {"User-agent: conc-crawl\nDisallow: /a\n\nUser-agent: *\nDisallow: /\n",
     UA, "/a", false},
    /* case-insensitive token, version ignored */
    {"User-agent: CONC-Crawl/2.0\nDisallow: /x\n", UA, "/x", false},
    {"user-AGENT: conc-crawl\ndisallow: /x\n", "conc-crawl/1.0", "/x",
     false},
    /* another crawler's group does not apply */
    {"User-agent: otherbot\nDisallow: /\n", UA, "/x", true},
    {"User-agent: conc\nDisallow: /\n", UA, "/x", true},
    /* several user-agent lines in one group */
    {"User-agent: a\nUser-agent: conc-crawl\nDisallow: /x\n", UA, "/x",
     false},
    /* groups naming us are merged */
    {"User-agent: conc-crawl\nDisallow: /a\n\nUser-agent: b\nDisallow: /\n"
     "User-agent: conc-crawl\nDisallow: /c\n",
     UA, "/c/d", false},
    {"User-agent: conc-crawl\nDisallow: /a\nUser-agent: b\nDisallow: /b\n", UA,
     "/b", true},
    /* longest match wins */
    {"User-agent: *\nDisallow: /a\nAllow: /a/b\n", UA, "/a/b/c", true},
    {"User-agent: *\nAllow: /a\nDisallow: /a/b\n", UA, "/a/b/c", false},
    {"User-agent: *\nAllow: /a\nDisallow: /a/b\n", UA, "/a/c", true},
    /* tie: allow wins */
    {"User-agent: *\nDisallow: /page\nAllow: /page\n", UA, "/page", true},
    /* wildcards */
    {"User-agent: *\nDisallow: /*.gif$\n", UA, "/a/b.gif", false},
    {"User-agent: *\nDisallow: /*.gif$\n", UA, "/a/b.gif?x=1", true},
    {"User-agent: *\nDisallow: /*.gif\n", UA, "/a/b.gif?x=1", false},
    {"User-agent: *\nDisallow: /a*b\n", UA, "/a/x/y/b/z", false},
    {"User-agent: *\nDisallow: /a*b\n", UA, "/a/x/y/c", true},
    {"User-agent: *\nDisallow: /x$\n", UA, "/x", false},
    {"User-agent: *\nDisallow: /x$\n", UA, "/xy", true},
    {"User-agent: *\nDisallow: *\n", UA, "/anything", false},
    {"User-agent: *\nDisallow: /$x\n", UA, "/$x", false},
    {"User-agent: *\nDisallow: /\nAllow: /$\n", UA, "/", true},
    {"User-agent: *\nDisallow: /\nAllow: /$\n", UA, "/a", false},
    /* query strings are part of the path */
    {"User-agent: *\nDisallow: /search?q=\n", UA, "/search?q=cats", false},
    {"User-agent: *\nDisallow: /search?q=\n", UA, "/search", true},
    /* percent-encoding compared normalised */
    {"User-agent: *\nDisallow: /%7euser\n", UA, "/~user/x", false},
    {"User-agent: *\nDisallow: /caf\xc3\xa9\n", UA, "/caf%C3%A9", false},
    /* comments, blanks, CRLF and CR line ends, spacing around the colon */
    {"User-agent: * # all\r\nDisallow: /a # no\r\n", UA, "/a", false},
    {"User-agent: *\rDisallow: /a\r", UA, "/a", false},
    {"  User-agent :  *  \n  Disallow :  /a  \n", UA, "/a", false},
    /* rules before any user-agent line belong to no group */
    {"Disallow: /\nUser-agent: *\nDisallow: /x\n", UA, "/y", true},
    /* other records do not end a group of user-agent lines */
    {"User-agent: *\nCrawl-delay: 5\nDisallow: /a\n", UA, "/a", false},
    {"User-agent: *\nSitemap: http://a/s.xml\nDisallow: /a\n", UA, "/a",
     false},
    /* lines without a colon are ignored */
    {"User-agent *\nDisallow /\n", UA, "/x", true},
};

START_TEST(robots_rfc9309_table) {
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    robots *r = robots_parse(cases[i].txt, strlen(cases[i].txt),
                             cases[i].agent);
    ck_assert_ptr_nonnull(r);
    ck_assert_msg(robots_allowed(r, cases[i].path) == cases[i].allowed,
                  "case %zu: %s should be %s", i, cases[i].path,
                  cases[i].allowed ? "allowed" : "disallowed");
    robots_free(r);
  }
}
END_TEST

START_TEST(robots_allow_and_disallow_all) {
  robots *a = robots_allow_all(), *d = robots_disallow_all();
  ck_assert(robots_allowed(a, "/x"));
  ck_assert(!robots_allowed(d, "/x"));
  ck_assert(robots_allowed(d, "/robots.txt"));
  robots_free(a);
  robots_free(d);
  robots_free(NULL);
}
END_TEST

START_TEST(robots_match_is_linear) {
  /* a pattern that makes naive backtracking exponential */
  char pat[200], path[4000];
  memset(pat, 0, sizeof pat);
  for (int i = 0; i < 60; i++) {
    pat[2 * i] = '*';
    pat[2 * i + 1] = 'a';
  }
  strcat(pat, "b");
  memset(path, 'a', sizeof path - 1);
  path[sizeof path - 1] = 0;
  ck_assert(!robots_match(pat, path));
  ck_assert(robots_match("/a*", "/abc"));
}
END_TEST

START_TEST(robots_size_limit) {
  /* rules after the first 512 KiB are not read */
  size_t n = 600 * 1024;
  char *t = malloc(n + 64);
  memset(t, '#', n);
  t[0] = '\n';
  for (size_t i = 1000; i < n; i += 1000)
    t[i] = '\n';
  strcpy(t + n, "\nUser-agent: *\nDisallow: /\n");
  robots *r = robots_parse(t, strlen(t), UA);
  ck_assert(robots_allowed(r, "/x"));
  robots_free(r);
  free(t);
}
END_TEST

CONC_TEST_MAIN("crawl-robots", robots_rfc9309_table,
               robots_allow_and_disallow_all, robots_match_is_linear,
               robots_size_limit)
