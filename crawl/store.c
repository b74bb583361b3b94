/* store.c - content-addressed files (O_TMPFILE or .part, then link), journal.
 *
 * DESIGN: see store.h.  The only shared mutable state is the file system
 * and a process-wide counter for unique .part names; link(2) is atomic,
 * so of two writers of the same bytes (two URLs with one content, or two
 * processes) one creates the file and the other finds it, complete.
 */
#include "store.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sha256.h"
#include "strset.h"
#include "url.h"

#define JOURNAL ".conc-crawl.journal"

struct store {
  char *dir;
  int dirfd, journal;
  strset done; /* url -> "name\tsize" as loaded */
};

static atomic_ulong part_counter;

static int fail(char *err, size_t cap, int e, const char *what,
                const char *path) {
  snprintf(err, cap, "%s %s: %s", what, path, strerror(e));
  return -e;
}

static void load_journal(store *s) {
  int fd = openat(s->dirfd, JOURNAL, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return;
  FILE *f = fdopen(fd, "r");
  if (!f) {
    close(fd);
    return;
  }
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  while ((len = getline(&line, &cap, f)) > 0) {
    if (line[len - 1] != '\n')
      break; /* a torn last line */
    line[len - 1] = 0;
    char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
    if (!t2)
      continue;
    *t1 = 0;
    *t2 = 0;
    unsigned long long size = strtoull(t1 + 1, NULL, 10);
    struct stat st;
    if (fstatat(s->dirfd, line, &st, 0) != 0 ||
        (unsigned long long)st.st_size != size || strchr(line, '/'))
      continue;
    char *val = malloc(STORE_NAME_MAX + 24);
    if (!val)
      break;
    snprintf(val, STORE_NAME_MAX + 24, "%s\t%llu", line, size);
    if (strset_add(&s->done, t2 + 1, val) != 1)
      free(val);
  }
  free(line);
  fclose(f);
}

static void remove_parts(store *s) {
  int fd = dup(s->dirfd);
  DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
  if (!d) {
    if (fd >= 0)
      close(fd);
    return;
  }
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t n = strlen(e->d_name);
    if (e->d_name[0] == '.' && n > 5 && strcmp(e->d_name + n - 5, ".part") == 0)
      unlinkat(s->dirfd, e->d_name, 0);
  }
  closedir(d);
}

int store_open(const char *dir, store **out, char *err, size_t errcap) {
  store *s = calloc(1, sizeof *s);
  if (!s)
    return fail(err, errcap, ENOMEM, "open", dir);
  s->dirfd = s->journal = -1;
  int rc;
  if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
    rc = fail(err, errcap, errno, "mkdir", dir);
    goto fail;
  }
  s->dir = strdup(dir);
  s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (!s->dir || s->dirfd < 0) {
    rc = fail(err, errcap, s->dir ? errno : ENOMEM, "open", dir);
    goto fail;
  }
  remove_parts(s);
  load_journal(s);
  s->journal = openat(s->dirfd, JOURNAL,
                      O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
  if (s->journal < 0) {
    rc = fail(err, errcap, errno, "open journal in", dir);
    goto fail;
  }
  *out = s;
  return 0;
fail:
  store_close(s);
  return rc;
}

void store_close(store *s) {
  if (!s)
    return;
  if (s->dirfd >= 0)
    close(s->dirfd);
  if (s->journal >= 0)
    close(s->journal);
  strset_free(&s->done, free);
  free(s->dir);
  free(s);
}

size_t store_resumed(const store *s) { return s->done.n; }

int store_lookup(const store *s, const char *url, char name[STORE_NAME_MAX],
                 unsigned long long *size) {
  void *v;
  if (!strset_get(&s->done, url, &v))
    return 0;
  const char *val = v, *tab = strchr(val, '\t');
  snprintf(name, STORE_NAME_MAX, "%.*s", (int)(tab - val), val);
  *size = strtoull(tab + 1, NULL, 10);
  return 1;
}

void store_ext(const char *url, const char *ct, char ext[8]) {
  const char *p = url_path(url);
  size_t n = strcspn(p, "?");
  const char *seg = p + n;
  while (seg > p && seg[-1] != '/')
    seg--;
  const char *dot = NULL;
  for (const char *q = seg; q < p + n; q++)
    if (*q == '.')
      dot = q;
  if (dot) {
    size_t k = (size_t)(p + n - dot - 1);
    bool ok = k >= 1 && k <= 5;
    for (size_t i = 0; ok && i < k; i++)
      ok = isalnum((unsigned char)dot[1 + i]);
    if (ok) {
      ext[0] = '.';
      for (size_t i = 0; i < k; i++)
        ext[1 + i] = (char)tolower((unsigned char)dot[1 + i]);
      ext[k + 1] = 0;
      return;
    }
  }
  static const char *const types[][2] = {
      {"image/png", ".png"}, {"image/jpeg", ".jpg"}, {"image/gif", ".gif"},
      {"image/webp", ".webp"}, {"image/svg+xml", ".svg"},
      {"image/avif", ".avif"}};
  for (size_t i = 0; ct && i < sizeof types / sizeof *types; i++)
    if (strncasecmp(ct, types[i][0], strlen(types[i][0])) == 0) {
      strcpy(ext, types[i][1]);
      return;
    }
  strcpy(ext, ".bin");
}

static int write_all(int fd, const void *body, size_t n) {
  const char *p = body;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* The bytes in an unnamed file (O_TMPFILE) linked under name: 0 (*fresh
 * set), -errno, or 1 when the file system or /proc cannot do it. */
static int put_tmpfile(store *s, const char *name, const void *body, size_t n,
                       bool *fresh) {
  int fd = openat(s->dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
  if (fd < 0)
    return errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL ? 1
                                                                     : -errno;
  if (write_all(fd, body, n) != 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  char proc[48];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  int lrc = linkat(AT_FDCWD, proc, s->dirfd, name, AT_SYMLINK_FOLLOW);
  int e = lrc != 0 ? errno : 0;
  close(fd);
  if (lrc != 0 && e != EEXIST)
    return e == ENOENT ? 1 : -e; /* ENOENT: no /proc */
  *fresh = lrc == 0;
  return 0;
}

int store_put(store *s, const char *url, const char *ct, const void *body,
              size_t n, char name[STORE_NAME_MAX], bool *fresh, char *err,
              size_t errcap) {
  char hex[65], ext[8], part[STORE_NAME_MAX + 48];
  sha256_hex(body, n, hex);
  store_ext(url, ct, ext);
  snprintf(name, STORE_NAME_MAX, "%s%s", hex, ext);
  *fresh = false;
  int trc = put_tmpfile(s, name, body, n, fresh);
  if (trc < 0)
    return fail(err, errcap, -trc, "store", name);
  struct stat st;
  if (trc == 1 && fstatat(s->dirfd, name, &st, 0) != 0) {
    snprintf(part, sizeof part, ".%s.%ld.%lu.part", hex, (long)getpid(),
             atomic_fetch_add_explicit(&part_counter, 1, memory_order_relaxed));
    int fd = openat(s->dirfd, part, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                    0666);
    if (fd < 0)
      return fail(err, errcap, errno, "create", part);
    if (write_all(fd, body, n) != 0) {
      int e = errno;
      close(fd);
      unlinkat(s->dirfd, part, 0);
      return fail(err, errcap, e, "write", part);
    }
    /* link, not rename: of two writers of the same bytes exactly one
     * sees success (fresh), the other EEXIST, so "files" is exact. */
    int lrc = close(fd);
    if (lrc == 0)
      lrc = linkat(s->dirfd, part, s->dirfd, name, 0);
    int e = lrc != 0 ? errno : 0;
    unlinkat(s->dirfd, part, 0);
    if (lrc != 0 && e != EEXIST)
      return fail(err, errcap, e, "link", part);
    *fresh = lrc == 0;
  }
  size_t cap = strlen(url) + STORE_NAME_MAX + 32;
  char *line = malloc(cap);
  if (!line)
    return fail(err, errcap, ENOMEM, "journal", url);
  int len = snprintf(line, cap, "%s\t%zu\t%s\n", name, n, url);
  ssize_t w = write(s->journal, line, (size_t)len);
  free(line);
  if (w != len)
    return fail(err, errcap, w < 0 ? errno : EIO, "append to journal in",
                s->dir);
  return 0;
}
