/* store.h - the output folder: content-addressed files and a journal.
 *
 * Each image is written as <sha256 of its bytes><ext> (ext from the URL's
 * last path segment, else from the content type, else ".bin"): first to an
 * unnamed file (O_TMPFILE) that is then linked under its final name (four
 * system calls: open, write, link, close); where the file system or /proc
 * cannot do that, to a hidden ".<sha>.<pid>.<n>.part" file, then linked
 * under its final name (and the .part removed).  Either way a file with a
 * final name is always complete.  After the link a line
 * "<name>\t<size>\t<url>\n" is appended to the journal
 * (<dir>/.conc-crawl.journal) with one write(2) in O_APPEND mode.  A
 * later run (store_open on the same folder) loads the journal, keeps the
 * entries whose file exists with the right size, and deletes leftover
 * .part files, so a crawl interrupted at any point resumes: images in the
 * journal are not fetched again.
 *
 * Thread- and process-safe after store_open: lookups read the journal as
 * loaded at open (read-only), puts touch only the file system.  A store
 * opened before fork() may be used by the children.
 */
#ifndef CRAWL_STORE_H
#define CRAWL_STORE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct store store;

#define STORE_NAME_MAX 80

/* Open (create) dir.  Returns 0 with *out set, or -errno with a message in
 * err. */
int store_open(const char *dir, store **out, char *err, size_t errcap);
void store_close(store *s);
/* Entries loaded from the journal at open. */
size_t store_resumed(const store *s);
/* 1 with name and *size set if url was stored by an earlier run. */
int store_lookup(const store *s, const char *url, char name[STORE_NAME_MAX],
                 unsigned long long *size);
/* Store body[0..n) fetched from url.  name receives the file name; *fresh
 * is true if the file did not exist yet (false: same bytes already
 * stored).  Returns 0, or -errno with a message in err. */
int store_put(store *s, const char *url, const char *content_type,
              const void *body, size_t n, char name[STORE_NAME_MAX],
              bool *fresh, char *err, size_t errcap);
/* The extension store_put uses (".png", ".bin"...) into ext[8]. */
void store_ext(const char *url, const char *content_type, char ext[8]);

#endif
