/* extract.h - links and image addresses of an HTML page (libxml2's HTML
 * parser, which recovers from malformed markup as browsers do).
 *
 * Found: <a href> and <area href> (links); <img src>, <img srcset> and
 * <source srcset> (images; every candidate of a srcset).  Each address is
 * resolved against the document's base URL - the href of the first <base>
 * that has one, resolved against the page's own URL, else the page's URL -
 * and normalised (url.h).  Addresses that do not resolve to an http(s) URL
 * (data:, javascript:, mailto:, ...) or do not parse are refused and only
 * counted.
 *
 * Thread-safe: call extract_init() once before threads start (it
 * initialises libxml2); then any thread may extract.
 */
#ifndef CRAWL_EXTRACT_H
#define CRAWL_EXTRACT_H

#include <stddef.h>

typedef enum extract_kind { EXTRACT_LINK = 1, EXTRACT_IMAGE = 2 } extract_kind;

/* Called for each address found, in document order; url is normalised and
 * only valid during the call.  Return 0 to go on, non-zero to stop. */
typedef int (*extract_fn)(void *ctx, extract_kind kind, const char *url);

void extract_init(void);

/* Parse html[0..n) fetched from page_url and report what it holds.
 * *refused (may be NULL) counts the addresses refused.  Returns 0, 1 if fn
 * stopped it, or -1 if the page could not be parsed at all (out of memory;
 * empty input is a page with nothing in it). */
int extract_html(const char *html, size_t n, const char *page_url,
                 extract_fn fn, void *ctx, unsigned *refused);

#endif
