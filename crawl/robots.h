/* robots.h - robots.txt rules (RFC 9309, the Robots Exclusion Protocol).
 *
 *   robots *r = robots_parse(body, len, "conc-crawl");
 *   if (robots_allowed(r, url_path(url))) ... fetch
 *   robots_free(r);
 *
 * Groups start with one or more user-agent lines; the rules of every group
 * whose product token equals ours (case-insensitive, §2.2.1) are combined;
 * if there is none, those of the "*" groups apply; otherwise everything is
 * allowed.  Allow/Disallow patterns match a prefix of the path (with its
 * query), "*" matches any run of characters and a final "$" the end.  The
 * longest matching pattern (in octets) wins, Allow winning a tie
 * (§2.2.2).  An empty Disallow matches nothing.  "/robots.txt" is always
 * allowed.  Patterns and paths are compared after the same
 * percent-encoding normalisation (url.h).  Only the first 512 KiB of a
 * file is read (the RFC asks for at least 500 KiB).
 *
 * A robots value is immutable once made: any thread may query it.
 */
#ifndef CRAWL_ROBOTS_H
#define CRAWL_ROBOTS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct robots robots;

/* Rules of txt[0..n) for the product token agent (characters after the
 * first one not in [A-Za-z_-] are ignored: "conc-crawl/1.0" is
 * "conc-crawl").  NULL on allocation failure. */
robots *robots_parse(const char *txt, size_t n, const char *agent);
/* No rules (robots.txt unavailable: 4xx) / everything disallowed
 * (unreachable: 5xx or a network error, §2.3.1.3-4). */
robots *robots_allow_all(void);
robots *robots_disallow_all(void);
/* Whether path ("/..." with the query) may be fetched. */
bool robots_allowed(const robots *r, const char *path);
/* Whether a pattern matches a prefix of path (exposed for tests). */
bool robots_match(const char *pattern, const char *path);
void robots_free(robots *r);

#endif
