/* extract.c - walk libxml2's HTML tree for links and images.
 *
 * DESIGN: htmlReadMemory builds the tree with recovery on and every
 * network access and error output off.  A first walk finds the base URL
 * (first <base href>), a second one reports addresses in document order.
 * The walks are iterative (child / next / parent pointers), so deeply
 * nested markup cannot exhaust the stack.  srcset is split as the HTML
 * standard's "parse a srcset attribute" does, keeping only the URLs.
 */
#include "extract.h"

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/HTMLparser.h>
#include <libxml/tree.h>

#include "url.h"

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static void init_xml(void) { xmlInitParser(); }
void extract_init(void) { pthread_once(&init_once, init_xml); }

typedef struct walk {
  const char *base;
  extract_fn fn;
  void *ctx;
  unsigned refused;
  bool stop;
} walk;

/* The next node in document order, or NULL. */
static xmlNode *next_node(xmlNode *n, xmlNode *root) {
  if (n->children)
    return n->children;
  while (n && n != root) {
    if (n->next)
      return n->next;
    n = n->parent;
  }
  return NULL;
}

static bool is(const xmlNode *n, const char *name) {
  return n->type == XML_ELEMENT_NODE &&
         xmlStrcasecmp(n->name, (const xmlChar *)name) == 0;
}

static char *attr(xmlNode *n, const char *name) {
  for (xmlAttr *a = n->properties; a; a = a->next)
    if (xmlStrcasecmp(a->name, (const xmlChar *)name) == 0)
      return (char *)xmlNodeGetContent((xmlNode *)a);
  return NULL;
}

static void report(walk *w, extract_kind kind, const char *ref, size_t len) {
  if (w->stop)
    return;
  char *r = strndup(ref, len), *abs = NULL;
  if (!r)
    return;
  if (url_resolve(w->base, r, &abs) == 0) {
    if (w->fn(w->ctx, kind, abs) != 0)
      w->stop = true;
    free(abs);
  } else {
    w->refused++;
  }
  free(r);
}

static bool blank(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

/* HTML standard, "parse a srcset attribute", URLs only. */
static void srcset(walk *w, const char *s) {
  size_t i = 0, n = strlen(s);
  while (i < n && !w->stop) {
    while (i < n && (blank(s[i]) || s[i] == ','))
      i++;
    if (i >= n)
      break;
    size_t a = i;
    while (i < n && !blank(s[i]))
      i++;
    size_t e = i;
    bool had_comma = false;
    while (e > a && s[e - 1] == ',') {
      e--;
      had_comma = true;
    }
    if (e > a)
      report(w, EXTRACT_IMAGE, s + a, e - a);
    if (had_comma)
      continue;
    /* skip descriptors up to the next comma outside parentheses */
    int paren = 0;
    while (i < n && (paren > 0 || s[i] != ',')) {
      if (s[i] == '(')
        paren++;
      else if (s[i] == ')' && paren > 0)
        paren--;
      i++;
    }
  }
}

static void one(walk *w, xmlNode *n, const char *name, extract_kind kind) {
  char *v = attr(n, name);
  if (v) {
    report(w, kind, v, strlen(v));
    xmlFree(v);
  }
}

int extract_html(const char *html, size_t n, const char *page_url,
                 extract_fn fn, void *ctx, unsigned *refused) {
  extract_init();
  if (refused)
    *refused = 0;
  if (n == 0)
    return 0;
  if (n > INT_MAX)
    n = INT_MAX;
  htmlDocPtr doc = htmlReadMemory(html, (int)n, NULL, NULL,
                                  HTML_PARSE_RECOVER | HTML_PARSE_NOERROR |
                                      HTML_PARSE_NOWARNING |
                                      HTML_PARSE_NONET);
  if (!doc)
    return 0; /* nothing libxml2 could make a tree of: no addresses */
  xmlNode *root = xmlDocGetRootElement(doc);
  char *base = NULL;
  for (xmlNode *x = root; x; x = next_node(x, root)) {
    if (is(x, "base")) {
      char *h = attr(x, "href");
      if (h) {
        if (url_resolve(page_url, h, &base) != 0)
          base = NULL;
        xmlFree(h);
        break;
      }
    }
  }
  walk w = {base ? base : page_url, fn, ctx, 0, false};
  for (xmlNode *x = root; x && !w.stop; x = next_node(x, root)) {
    if (x->type != XML_ELEMENT_NODE)
      continue;
    if (is(x, "a") || is(x, "area")) {
      one(&w, x, "href", EXTRACT_LINK);
    } else if (is(x, "img")) {
      one(&w, x, "src", EXTRACT_IMAGE);
      char *s = attr(x, "srcset");
      if (s) {
        srcset(&w, s);
        xmlFree(s);
      }
    } else if (is(x, "source")) {
      char *s = attr(x, "srcset");
      if (s) {
        srcset(&w, s);
        xmlFree(s);
      }
    }
  }
  free(base);
  xmlFreeDoc(doc);
  if (refused)
    *refused = w.refused;
  return w.stop ? 1 : 0;
}
