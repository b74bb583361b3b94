/* robots.c - RFC 9309 parsing and matching.
 *
 * DESIGN: one pass over the lines.  Each line is "key: value # comment";
 * a user-agent line following a rule line (or the start) opens a new
 * group.  Rules of groups naming our product token go to one list and
 * rules of "*" groups to another; at the end the first list is kept if
 * any group named us, else the second.  Matching is the usual position-set
 * walk over the pattern (linear in pattern x path, no backtracking), so a
 * hostile file cannot make matching exponential.
 */
#include "robots.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "url.h"

#define ROBOTS_MAX_BYTES (512 * 1024)

typedef struct rule {
  char *pattern;
  size_t len;
  bool allow;
} rule;

typedef struct rules {
  rule *v;
  size_t n, cap;
} rules;

struct robots {
  rules r;
  bool disallow_all;
};

static void rules_free(rules *r) {
  for (size_t i = 0; i < r->n; i++)
    free(r->v[i].pattern);
  free(r->v);
  r->v = NULL;
  r->n = r->cap = 0;
}

static int rules_add(rules *r, const char *p, size_t n, bool allow) {
  if (r->n == r->cap) {
    size_t cap = r->cap ? 2 * r->cap : 8;
    rule *v = realloc(r->v, cap * sizeof *v);
    if (!v)
      return -1;
    r->v = v;
    r->cap = cap;
  }
  char *pat = url_normalize_escapes(p, n);
  if (!pat)
    return -1;
  r->v[r->n++] = (rule){pat, strlen(pat), allow};
  return 0;
}

/* Length of the product token at s: [A-Za-z_-]*. */
static size_t token_len(const char *s, size_t n) {
  size_t k = 0;
  while (k < n && (isalpha((unsigned char)s[k]) || s[k] == '_' || s[k] == '-'))
    k++;
  return k;
}

static void trim(const char **p, size_t *n) {
  while (*n && isspace((unsigned char)**p)) {
    (*p)++;
    (*n)--;
  }
  while (*n && isspace((unsigned char)(*p)[*n - 1]))
    (*n)--;
}

robots *robots_parse(const char *txt, size_t n, const char *agent) {
  robots *r = calloc(1, sizeof *r);
  if (!r)
    return NULL;
  if (n > ROBOTS_MAX_BYTES)
    n = ROBOTS_MAX_BYTES;
  size_t alen = token_len(agent, strlen(agent));
  rules mine = {0}, star = {0};
  bool named = false;           /* some group names us */
  bool g_mine = false, g_star = false, g_open = false;
  bool last_was_agent = false;
  size_t i = 0;
  while (i < n) {
    size_t e = i;
    while (e < n && txt[e] != '\n' && txt[e] != '\r')
      e++;
    const char *line = txt + i;
    size_t len = e - i;
    i = e < n ? e + 1 : n;
    const char *hash = memchr(line, '#', len);
    if (hash)
      len = (size_t)(hash - line);
    const char *colon = memchr(line, ':', len);
    if (!colon)
      continue;
    const char *key = line, *val = colon + 1;
    size_t klen = (size_t)(colon - line), vlen = len - klen - 1;
    trim(&key, &klen);
    trim(&val, &vlen);
    if (klen == 10 && strncasecmp(key, "user-agent", 10) == 0) {
      if (!last_was_agent) {
        g_mine = g_star = false; /* a new group */
        g_open = true;
      }
      last_was_agent = true;
      if (vlen == 1 && val[0] == '*') {
        g_star = true;
      } else {
        size_t t = token_len(val, vlen);
        if (t > 0 && t == alen && strncasecmp(val, agent, t) == 0) {
          g_mine = true;
          named = true;
        }
      }
      continue;
    }
    bool allow = klen == 5 && strncasecmp(key, "allow", 5) == 0;
    bool disallow = klen == 8 && strncasecmp(key, "disallow", 8) == 0;
    if (!allow && !disallow)
      continue; /* sitemap, crawl-delay, unknown: not group members */
    last_was_agent = false;
    if (!g_open || vlen == 0)
      continue;
    if ((g_mine && rules_add(&mine, val, vlen, allow) < 0) ||
        (g_star && rules_add(&star, val, vlen, allow) < 0)) {
      rules_free(&mine);
      rules_free(&star);
      free(r);
      return NULL;
    }
  }
  if (named) {
    r->r = mine;
    rules_free(&star);
  } else {
    r->r = star;
    rules_free(&mine);
  }
  return r;
}

robots *robots_allow_all(void) { return calloc(1, sizeof(robots)); }

robots *robots_disallow_all(void) {
  robots *r = calloc(1, sizeof *r);
  if (r)
    r->disallow_all = true;
  return r;
}

void robots_free(robots *r) {
  if (!r)
    return;
  rules_free(&r->r);
  free(r);
}

bool robots_match(const char *pat, const char *path) {
  size_t plen = strlen(path), n = strlen(pat);
  size_t *pos = malloc((plen + 1) * sizeof *pos);
  if (!pos)
    return false;
  size_t np = 1;
  pos[0] = 0;
  bool ok = true;
  for (size_t j = 0; j < n && ok; j++) {
    char c = pat[j];
    if (c == '$' && j + 1 == n) {
      ok = pos[np - 1] == plen;
      break;
    }
    if (c == '*') {
      np = plen - pos[0] + 1;
      for (size_t k = 1; k < np; k++)
        pos[k] = pos[0] + k;
      continue;
    }
    size_t nn = 0;
    for (size_t k = 0; k < np; k++)
      if (pos[k] < plen && path[pos[k]] == c)
        pos[nn++] = pos[k] + 1;
    np = nn;
    if (np == 0)
      ok = false;
  }
  free(pos);
  return ok;
}

bool robots_allowed(const robots *r, const char *path) {
  if (strcmp(path, "/robots.txt") == 0)
    return true;
  if (r->disallow_all)
    return false;
  long best_allow = -1, best_dis = -1;
  for (size_t i = 0; i < r->r.n; i++) {
    const rule *u = &r->r.v[i];
    long len = (long)u->len;
    if ((u->allow ? best_allow : best_dis) >= len)
      continue;
    if (!robots_match(u->pattern, path))
      continue;
    if (u->allow)
      best_allow = len;
    else
      best_dis = len;
  }
  return best_dis < 0 || best_allow >= best_dis;
}
