/* url.h - absolute http(s) URLs: parse, resolve, normalise (RFC 3986).
 *
 * Every URL the crawler keeps is in the normal form made here, so that two
 * spellings of one resource compare equal as strings:
 *   - RFC 3986 §5.2 resolution of a reference against a base;
 *   - §6.2.2 syntax-based normalisation: scheme and host in lower case,
 *     percent-encoding hex digits in upper case, escaped unreserved
 *     characters decoded, dot segments removed;
 *   - §6.2.3 scheme-based normalisation: default port (80 / 443) and empty
 *     port dropped, empty path made "/";
 *   - the fragment is dropped (it never reaches the server);
 *   - as browsers do with HTML attributes: leading and trailing blanks are
 *     trimmed, tabs and newlines inside are removed, and bytes not allowed
 *     in a URI (space, non-ASCII, '"', '<', '>', '\\', '^', '`', '{', '|',
 *     '}') are percent-encoded; a '%' not followed by two hex digits
 *     becomes "%25".
 * Only http and https are accepted; anything else (data:, javascript:,
 * mailto:, ftp:, ...) is refused with URL_ESCHEME.
 *
 * Results are malloc'd strings that the caller frees.  Thread-safe (no
 * state).
 */
#ifndef CRAWL_URL_H
#define CRAWL_URL_H

#include <stddef.h>

#define URL_EPARSE -1  /* not a URL we can use (bad host, port, syntax) */
#define URL_ESCHEME -2 /* a scheme other than http/https */
#define URL_ENOMEM -3

/* Normalise an absolute URL.  Returns 0 with *out set, or URL_E*. */
int url_normalize(const char *in, char **out);

/* Resolve ref against the absolute URL base (RFC 3986 §5.2.2, strict:
 * "http:g" is the absolute URL http:g, as the RFC says) and normalise.
 * Returns 0 with *out set, or URL_E* (URL_ESCHEME for a reference with a
 * scheme other than http/https, URL_EPARSE for an empty-host result). */
int url_resolve(const char *base, const char *ref, char **out);

/* Of a normalised URL: "host[:port]" (the authority without userinfo)
 * into buf.  Returns 0, or URL_EPARSE if it does not fit or is not one. */
int url_host(const char *url, char *buf, size_t cap);

/* Of a normalised URL: pointer to its path (with the query), "/..." */
const char *url_path(const char *url);

/* Percent-encoding normalisation of a path-like string (as applied to
 * paths): escape hex in upper case, unreserved characters decoded, bytes
 * not allowed in a URI encoded.  Used on robots.txt patterns.  Returns a
 * malloc'd string or NULL (no memory). */
char *url_normalize_escapes(const char *s, size_t n);

#endif
