/* strset.h - a set of strings with an optional value each (open
 * addressing, FNV-1a).  Keys are copied.  Not thread-safe: callers lock. */
#ifndef CRAWL_STRSET_H
#define CRAWL_STRSET_H

#include <stddef.h>

typedef struct strset {
  char **keys;
  void **vals;
  size_t n, cap;
} strset;

/* Zero-filled storage is an empty set. */
/* Add key (with val): 1 if added, 0 if present (val not changed), -1 out
 * of memory. */
int strset_add(strset *s, const char *key, void *val);
/* The value of key through *val (may be NULL): 1 if present, else 0. */
int strset_get(const strset *s, const char *key, void **val);
/* Free the keys, and each value with free_val (may be NULL). */
void strset_free(strset *s, void (*free_val)(void *));

#endif
