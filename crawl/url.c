/* url.c - RFC 3986 parsing, resolution and normalisation of http(s) URLs.
 *
 * DESIGN: a URI is split with the regular expression of RFC 3986
 * appendix B into scheme, authority, path, query and fragment (pointer +
 * length pairs into the caller's string, no copies).  Resolution follows
 * §5.2.2 literally and produces a string; url_normalize then parses that
 * string again and rebuilds it in normal form (see url.h), so there is a
 * single place where the normal form is decided.  No global state.
 */
#include "url.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct part {
  const char *p;
  size_t n;
  bool has;
} part;

typedef struct uri {
  part scheme, authority, path, query, fragment;
} uri;

/* A growing string. */
typedef struct sbuf {
  char *s;
  size_t n, cap;
  bool oom;
} sbuf;

static void sb_putn(sbuf *b, const char *s, size_t n) {
  if (b->oom)
    return;
  if (n > SIZE_MAX / 4 || b->n > SIZE_MAX / 4) { /* also tells gcc -O3 that
                                                   n + 1 cannot wrap */
    b->oom = true;
    return;
  }
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + n + 1)
      cap *= 2;
    char *t = realloc(b->s, cap);
    if (!t) {
      b->oom = true;
      return;
    }
    b->s = t;
    b->cap = cap;
  }
  memcpy(b->s + b->n, s, n);
  b->n += n;
  b->s[b->n] = 0;
}
static void sb_puts(sbuf *b, const char *s) { sb_putn(b, s, strlen(s)); }
static void sb_putc(sbuf *b, char c) { sb_putn(b, &c, 1); }

/* RFC 3986 appendix B:
 *   ^(([^:/?#]+):)?(//([^/?#]*))?([^?#]*)(\?([^#]*))?(#(.*))?
 * A scheme must also match ALPHA *( ALPHA / DIGIT / "+" / "-" / "." );
 * otherwise the colon belongs to the path ("1a:b" is a relative path). */
static void split(const char *s, uri *u) {
  memset(u, 0, sizeof *u);
  const char *p = s;
  size_t i = strcspn(p, ":/?#");
  if (p[i] == ':' && i > 0 && isalpha((unsigned char)p[0])) {
    bool ok = true;
    for (size_t k = 1; k < i; k++)
      if (!isalnum((unsigned char)p[k]) && !strchr("+-.", p[k]))
        ok = false;
    if (ok) {
      u->scheme = (part){p, i, true};
      p += i + 1;
    }
  }
  if (p[0] == '/' && p[1] == '/') {
    p += 2;
    size_t n = strcspn(p, "/?#");
    u->authority = (part){p, n, true};
    p += n;
  }
  size_t n = strcspn(p, "?#");
  u->path = (part){p, n, true};
  p += n;
  if (*p == '?') {
    p++;
    n = strcspn(p, "#");
    u->query = (part){p, n, true};
    p += n;
  }
  if (*p == '#') {
    p++;
    u->fragment = (part){p, strlen(p), true};
  }
}

/* RFC 3986 §5.2.4 remove_dot_segments, on in[0..n) into out. */
static void remove_dots(const char *in, size_t n, sbuf *out) {
  sbuf o = {0};
  size_t i = 0;
  while (i < n) {
    const char *a = in + i;
    size_t left = n - i;
#define AT(lit) (left >= sizeof(lit) - 1 && memcmp(a, lit, sizeof(lit) - 1) == 0)
    if (AT("../")) {
      i += 3;
    } else if (AT("./")) {
      i += 2;
    } else if (AT("/./")) {
      i += 2; /* replace "/./" with "/" */
    } else if (left == 2 && AT("/.")) {
      sb_putc(&o, '/'); /* "/." at the end becomes "/" */
      i = n;
    } else if (AT("/../") || (left == 3 && AT("/.."))) {
      /* drop the last output segment and its preceding "/" */
      while (o.n > 0 && o.s[o.n - 1] != '/')
        o.n--;
      if (o.n > 0)
        o.n--;
      if (o.s)
        o.s[o.n] = 0;
      if (left == 3) {
        sb_putc(&o, '/');
        i = n;
      } else {
        i += 3; /* leave the "/" that starts the rest */
      }
    } else if ((left == 1 && a[0] == '.') || (left == 2 && AT(".."))) {
      i = n;
    } else {
      /* move the first segment (with its leading "/") to the output */
      size_t k = 1;
      while (k < left && a[k] != '/')
        k++;
      if (a[0] != '/') {
        k = 0;
        while (k < left && a[k] != '/')
          k++;
      }
      sb_putn(&o, a, k);
      i += k;
    }
#undef AT
  }
  if (o.oom)
    out->oom = true;
  else if (o.n)
    sb_putn(out, o.s, o.n);
  free(o.s);
}

static int hexval(int c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static bool unreserved(int c) {
  return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* Characters kept as they are: unreserved, gen-delims and sub-delims. */
static bool allowed(int c) {
  return unreserved(c) || (c && strchr(":/?#[]@!$&'()*+,;=", c));
}

/* Percent-encoding normalisation of s[0..n) into out. */
static void norm_escapes(const char *s, size_t n, sbuf *out) {
  static const char hex[] = "0123456789ABCDEF";
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 &&
        hexval(s[i + 2]) >= 0) {
      int v = hexval(s[i + 1]) * 16 + hexval(s[i + 2]);
      if (unreserved(v)) {
        sb_putc(out, (char)v);
      } else {
        char e[3] = {'%', hex[v >> 4], hex[v & 15]};
        sb_putn(out, e, 3);
      }
      i += 2;
    } else if (c != '%' && allowed(c)) {
      sb_putc(out, (char)c);
    } else {
      char e[3] = {'%', hex[c >> 4], hex[c & 15]};
      sb_putn(out, e, 3);
    }
  }
}

char *url_normalize_escapes(const char *s, size_t n) {
  sbuf b = {0};
  sb_putn(&b, "", 0);
  norm_escapes(s, n, &b);
  if (b.oom) {
    free(b.s);
    return NULL;
  }
  return b.s;
}

/* Trim blanks (C0 controls and space) at both ends, drop tab, CR, LF. */
static char *clean_ref(const char *ref) {
  size_t n = strlen(ref), a = 0;
  while (a < n && (unsigned char)ref[a] <= ' ')
    a++;
  while (n > a && (unsigned char)ref[n - 1] <= ' ')
    n--;
  char *o = malloc(n - a + 1);
  if (!o)
    return NULL;
  size_t k = 0;
  for (size_t i = a; i < n; i++)
    if (ref[i] != '\t' && ref[i] != '\n' && ref[i] != '\r')
      o[k++] = ref[i];
  o[k] = 0;
  return o;
}

static bool scheme_ok(part s, bool *https) {
  if (s.n == 4 && strncasecmp(s.p, "http", 4) == 0) {
    *https = false;
    return true;
  }
  if (s.n == 5 && strncasecmp(s.p, "https", 5) == 0) {
    *https = true;
    return true;
  }
  return false;
}

/* Normalised authority into out; URL_EPARSE if invalid. */
static int norm_authority(part a, bool https, sbuf *out) {
  const char *p = a.p, *end = a.p + a.n;
  const char *at = NULL;
  for (const char *q = p; q < end; q++)
    if (*q == '@')
      at = q;
  if (at) {
    norm_escapes(p, (size_t)(at - p), out);
    sb_putc(out, '@');
    p = at + 1;
  }
  const char *hend;
  if (p < end && *p == '[') {
    const char *r = memchr(p, ']', (size_t)(end - p));
    if (!r || r == p + 1)
      return URL_EPARSE;
    for (const char *q = p + 1; q < r; q++)
      if (!isxdigit((unsigned char)*q) && *q != ':' && *q != '.')
        return URL_EPARSE;
    hend = r + 1;
  } else {
    hend = p;
    while (hend < end && *hend != ':')
      hend++;
    if (hend == p)
      return URL_EPARSE;
    for (const char *q = p; q < hend; q++)
      if (!isalnum((unsigned char)*q) && *q != '-' && *q != '.' && *q != '_')
        return URL_EPARSE;
  }
  for (const char *q = p; q < hend; q++)
    sb_putc(out, (char)tolower((unsigned char)*q));
  if (hend < end) {
    if (*hend != ':')
      return URL_EPARSE;
    const char *d = hend + 1;
    if (d < end) {
      long port = 0;
      for (const char *q = d; q < end; q++) {
        if (!isdigit((unsigned char)*q))
          return URL_EPARSE;
        port = port * 10 + (*q - '0');
        if (port > 65535)
          return URL_EPARSE;
      }
      if (port != (https ? 443 : 80)) {
        char num[24];
        snprintf(num, sizeof num, ":%ld", port);
        sb_puts(out, num);
      }
    }
  }
  return 0;
}

static int normalize_clean(const char *s, char **out) {
  uri u;
  split(s, &u);
  bool https;
  if (!u.scheme.has)
    return URL_EPARSE;
  if (!scheme_ok(u.scheme, &https))
    return URL_ESCHEME;
  if (!u.authority.has)
    return URL_EPARSE;
  sbuf b = {0};
  sb_puts(&b, https ? "https://" : "http://");
  int rc = norm_authority(u.authority, https, &b);
  if (rc < 0) {
    free(b.s);
    return rc;
  }
  sbuf path = {0};
  norm_escapes(u.path.p, u.path.n, &path);
  if (path.n == 0)
    sb_putc(&b, '/');
  else
    remove_dots(path.s, path.n, &b);
  if (path.oom)
    b.oom = true;
  free(path.s);
  if (u.query.has) {
    sb_putc(&b, '?');
    norm_escapes(u.query.p, u.query.n, &b);
  }
  if (b.oom) {
    free(b.s);
    return URL_ENOMEM;
  }
  *out = b.s;
  return 0;
}

int url_normalize(const char *in, char **out) {
  char *c = clean_ref(in);
  if (!c)
    return URL_ENOMEM;
  int rc = normalize_clean(c, out);
  free(c);
  return rc;
}

/* §5.2.3 merge: base path up to its last "/", then ref's path. */
static void merge(const uri *base, part rpath, sbuf *out) {
  if (base->authority.has && base->path.n == 0) {
    sb_putc(out, '/');
  } else {
    size_t k = base->path.n;
    while (k > 0 && base->path.p[k - 1] != '/')
      k--;
    sb_putn(out, base->path.p, k);
  }
  sb_putn(out, rpath.p, rpath.n);
}

int url_resolve(const char *base, const char *ref, char **out) {
  char *r = clean_ref(ref);
  if (!r)
    return URL_ENOMEM;
  uri R, B;
  split(r, &R);
  split(base, &B);
  bool https;
  if (R.scheme.has && !scheme_ok(R.scheme, &https)) {
    free(r);
    return URL_ESCHEME;
  }
  if (!B.scheme.has || !scheme_ok(B.scheme, &https) || !B.authority.has) {
    free(r);
    return URL_EPARSE;
  }
  /* §5.2.2, building the target as a string */
  sbuf t = {0};
  if (R.scheme.has) {
    sb_putn(&t, r, strlen(r));
  } else {
    sb_putn(&t, B.scheme.p, B.scheme.n);
    sb_putc(&t, ':');
    if (R.authority.has) {
      sb_puts(&t, "//");
      sb_putn(&t, R.authority.p, R.authority.n);
      remove_dots(R.path.p, R.path.n, &t);
      if (R.query.has) {
        sb_putc(&t, '?');
        sb_putn(&t, R.query.p, R.query.n);
      }
    } else {
      sb_puts(&t, "//");
      sb_putn(&t, B.authority.p, B.authority.n);
      if (R.path.n == 0) {
        sb_putn(&t, B.path.p, B.path.n);
        const part *q = R.query.has ? &R.query : &B.query;
        if (q->has) {
          sb_putc(&t, '?');
          sb_putn(&t, q->p, q->n);
        }
      } else {
        sbuf m = {0};
        if (R.path.p[0] == '/')
          sb_putn(&m, R.path.p, R.path.n);
        else
          merge(&B, R.path, &m);
        if (m.oom)
          t.oom = true;
        else
          remove_dots(m.s, m.n, &t);
        free(m.s);
        if (R.query.has) {
          sb_putc(&t, '?');
          sb_putn(&t, R.query.p, R.query.n);
        }
      }
    }
  }
  free(r);
  if (t.oom || !t.s) {
    free(t.s);
    return URL_ENOMEM;
  }
  int rc = normalize_clean(t.s, out);
  free(t.s);
  return rc;
}

int url_host(const char *url, char *buf, size_t cap) {
  const char *p = strstr(url, "://");
  if (!p)
    return URL_EPARSE;
  p += 3;
  size_t n = strcspn(p, "/?#");
  const char *at = memchr(p, '@', n);
  if (at) {
    n -= (size_t)(at + 1 - p);
    p = at + 1;
  }
  if (n + 1 > cap)
    return URL_EPARSE;
  memcpy(buf, p, n);
  buf[n] = 0;
  return 0;
}

const char *url_path(const char *url) {
  const char *p = strstr(url, "://");
  if (!p)
    return url;
  p += 3;
  return p + strcspn(p, "/?#");
}
