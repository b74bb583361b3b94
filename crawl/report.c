/* report.c - the JSON summary (see report.h).  Strings are escaped as
 * RFC 8259 requires; URLs are normalised (ASCII) but messages come from
 * libcurl and the server, so every control character is escaped. */
#include "report.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void str(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\')
      fprintf(f, "\\%c", ch);
    else if (ch < 0x20)
      fprintf(f, "\\u%04x", ch);
    else
      fputc(ch, f);
  }
  fputc('"', f);
}

static int cmp_error(const void *a, const void *b) {
  const crawl_error *x = a, *y = b;
  int r = strcmp(x->url, y->url);
  return r ? r : strcmp(x->what, y->what);
}

static unsigned long long get(const atomic_ullong *a) {
  return atomic_load_explicit(a, memory_order_relaxed);
}

int crawl_report_json(FILE *f, crawl *c, const char *engine, double seconds,
                      double cpu_seconds, bool interrupted) {
  const crawl_counters *k = c->ctr;
  if (c->n_errors > 1)
    qsort(c->errors, c->n_errors, sizeof *c->errors, cmp_error);
  unsigned long long failed = 0;
  for (int i = 1; i < FETCH_KINDS; i++)
    failed += get(&k->failures[i]);
  fprintf(f, "{\n  \"engine\": ");
  str(f, engine);
  fprintf(f, ",\n  \"start\": ");
  str(f, c->start);
  fprintf(f, ",\n  \"out_dir\": ");
  str(f, c->o->out_dir);
  fprintf(f,
          ",\n  \"interrupted\": %s,\n  \"pages\": %llu,\n  \"images\": %llu,"
          "\n  \"images_resumed\": %llu,\n  \"files\": %llu,\n  \"bytes\": "
          "%llu,\n  \"requests\": %llu,\n  \"robots_denied\": %llu,\n  "
          "\"refused\": %llu,\n  \"offsite_links\": %llu,\n  \"failed\": %llu,"
          "\n  \"failures\": {",
          interrupted ? "true" : "false", get(&k->pages), get(&k->images),
          get(&k->images_resumed), get(&k->files), get(&k->bytes),
          get(&k->requests), get(&k->robots_denied), get(&k->refused),
          get(&k->offsite), failed);
  const char *sep = "";
  for (int i = 1; i < FETCH_KINDS; i++) {
    unsigned long long n = get(&k->failures[i]);
    if (n) {
      fprintf(f, "%s\"%s\": %llu", sep, fetch_kind_name(i), n);
      sep = ", ";
    }
  }
  fprintf(f, "},\n  \"pid\": %d,\n  \"processes\": [", (int)getpid());
  sep = "";
  for (int i = 0; i < 4; i++) {
    int pid = atomic_load(&k->pids[i]);
    if (pid) {
      fprintf(f, "%s%d", sep, pid);
      sep = ", ";
    }
  }
  fprintf(f,
          "],\n  \"seconds\": %.3f,\n  \"cpu_seconds\": %.3f,\n  "
          "\"pages_per_second\": %.1f,\n  \"images_per_second\": %.1f,\n  "
          "\"errors\": [",
          seconds, cpu_seconds,
          seconds > 0 ? (double)get(&k->pages) / seconds : 0.0,
          seconds > 0 ? (double)get(&k->images) / seconds : 0.0);
  for (size_t i = 0; i < c->n_errors; i++) {
    const crawl_error *e = &c->errors[i];
    fprintf(f, "%s\n    {\"what\": ", i ? "," : "");
    str(f, e->what);
    fprintf(f, ", \"url\": ");
    str(f, e->url);
    fprintf(f, ", \"kind\": \"%s\", \"message\": ", fetch_kind_name(e->kind));
    str(f, e->message);
    fputc('}', f);
  }
  fprintf(f, "%s]\n}\n", c->n_errors ? "\n  " : "");
  return ferror(f) ? -1 : 0;
}
