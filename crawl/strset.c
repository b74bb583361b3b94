/* strset.c - open addressing with linear probing, kept at most half full. */
#include "strset.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t hash(const char *s) {
  uint64_t h = 14695981039346656037ull;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static size_t find(char **keys, size_t cap, const char *key) {
  size_t i = (size_t)hash(key) & (cap - 1);
  while (keys[i] && strcmp(keys[i], key) != 0)
    i = (i + 1) & (cap - 1);
  return i;
}

static int grow(strset *s) {
  size_t cap = s->cap ? 2 * s->cap : 64;
  char **keys = calloc(cap, sizeof *keys);
  void **vals = calloc(cap, sizeof *vals);
  if (!keys || !vals) {
    free(keys);
    free(vals);
    return -1;
  }
  for (size_t i = 0; i < s->cap; i++)
    if (s->keys[i]) {
      size_t j = find(keys, cap, s->keys[i]);
      keys[j] = s->keys[i];
      vals[j] = s->vals[i];
    }
  free(s->keys);
  free(s->vals);
  s->keys = keys;
  s->vals = vals;
  s->cap = cap;
  return 0;
}

int strset_add(strset *s, const char *key, void *val) {
  if (2 * (s->n + 1) > s->cap && grow(s) < 0)
    return -1;
  size_t i = find(s->keys, s->cap, key);
  if (s->keys[i])
    return 0;
  char *k = strdup(key);
  if (!k)
    return -1;
  s->keys[i] = k;
  s->vals[i] = val;
  s->n++;
  return 1;
}

int strset_get(const strset *s, const char *key, void **val) {
  if (s->cap == 0)
    return 0;
  size_t i = find(s->keys, s->cap, key);
  if (!s->keys[i])
    return 0;
  if (val)
    *val = s->vals[i];
  return 1;
}

void strset_free(strset *s, void (*free_val)(void *)) {
  for (size_t i = 0; i < s->cap; i++)
    if (s->keys[i]) {
      free(s->keys[i]);
      if (free_val)
        free_val(s->vals[i]);
    }
  free(s->keys);
  free(s->vals);
  memset(s, 0, sizeof *s);
}
